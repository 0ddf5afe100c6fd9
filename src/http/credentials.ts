/**
 * Reads the credential a request carries, in the SPEC §3 order: `Authorization: Bearer pat_…`,
 * `Authorization: Bearer <session token>`, then the session cookie. A malformed Authorization
 * header is refused and never falls back to the cookie; duplicates are refused, not resolved.
 */
import { GatehouseError } from '../errors.js'

export const SESSION_TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/
const BEARER = /^Bearer +(\S+) *$/i

/** `jwt`: shaped like a JWT; whether its issuer is listed in auth.jwt_bearer is decided later. */
export type HeaderCredential = { kind: 'pat' | 'session' | 'jwt'; token: string }
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export interface RequestCredentials {
  /** From the Authorization header, when there is one. */
  header: HeaderCredential | null
  /** The session cookie's value, when there is exactly one. */
  cookie: string | null
}

/**
 * Every spelling of the gateway's session cookie, whatever the current configuration uses: a
 * cookie of another scheme's (or a `cookie_domain`'s) name is still the gateway's, never an
 * upstream's, and is stripped from what upstreams receive.
 */
export const SESSION_COOKIE_SPELLINGS: readonly string[] = ['gh_session', '__Host-gh_session', '__Secure-gh_session']

/**
 * `__Host-gh_session` over https (host-only, the default); `__Secure-gh_session` over https with
 * `sessions.cookie_domain` (a `__Host-` cookie may not name a Domain); `gh_session` over plain http.
 */
export function sessionCookieName(publicUrl: string, cookieDomain: string | null = null): string {
  if (!publicUrl.startsWith('https:')) return 'gh_session'
  return cookieDomain === null ? '__Host-gh_session' : '__Secure-gh_session'
}

/** `rawHeaders` as node gives it: node keeps only the first of several Authorization headers in `headers`. */
export function readCredentials(rawHeaders: readonly string[], cookieName: string): RequestCredentials {
  const authorizations: string[] = []
  const cookieValues = new Set<string>()
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase()
    const value = rawHeaders[i + 1] as string
    if (name === 'authorization') authorizations.push(value)
    else if (name === 'cookie') for (const v of sessionCookieValues(value, cookieName)) cookieValues.add(v)
  }
  if (authorizations.length > 1) {
    throw new GatehouseError('GH_AMBIGUOUS_CREDENTIALS', 'Send one Authorization header, not several')
  }
  if (cookieValues.size > 1) {
    throw new GatehouseError('GH_AMBIGUOUS_CREDENTIALS', 'Several session cookies were sent')
  }
  const [cookie = null] = cookieValues
  const [authorization] = authorizations
  if (authorization === undefined) return { header: null, cookie }
  return { header: parseAuthorization(authorization), cookie }
}

function parseAuthorization(value: string): HeaderCredential {
  const token = BEARER.exec(value)?.[1]
  if (token?.startsWith('pat_')) return { kind: 'pat', token }
  if (token !== undefined && SESSION_TOKEN_PATTERN.test(token)) return { kind: 'session', token }
  if (token !== undefined && JWT_SHAPE.test(token)) return { kind: 'jwt', token }
  throw new GatehouseError('GH_UNAUTHENTICATED', 'The Authorization header is not a gateway credential')
}

/** Every value of `name` in one Cookie header (a client may repeat a cookie to confuse parsers). */
export function sessionCookieValues(header: string, name: string): string[] {
  const values: string[] = []
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1) continue
    if (pair.slice(0, eq).trim() === name) values.push(pair.slice(eq + 1).trim())
  }
  return values
}
