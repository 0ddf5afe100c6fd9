/**
 * Where a browser may be sent after login: a local path of this gateway, or, with
 * `sessions.cookie_domain`, an absolute https URL on that domain or under it (forward auth sends
 * people back to the app they came from). Anything else — other absolute URLs, scheme-relative
 * `//host`, `/\host` (which browsers read as `//host`), their percent-encoded and mixed forms,
 * userinfo, `javascript:` — becomes `/`.
 */
import { isUnderDomain } from './allowed-origins.js'

const MAX_NEXT_LENGTH = 2048

export function safeNext(candidate: unknown, cookieDomain: string | null = null): string {
  if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > MAX_NEXT_LENGTH) return '/'
  // Browsers drop tabs and newlines inside URLs, so `/\t/evil` would become `//evil`.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f\u2028\u2029]/.test(candidate)) return '/'
  if (cookieDomain !== null && /^https:/i.test(candidate)) return safeAbsolute(candidate, cookieDomain)
  if (!isLocalPath(candidate)) return '/'
  let decoded = candidate
  // Decode repeatedly: a server or browser further on may decode again.
  for (let i = 0; i < 3; i++) {
    let next: string
    try {
      next = decodeURIComponent(decoded)
    } catch {
      return '/'
    }
    if (next === decoded) break
    // eslint-disable-next-line no-control-regex
    if (!isLocalPath(next) || /[\u0000-\u0020\u007f-\u009f]/.test(next)) return '/'
    decoded = next
  }
  return candidate
}

/** An https URL without userinfo whose host is the cookie domain or under it, as the WHATWG parser reads it. */
function safeAbsolute(candidate: string, cookieDomain: string): string {
  let url: URL
  try {
    url = new URL(candidate)
  } catch {
    return '/'
  }
  if (url.protocol !== 'https:' || url.username !== '' || url.password !== '') return '/'
  if (candidate.includes('\\')) return '/'
  // The WHATWG parser keeps `;`, `,` and other non-DNS characters in a host; a DNS name has none.
  if (!/^[a-z0-9.-]+$/.test(url.hostname)) return '/'
  return isUnderDomain(url.hostname, cookieDomain) ? url.href : '/'
}

function isLocalPath(path: string): boolean {
  return path.startsWith('/') && path[1] !== '/' && path[1] !== '\\'
}
