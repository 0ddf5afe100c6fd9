/**
 * Host names as routes match them (SPEC §2): compared case-insensitively, without the port;
 * a route's `*.example.com` matches exactly one label in front of `example.com`.
 */

/**
 * The host of a `Host` header or `:authority`, lower-cased, without its port and without a
 * trailing dot (`App.Example.COM.:8443` is `app.example.com`); an IPv6 literal keeps its
 * brackets (`[::1]:8443` is `[::1]`). Null for an absent or empty value.
 */
export function requestHost(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null
  let host = value.trim().toLowerCase()
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    host = end === -1 ? host : host.slice(0, end + 1)
  } else {
    const colon = host.indexOf(':')
    if (colon !== -1) host = host.slice(0, colon)
  }
  if (host.endsWith('.')) host = host.slice(0, -1)
  return host === '' ? null : host
}

/** A route's `host` as config holds it: lower-case, no port; `*.` then a domain for a wildcard. */
export function isWildcardHost(pattern: string): boolean {
  return pattern.startsWith('*.')
}

/** For a wildcard `*.example.com`, the domain `example.com`; the one label in front is free. */
export function wildcardDomain(pattern: string): string {
  return pattern.slice(2)
}

/** The domain a host's one-label wildcard would name: `a.example.com` → `example.com`; null without a dot. */
export function parentDomain(host: string): string | null {
  if (host.startsWith('[')) return null
  const dot = host.indexOf('.')
  return dot <= 0 ? null : host.slice(dot + 1)
}
