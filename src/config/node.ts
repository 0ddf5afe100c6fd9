/**
 * The building block of the gateway.yml schema: a node parses one raw YAML value at a
 * key path, reports every problem it finds to the Context, and describes itself for the
 * configuration reference.
 */

import { INVALID, type Context, type Result } from './context.js'
import { expand } from './interpolate.js'

export interface SchemaEntry {
  /** `server.port`, `routes[].rate_limit.window`, `roles.<name>`. */
  path: string
  type: string
  /** The default as it would be written in YAML; null when the key is required. */
  default: string | null
  description: string
}

export interface Node<T> {
  /** What the node accepts, in a few words (`duration`, `list of CIDR`). */
  readonly type: string
  parse(raw: unknown, path: string, context: Context): Result<T>
  /** Reference entries for the keys below this node, if it has any. */
  describe?(path: string): SchemaEntry[]
}

/**
 * Text that is final: the expansion of a whole environment reference (which may be read
 * as a number, a boolean or a list), or a mapping key. It is never expanded again.
 */
export class Expanded {
  readonly text: string
  /** The text came from the environment (and is not echoed in problems: it may be a secret). */
  readonly fromEnv: boolean
  /** Where it came from, for problems: `GATEHOUSE__SERVER__PORT`; null for a reference in the file. */
  readonly variable: string | null
  constructor(text: string, fromEnv = true, variable: string | null = null) {
    this.text = text
    this.fromEnv = fromEnv
    this.variable = variable
  }
}

export type Scalar =
  | { readonly kind: 'text'; readonly text: string; readonly whole: boolean; readonly interpolated: boolean; readonly variable?: string | null }
  | { readonly kind: 'other'; readonly value: unknown }

/** Reads a raw value, expanding environment references in strings. */
export function readScalar(raw: unknown, path: string, context: Context): Result<Scalar> {
  if (raw instanceof Expanded) return { kind: 'text', text: raw.text, whole: true, interpolated: raw.fromEnv, variable: raw.variable }
  if (typeof raw !== 'string') return { kind: 'other', value: raw }
  const expansion = expand(raw, context.env, { baseDir: context.baseDir })
  if (!expansion.ok) {
    for (const problem of expansion.problems) context.problem(path, problem)
    return INVALID
  }
  return { kind: 'text', text: expansion.text, whole: expansion.whole, interpolated: expansion.interpolated }
}

/** A plain YAML mapping (not a list, a date or another object). */
export function isMapping(raw: unknown): raw is Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return false
  const prototype: unknown = Object.getPrototypeOf(raw)
  return prototype === Object.prototype || prototype === null
}

/** What a raw value is, for `expected …, got …` problems. */
export function describeRaw(raw: unknown): string {
  if (raw instanceof Expanded) return describeValue({ kind: 'text', text: raw.text, whole: true, interpolated: raw.fromEnv, variable: raw.variable })
  return describeValue({ kind: 'other', value: raw })
}

/** `the number 30`, `a list`, `"abc"`: what was found instead of the expected value. */
export function describeValue(scalar: Scalar): string {
  if (scalar.kind === 'text') {
    if (scalar.variable) return `the value of ${scalar.variable}`
    return scalar.interpolated ? 'a value from the environment or a file' : JSON.stringify(scalar.text)
  }
  const value = scalar.value
  if (Array.isArray(value)) return 'a list'
  if (isMapping(value)) return 'a mapping'
  if (value === null || value === undefined) return 'nothing'
  if (typeof value === 'string') return 'a string'
  if (typeof value === 'number' || typeof value === 'boolean') return `the ${typeof value} ${String(value)}`
  return `a ${typeof value === 'object' ? value.constructor.name : typeof value}`
}
