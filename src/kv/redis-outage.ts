/** How ioredis reports that Redis cannot be reached: the shapes only the Redis drivers know. */
import { hasNetworkCode, messageOf } from '../dependency-error.js'

/** ioredis says these only in its messages: a closed connection, an unwritable stream, a command timeout. */
const UNAVAILABLE_MESSAGES = /Connection is closed|Stream isn't writeable|Command timed out|connect ECONNREFUSED/i

export function isRedisUnavailable(err: unknown): boolean {
  if (hasNetworkCode(err)) return true
  if ((err as { name?: unknown } | null)?.name === 'MaxRetriesPerRequestError') return true
  return UNAVAILABLE_MESSAGES.test(messageOf(err))
}
