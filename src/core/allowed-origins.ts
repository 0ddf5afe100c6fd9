/**
 * The origins a cookie-authenticated browser request may come from (SPEC §3 "Allowed origins"):
 * `public_url`'s, the configured CORS origins, and with `sessions.cookie_domain` every origin of
 * `public_url`'s scheme whose host is that domain or under it.
 */

/** What the origin checks ask: a `Set<string>` is one. */
export interface OriginMatcher {
  has(origin: string): boolean
}

export interface AllowedOriginsOptions {
  publicUrl: string
  /** Exact origins (CORS). */
  origins?: readonly string[]
  cookieDomain?: string | null
}

export function allowedOrigins({ publicUrl, origins = [], cookieDomain = null }: AllowedOriginsOptions): OriginMatcher {
  const exact = new Set([new URL(publicUrl).origin, ...origins])
  if (cookieDomain === null) return exact
  const scheme = new URL(publicUrl).protocol
  return {
    has(origin) {
      if (exact.has(origin)) return true
      const url = parseOrigin(origin)
      return url !== null && url.protocol === scheme && isUnderDomain(url.hostname, cookieDomain)
    },
  }
}

/** Is `host` the domain itself or a name under it (case and a final dot aside)? */
export function isUnderDomain(host: string, domain: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '')
  return name === domain || name.endsWith(`.${domain}`)
}

/** An origin as browsers send it (scheme://host[:port], nothing more), else null. */
function parseOrigin(origin: string): URL | null {
  try {
    const url = new URL(origin)
    return url.origin === origin ? url : null
  } catch {
    return null
  }
}
