/**
 * Tells a dependency outage (database or session store unreachable) from a bug, so that
 * the former answers 503 and is never mistaken for "not authenticated".
 */

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN',
  // PostgreSQL: admin shutdown, crash shutdown, cannot connect now, too many connections.
  '57P01', '57P02', '57P03', '53300',
])

// The last three: a store closed under running requests (shutdown, or a broken embedded
// database), which plain Errors report only in their message.
const OUTAGE_MESSAGES =
  /Connection is closed|Stream isn't writeable|Command timed out|Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|PGlite is closed|Cannot use a pool after calling end on the pool|session store is closed/i

export function isDependencyOutage(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { code, name, message } = err as { code?: unknown; name?: unknown; message?: unknown }
  // SQLSTATE class 08: connection exceptions.
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true
  if (name === 'MaxRetriesPerRequestError') return true
  return typeof message === 'string' && OUTAGE_MESSAGES.test(message)
}
