/**
 * Requests that are malformed as HTTP, refused before anything reads them (SPEC §4a):
 * two `Host` headers (RFC 9112 §3.2: "MUST respond with a 400"; node keeps the first and
 * drops the rest, so the gateway and an upstream could each believe another host), and, on
 * the redirect listener, a target that is not a path (absolute or asterisk form), which
 * would otherwise be pasted into the Location it answers.
 */

/** `rawHeaders` as node gives them: [name, value, name, value, …]. */
export function hasDuplicateHost(rawHeaders: readonly string[]): boolean {
  let seen = false
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() !== 'host') continue
    if (seen) return true
    seen = true
  }
  return false
}

/** Origin form (`/path?query`), not absolute (`http://host/…`) or asterisk (`*`) form. */
export function isOriginForm(target: string): boolean {
  return target.startsWith('/')
}

/**
 * An HTTP/2 request whose `Host` header names another host than its `:authority` (RFC 9113
 * §8.3.1): the gateway routes by `:authority`, and an upstream must not believe another host.
 */
export function hostDiffersFromAuthority(httpVersionMajor: number, headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  if (httpVersionMajor !== 2) return false
  const authority = headers[':authority']
  const host = headers.host
  return authority !== undefined && host !== undefined && String(host).toLowerCase() !== String(authority).toLowerCase()
}
