/**
 * Which header a route's `user_secret` may name (SPEC §2): a valid field name (an RFC 9110
 * token) that no other rule of the gateway already owns. The gateway strips the header from
 * every client request and sets it itself, so a name the gateway reads, strips, sets or needs
 * for message framing would either break that rule or be broken by it.
 */

/** RFC 9110 §5.1: a field name is a token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i

/** Lower-case names (`-` for `_`) with the reason each is refused. */
const RESERVED: ReadonlyMap<string, string> = new Map([
  ...['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']
    .map((name) => [name, 'is a hop-by-hop header, never forwarded'] as const),
  ...['host', 'content-length', 'content-type', 'content-encoding', 'expect']
    .map((name) => [name, 'frames or addresses the request itself'] as const),
  ['authorization', 'carries gateway credentials (a PAT or session token); on public routes a client\'s own passes through'],
  ['cookie', 'carries the gateway\'s session cookie and the client\'s own cookies'],
  ...['x-request-id', 'x-real-ip', 'forwarded', 'remote-user', 'x-original-url', 'x-rewrite-url', 'x-http-method-override']
    .map((name) => [name, 'is one of the headers the gateway strips or sets itself (SPEC §4)'] as const),
])

/**
 * Null when `name` may carry a user secret, else why not (for check-config). Compared as the
 * edge compares names: lower-case, `_` read as `-`.
 */
export function secretHeaderRefusal(name: string): string | null {
  if (!TOKEN.test(name)) return 'must be a header name (letters, digits and !#$%&\'*+.^_`|~-)'
  const canonical = canonicalHeaderName(name)
  if (canonical.startsWith('x-auth-')) return 'must not start with x-auth-: those are the gateway\'s identity headers'
  if (canonical.startsWith('x-forwarded-')) return 'must not start with x-forwarded-: the gateway sets those itself'
  if (canonical.startsWith('sec-websocket-')) return 'must not be a WebSocket handshake header'
  const reason = RESERVED.get(canonical)
  return reason === undefined ? null : `${canonical} ${reason}`
}

/** How the edge compares header names (SPEC §4): lower-case, `_` read as `-`. */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replaceAll('_', '-')
}
