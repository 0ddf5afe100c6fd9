/**
 * Route selection (SPEC §2): the longest prefix that matches the path by whole segments
 * wins, then the first route with that prefix, in config order, that allows the method.
 */
import type { RouteConfig } from '../config/types.js'

export type RouteMatch =
  /** `upstreamPath` is the normalised path, without the route's prefix when `strip_prefix` (always starts with '/'). */
  | { kind: 'route'; route: RouteConfig; upstreamPath: string }
  | { kind: 'not_found' }
  /** `allow`: the sorted union of the methods of the routes with the longest matching prefix. */
  | { kind: 'method_not_allowed'; allow: string[] }

interface PrefixGroup {
  prefix: string
  /** In config order. */
  routes: readonly RouteConfig[]
  allow: readonly string[]
}

const NOT_FOUND: RouteMatch = Object.freeze({ kind: 'not_found' })

/**
 * An immutable table built once per config. `match` takes a path already normalised by
 * `normalizeTarget` and compares it case-sensitively; methods are compared as given
 * (config holds them upper-case, as node parses them).
 *
 * When routes with the longest matching prefix exist but none allows the method, the
 * answer is 405, never a fall-back to a shorter prefix: an operator who limits the methods
 * of `/admin` means those limits to hold, and falling back would hand the request to
 * another route's upstream under that route's (often weaker, e.g. a public `/`) policy.
 * This is also how nginx treats `limit_except` inside the longest matching `location`.
 */
/**
 * The gateway's own namespace: never proxied, even when a route's prefix covers it (a path
 * that only normalises into it, like `/x/../auth/me`, matches no route either).
 */
const RESERVED = /^\/(auth|health|docs)(\/|$)|^\/\.well-known\/jwks\.json$/

export class RouteTable {
  readonly routes: readonly RouteConfig[]
  readonly #groups: readonly PrefixGroup[]

  constructor(routes: readonly RouteConfig[]) {
    this.routes = routes
    const byPrefix = new Map<string, RouteConfig[]>()
    for (const route of routes) {
      const prefix = canonicalPrefix(route.match)
      const group = byPrefix.get(prefix)
      if (group) group.push(route)
      else byPrefix.set(prefix, [route])
    }
    // Two different prefixes of equal length never both match one path, so ties need no order.
    this.#groups = [...byPrefix]
      .map(([prefix, group]) => ({ prefix, routes: group, allow: unionOfMethods(group) }))
      .sort((a, b) => b.prefix.length - a.prefix.length)
  }

  match(path: string, method: string): RouteMatch {
    if (RESERVED.test(path)) return { kind: 'not_found' }
    for (const group of this.#groups) {
      if (!prefixMatches(group.prefix, path)) continue
      for (const route of group.routes) {
        if (route.methods === null || route.methods.includes(method)) {
          return { kind: 'route', route, upstreamPath: route.strip_prefix ? stripPrefix(group.prefix, path) : path }
        }
      }
      return { kind: 'method_not_allowed', allow: [...group.allow] }
    }
    return NOT_FOUND
  }
}

/** The config keeps prefixes without a trailing slash; tolerate one anyway. */
function canonicalPrefix(match: string): string {
  return match.length > 1 && match.endsWith('/') ? match.slice(0, -1) : match
}

/** `/app` matches `/app`, `/app/` and `/app/x`, never `/apple`; `/` matches every path. */
function prefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true
  return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f)
}

function stripPrefix(prefix: string, path: string): string {
  if (prefix === '/') return path
  return path.length === prefix.length ? '/' : path.slice(prefix.length)
}

/** Only routes with an explicit list reach here when no route matched: a null list allows every method. */
function unionOfMethods(routes: readonly RouteConfig[]): string[] {
  const methods = new Set<string>()
  for (const route of routes) for (const method of route.methods ?? []) methods.add(method)
  return [...methods].sort()
}
