/**
 * The origin check for cookie-authenticated unsafe requests (SPEC §3): the browser must
 * say, through `Origin` (or, without it, `Referer`), that the request comes from the
 * gateway's own origin or one of the CORS origins the operator allowed (or, when it sends no
 * usable Origin, through `Sec-Fetch-Site: same-origin`). Bearer-authenticated
 * requests are exempt: a browser never attaches those on its own.
 */
import { GatehouseError } from '../errors.js'
import type { OriginMatcher } from './allowed-origins.js'

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export function isUnsafeMethod(method: string): boolean {
  return UNSAFE_METHODS.has(method)
}

export interface CsrfHeaders {
  origin?: string | undefined
  referer?: string | undefined
  'sec-fetch-site'?: string | undefined
}

/**
 * Why a cookie-authenticated unsafe request is refused as cross-site, or null when its
 * browser says it comes from an allowed origin. Pure: the edge, forward auth and the
 * WebSocket handshake all ask it.
 */
export function crossOriginRefusal(headers: CsrfHeaders, allowedOrigins: OriginMatcher): string | null {
  const site = headers['sec-fetch-site']?.toLowerCase()
  if (site === 'cross-site') return 'Cross-site request refused (Sec-Fetch-Site: cross-site)'
  const claimed = headers.origin ?? originOf(headers.referer)
  // A browser may send `Origin: null` for a same-origin form post (Chromium does under some
  // referrer policies); its fetch metadata, which no page can forge, still says same-origin.
  // The same rule as Go's http.CrossOriginProtection.
  if ((claimed === undefined || claimed === 'null') && site === 'same-origin') return null
  if (claimed === undefined || claimed === 'null') return 'A cookie-authenticated request needs an Origin or Referer header'
  if (!allowedOrigins.has(claimed)) return 'The request comes from another origin'
  return null
}

/**
 * For requests with no cookie to protect (login, registration): a browser that says where it
 * comes from must name an allowed origin (login CSRF). Clients that send no Origin (curl,
 * servers) are not browsers, unless their fetch metadata says cross-site. `Origin: null` with
 * `Sec-Fetch-Site: same-origin` is a same-origin form post, as in `crossOriginRefusal`.
 */
export function sentOriginRefusal(headers: CsrfHeaders, allowedOrigins: OriginMatcher): string | null {
  const site = headers['sec-fetch-site']?.toLowerCase()
  const { origin } = headers
  const allowed = origin === undefined
    ? site !== 'cross-site'
    : allowedOrigins.has(origin) || (origin === 'null' && site === 'same-origin')
  return allowed ? null : 'The request comes from another origin'
}

/** `crossOriginRefusal` as a GH_CSRF error. */
export function checkSameOrigin(headers: CsrfHeaders, allowedOrigins: OriginMatcher): void {
  const refusal = crossOriginRefusal(headers, allowedOrigins)
  if (refusal !== null) throw new GatehouseError('GH_CSRF', refusal)
}

function originOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined
  try {
    return new URL(url).origin
  } catch {
    return undefined
  }
}
