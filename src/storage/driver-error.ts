/**
 * Keeps values out of database errors before anyone logs them (SPEC §5: logs never hold
 * passwords, tokens, …). PGlite attaches the statement's `params` to its errors; PostgreSQL
 * repeats values in `detail` (`Key (email)=(…) already exists`), in `where` and, for data
 * exceptions (SQLSTATE class 22: `invalid input syntax for type integer: "…"`), in the
 * message itself. The error keeps its class, `code`, `constraint` and SQL text, which is all
 * the callers (isUniqueViolation, isDependencyOutage) and an operator need.
 */
const VALUE_FIELDS = ['params', 'queryOptions', 'detail', 'where', 'internalQuery', 'hint'] as const

export function withoutValues(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error
  const fields = error as Record<string, unknown>
  for (const field of VALUE_FIELDS) if (field in fields) delete fields[field]
  const code = fields.code
  if (error instanceof Error && typeof code === 'string' && code.startsWith('22')) {
    const redacted = error.message.replace(/"[^"]*"/g, '"[redacted]"')
    if (redacted !== error.message) {
      error.stack = error.stack?.replace(error.message, redacted)
      error.message = redacted
    }
  }
  return error
}
