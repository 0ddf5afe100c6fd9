/**
 * The request headers an upstream receives (SPEC §4): what clients may not send is removed
 * whatever its case or `_`/`-` spelling, the gateway's session cookie and credential are
 * taken out, and the gateway's own headers are set last so nothing a client sent (directly
 * or through `Connection`) can replace them.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { gatewayCookieMatcher } from './gateway-cookies.js'
import { CONNECTION_SPECIFIC, connectionListed } from './upstream-messages.js'

/** Names (lower-case, `-` for `_`) a client may never send to an upstream. */
const FORBIDDEN = new Set([
  'x-forwarded-user', 'x-forwarded-email', 'x-forwarded-groups', 'remote-user',
  'x-original-url', 'x-rewrite-url', 'x-forwarded-uri', 'x-forwarded-prefix', 'x-http-method-override',
  'x-request-id', 'x-real-ip', 'forwarded',
  // Meant for the gateway, like the connection-specific fields.
  'proxy-authorization',
  // Answered by the gateway (node sends the 100 Continue); undici refuses to send it, so a
  // forwarded Expect would turn every such upload (curl's default above 1 MB) into a 502.
  'expect',
])

/** An `Authorization` carrying a gateway credential (a PAT or a session token), never forwarded. */
const GATEWAY_BEARER = /^Bearer +(pat_\S+|[A-Za-z0-9_-]{43}) *$/i

function isForbidden(name: string): boolean {
  const canonical = name.toLowerCase().replaceAll('_', '-')
  return canonical.startsWith('x-auth-') || canonical.startsWith('x-forwarded-') || FORBIDDEN.has(canonical) || CONNECTION_SPECIFIC.has(canonical)
}

export interface UpstreamHeaderOptions {
  /** The gateway's cookie names (session, OIDC flow) to take out of `Cookie`, in any case or prefix. */
  sessionCookieNames: readonly string[]
  /**
   * The route is `auth: public`: the client's `Authorization` is the app's own and passes,
   * unless it carries a gateway credential. On other routes it is always taken out.
   */
  publicRoute: boolean
  requestId: string
  peerAddress: string
  /** The peer is a trusted proxy: its X-Forwarded-For is kept, with the peer added. */
  peerTrusted: boolean
  protocol: 'http' | 'https'
  /** The Host the client asked for: always X-Forwarded-Host. */
  host: string | undefined
  /** The upstream server's own host: its `Host` unless `preserveHost`. */
  serverHost: string
  /** Send the client's Host instead of the server's own (route `preserve_host`). */
  preserveHost: boolean
  /** X-Auth-* headers for an authenticated request. */
  identity: Readonly<Record<string, string>> | null
  /**
   * Every route's `user_secret` header (lower-case, `-` for `_`): stripped from every client
   * request like the x-auth- headers, whatever route it goes to (SPEC §5).
   */
  secretHeaders: ReadonlySet<string>
  /** The owner's secret for this route's upstream, set after the client's headers are gone. */
  userSecret: { header: string; value: string } | null
}

/**
 * Built from the client's headers without HTTP/2's pseudo-headers, its Host and the fields its
 * `Connection` names (RFC 9110 §7.6.1); those are taken out before the gateway adds its own,
 * so that a client cannot name the gateway's headers away.
 */
export function upstreamHeaders(incoming: IncomingHttpHeaders, options: UpstreamHeaderOptions): IncomingHttpHeaders {
  const listed = connectionListed(incoming.connection)
  const headers: IncomingHttpHeaders = {}
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined || name.charCodeAt(0) === 58 /* : */ || name === 'host' || (listed !== null && listed.has(name))) continue
    if (isForbidden(name) || options.secretHeaders.has(name.toLowerCase().replaceAll('_', '-'))) continue
    headers[name] = value
  }
  if (!options.publicRoute || GATEWAY_BEARER.test(String(incoming.authorization ?? ''))) delete headers.authorization
  if (headers.cookie !== undefined) {
    const kept = withoutCookies(headers.cookie, options.sessionCookieNames)
    if (kept === '') delete headers.cookie
    else headers.cookie = kept
  }

  headers['x-request-id'] = options.requestId
  const forwardedFor = options.peerTrusted ? joined(incoming['x-forwarded-for']) : ''
  headers['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${options.peerAddress}` : options.peerAddress
  headers['x-forwarded-proto'] = options.protocol
  if (options.host !== undefined) headers['x-forwarded-host'] = options.host
  headers.host = options.preserveHost && options.host !== undefined ? options.host : options.serverHost
  if (options.identity) Object.assign(headers, options.identity)
  if (options.userSecret !== null) headers[options.userSecret.header] = options.userSecret.value
  return headers
}

/** Names compared case-insensitively (SPEC §3): `GH_SESSION` is the gateway's cookie too. */
function withoutCookies(header: string, names: readonly string[]): string {
  const isGateway = gatewayCookieMatcher(names)
  return header
    .split(';')
    .filter((pair) => {
      const eq = pair.indexOf('=')
      const name = (eq === -1 ? pair : pair.slice(0, eq)).trim()
      return name !== '' && !isGateway(name)
    })
    .map((pair) => pair.trim())
    .join('; ')
}

/** A header node may have received several times, as one comma-separated list. */
function joined(value: string | string[] | undefined): string {
  if (value === undefined) return ''
  return Array.isArray(value) ? value.join(', ') : value
}
