/** A request as the pipeline sees it, whatever transport it came over. */

/** What a caller asks the pipeline about. */
export type RequestKind =
  /** An ordinary request the edge proxies. */
  | 'proxy'
  /** A WebSocket handshake: a cookie-authenticated one needs an allowed Origin whatever the route's `csrf`. */
  | 'websocket'
  /** A forward-auth call (`/auth/verify`) on behalf of another proxy: an Origin sent must be allowed. */
  | 'forward_auth'

/** The headers the decision reads besides the credentials (lower-case names, first value). */
export interface GateHeaders {
  accept?: string | undefined
  origin?: string | undefined
  referer?: string | undefined
  'sec-fetch-site'?: string | undefined
}

export interface GateRequest {
  kind: RequestKind
  /** Upper-case, as node parses it. */
  method: string
  /** The Host header or `:authority` as sent (port and case do not matter); null when absent. */
  host: string | null
  /** The request target as sent: origin-form path and query. */
  target: string
  headers: GateHeaders
  /** The raw header list (name, value, …), for the credential resolver: duplicates matter there. */
  rawHeaders: readonly string[]
  /**
   * The client's address as rate limits count it (IPv6 reduced to its /64): asked for only by a
   * route limited per address, since working it out costs more than it seems.
   */
  clientKey(): string
  /** The X-Request-Id, for the assertion's `rid`. */
  requestId: string
}
