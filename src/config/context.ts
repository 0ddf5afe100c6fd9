/**
 * The state of one validation pass: the problems found so far, and the names that keys
 * define (roles, rate-limit policies) and reference, checked once the whole file is read
 * so that the order of sections does not matter.
 */

import type { Env } from './interpolate.js'
import { closest } from './suggest.js'

export const INVALID: unique symbol = Symbol('invalid')
export type Invalid = typeof INVALID
/** A parsed value, or INVALID once its problems have been reported. */
export type Result<T> = T | Invalid

interface Definition { readonly names: ReadonlySet<string>; readonly where: string }
interface Reference { readonly kind: string; readonly name: string; readonly path: string }

export class Context {
  readonly env: Env
  /** Directory that relative file paths are resolved against. */
  readonly baseDir: string
  private readonly found: string[] = []
  private readonly definitions = new Map<string, Definition>()
  private readonly references: Reference[] = []
  private readonly claimed = new Map<string, Map<string, string>>()

  constructor(env: Env, baseDir: string) {
    this.env = env
    this.baseDir = baseDir
  }

  get problems(): readonly string[] {
    return this.found
  }

  /** Records one problem line, `path: message`, and returns INVALID for convenience. */
  problem(path: string, message: string): Invalid {
    this.found.push(`${path === '' ? '(top level)' : path}: ${message}`)
    return INVALID
  }

  /** `names` are the valid targets of `kind` references; `where` is the key that defines them. */
  define(kind: string, names: Iterable<string>, where: string): void {
    this.definitions.set(kind, { names: new Set(names), where })
  }

  /** Notes a reference to be checked by checkReferences. */
  refer(kind: string, name: string, path: string): void {
    this.references.push({ kind, name, path })
  }

  /** Claims a name that must be unique among its kind; a second claim is a problem. */
  claim(kind: string, name: string, path: string): Result<string> {
    const seen = this.claimed.get(kind) ?? new Map<string, string>()
    this.claimed.set(kind, seen)
    const first = seen.get(name)
    if (first !== undefined) return this.problem(path, `duplicate ${kind} ${JSON.stringify(name)} (first used at ${first})`)
    seen.set(name, path)
    return name
  }

  /**
   * Reports references to undefined names. References to a kind whose defining key was
   * itself malformed are skipped: that key already has its own problem.
   */
  checkReferences(): void {
    for (const { kind, name, path } of this.references) {
      const definition = this.definitions.get(kind)
      if (definition === undefined || definition.names.has(name)) continue
      const known = [...definition.names]
      const likely = closest(name, known)
      const help = likely !== null ? `did you mean ${likely}?` : known.length === 0 ? 'none are defined' : `defined: ${known.join(', ')}`
      this.problem(path, `${kind} ${JSON.stringify(name)} is not defined in ${definition.where}; ${help}`)
    }
  }
}

/** `server.port`, `roles.viewer`, `roles["my role"]`; the top level is the empty path. */
export function keyPath(parent: string, key: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(key)) return `${parent}[${JSON.stringify(key)}]`
  return parent === '' ? key : `${parent}.${key}`
}

export function indexPath(parent: string, index: number): string {
  return `${parent}[${index}]`
}
