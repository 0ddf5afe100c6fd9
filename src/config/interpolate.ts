/**
 * Environment references in gateway.yml string values.
 *
 * `${NAME}` is replaced by the variable's value; it is a problem when NAME is not set
 * (set but empty is allowed). `${NAME:-default}` uses `default` when NAME is unset or
 * empty, as in the shell. `$$` stands for a single `$` (as in Docker Compose), so
 * `$${NAME}` is the literal text `${NAME}`. A `$` followed by anything else is literal.
 * Defaults are plain text: they contain no `}` and are not expanded again.
 */

export type Env = Readonly<Record<string, string | undefined>>

export type Expansion =
  | {
    readonly ok: true
    readonly text: string
    /** The value was exactly one reference, so it may be read as the key's own type. */
    readonly whole: boolean
    /** At least one reference was expanded (the text may hold values from the environment). */
    readonly interpolated: boolean
  }
  | { readonly ok: false; readonly problems: readonly string[] }

const TOKEN = /\$(?:\$|\{([^}]*)(\}?))/g
const REFERENCE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s
const WHOLE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/

/** True when `text` is exactly one `${NAME}` or `${NAME:-default}`. */
export function isWholeReference(text: string): boolean {
  return WHOLE.test(text)
}

export function expand(text: string, env: Env): Expansion {
  const problems: string[] = []
  let interpolated = false
  const expanded = text.replace(TOKEN, (token: string, inner: string | undefined, closed: string | undefined) => {
    if (inner === undefined) return '$'
    const reference = closed ? REFERENCE.exec(inner) : null
    if (!reference) {
      problems.push(`invalid environment reference ${JSON.stringify(token)}: write \${NAME} or \${NAME:-default}, or $$ for a literal $`)
      return ''
    }
    interpolated = true
    const [, name = '', fallback] = reference
    const value = env[name]
    if (fallback !== undefined) return value === undefined || value === '' ? fallback : value
    if (value === undefined) {
      problems.push(`environment variable ${name} is not set`)
      return ''
    }
    return value
  })
  if (problems.length > 0) return { ok: false, problems }
  return { ok: true, text: expanded, whole: isWholeReference(text), interpolated }
}
