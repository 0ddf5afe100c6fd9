/**
 * The gateway's own cookies (the session, the OIDC flow handle) as SPEC §3 names them: kept
 * out of requests to upstreams and out of upstreams' `Set-Cookie`, so that an upstream can
 * neither read a session nor plant or clear one. Names are compared case-insensitively and
 * whatever `__…-` prefixes they carry (`gh_session`, `__Host-gh_session`,
 * `__SECURE-GH_SESSION` are one cookie here), since browsers differ on both.
 */
import type { IncomingHttpHeaders } from 'node:http'

/** Cookie name prefixes browsers give a meaning (RFC 6265bis and its `__Http-` additions). */
const PREFIXES = /^(?:__(?:host-http|host|secure|http)-)+/

/** The name without its `__Host-`, `__Secure-`, … prefixes, lower-case. */
function baseName(name: string): string {
  return name.trim().toLowerCase().replace(PREFIXES, '')
}

/** A predicate for the names of the gateway's cookies, from their configured names. */
export function gatewayCookieMatcher(names: readonly string[]): (name: string) => boolean {
  const bases = new Set(names.map(baseName))
  return (name) => bases.has(baseName(name))
}

/** The name a `Set-Cookie` value sets; a value without `=` is a nameless cookie, judged by its value. */
function setCookieName(value: string): string {
  const pair = value.split(';', 1)[0] ?? ''
  const eq = pair.indexOf('=')
  return eq === -1 ? pair : pair.slice(0, eq)
}

/** The upstream's answer headers without any `Set-Cookie` for one of the gateway's cookies. */
export function withoutGatewaySetCookies(headers: IncomingHttpHeaders, names: readonly string[]): IncomingHttpHeaders {
  const setCookie = headers['set-cookie']
  if (setCookie === undefined) return headers
  const isGateway = gatewayCookieMatcher(names)
  const kept = (Array.isArray(setCookie) ? setCookie : [setCookie]).filter((value) => !isGateway(setCookieName(value)))
  const result = { ...headers }
  if (kept.length === 0) delete result['set-cookie']
  else result['set-cookie'] = kept
  return result
}
