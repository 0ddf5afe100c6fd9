/**
 * References in gateway.yml string values (SPEC §2).
 *
 * `${NAME}` is replaced by the variable's value; it is a problem when NAME is not set
 * (set but empty is allowed). `${NAME:-default}` uses `default` when NAME is unset or
 * empty, as in the shell. `${file:/path}` is the content of a file (Docker and Kubernetes
 * secrets), one trailing newline dropped; a relative path is read from the config file's
 * directory, and a file that cannot be read is a problem. A trailing `|url` filter
 * percent-encodes the value for use inside a URL (`postgres://app:${PGPASSWORD|url}@db/app`),
 * so that a password holding `@`, `/` or `:` cannot change the URL's structure.
 *
 * `$$` stands for a single `$` (as in Docker Compose), so `$${NAME}` is the literal text
 * `${NAME}`. A `$` followed by anything else is literal. Defaults are plain text: they
 * contain no `}` and are not expanded again.
 */

import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

export type Env = Readonly<Record<string, string | undefined>>

export interface ExpandOptions {
  /** Directory that relative `${file:…}` paths are read from. */
  baseDir: string
  /** Reads a `${file:…}` reference; default: readFileSync as UTF-8. */
  readFile?: (path: string) => string
}

export type Expansion =
  | {
    readonly ok: true
    readonly text: string
    /** The value was exactly one reference, so it may be read as the key's own type. */
    readonly whole: boolean
    /** At least one reference was expanded (the text may hold values from the environment or a file). */
    readonly interpolated: boolean
  }
  | { readonly ok: false; readonly problems: readonly string[] }

const TOKEN = /\$(?:\$|\{([^}]*)(\}?))/g
const VARIABLE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s
const FILE = /^file:(.+)$/s
const FILTERS = ['url'] as const
type Filter = (typeof FILTERS)[number]
const WHOLE = /^\$\{[^}]*\}$/

/** True when `text` is exactly one well-formed reference (`${NAME}`, `${NAME:-default}`, `${file:…}`, each with an optional filter). */
export function isWholeReference(text: string): boolean {
  return WHOLE.test(text) && parseReference(text.slice(2, -1)) !== null
}

type Reference =
  | { readonly kind: 'variable'; readonly name: string; readonly fallback: string | undefined; readonly filter: Filter | null }
  | { readonly kind: 'file'; readonly path: string; readonly filter: Filter | null }

function parseReference(inner: string): Reference | null {
  const bar = inner.lastIndexOf('|')
  const candidate = bar === -1 ? '' : inner.slice(bar + 1)
  const filter = (FILTERS as readonly string[]).includes(candidate) ? (candidate as Filter) : null
  const body = filter === null ? inner : inner.slice(0, bar)
  const file = FILE.exec(body)
  if (file) return { kind: 'file', path: file[1] as string, filter }
  const variable = VARIABLE.exec(body)
  if (variable) return { kind: 'variable', name: variable[1] as string, fallback: variable[2], filter }
  return null
}

export function expand(text: string, env: Env, options: ExpandOptions = { baseDir: process.cwd() }): Expansion {
  const problems: string[] = []
  let interpolated = false
  const expanded = text.replace(TOKEN, (token: string, inner: string | undefined, closed: string | undefined) => {
    if (inner === undefined) return '$'
    const reference = closed ? parseReference(inner) : null
    if (reference === null) {
      problems.push(
        `invalid reference ${JSON.stringify(token)}: write \${NAME}, \${NAME:-default} or \${file:/path}, optionally ending in |url, or $$ for a literal $`,
      )
      return ''
    }
    interpolated = true
    const value = resolveReference(reference, env, options, problems)
    return value === null ? '' : reference.filter === 'url' ? encodeURIComponent(value) : value
  })
  if (problems.length > 0) return { ok: false, problems }
  return { ok: true, text: expanded, whole: isWholeReference(text), interpolated }
}

function resolveReference(reference: Reference, env: Env, options: ExpandOptions, problems: string[]): string | null {
  if (reference.kind === 'file') {
    const path = resolve(options.baseDir, reference.path)
    try {
      return (options.readFile ?? ((at: string) => readFileSync(at, 'utf8')))(path).replace(/\r?\n$/, '')
    } catch (error) {
      problems.push(`cannot read the file ${path} of \${file:${reference.path}}: ${fileError(error)}`)
      return null
    }
  }
  const value = env[reference.name]
  if (reference.fallback !== undefined) return value === undefined || value === '' ? reference.fallback : value
  if (value === undefined) {
    problems.push(`environment variable ${reference.name} is not set`)
    return null
  }
  return value
}

function fileError(error: unknown): string {
  const code = error instanceof Error && 'code' in error ? String(error.code) : ''
  if (code === 'ENOENT') return 'no such file'
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied'
  if (code === 'EISDIR') return 'it is a directory'
  return error instanceof Error ? error.message : String(error)
}
