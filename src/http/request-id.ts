/**
 * The request id (SPEC §4): the client's `X-Request-Id` is kept when it is 1-128 characters
 * of `[A-Za-z0-9._-]`, otherwise a new UUID is made. It is echoed on every response.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/

export function requestIdOf(request: IncomingMessage): string {
  const claimed = request.headers['x-request-id']
  return typeof claimed === 'string' && CLIENT_REQUEST_ID.test(claimed) ? claimed : randomUUID()
}
