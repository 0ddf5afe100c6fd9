/**
 * Route selection (SPEC §2). Three tiers: routes naming the request's host exactly, then
 * routes whose `*.domain` wildcard covers it, then routes without a host. The first tier
 * with a path match decides, and a request never falls through to a lower tier. Within a
 * tier the longest prefix that matches the path by whole segments wins, then the first
 * route with that prefix, in config order, that allows the method.
 */
import type { RouteConfig } from '../config/types.js'
import { isWildcardHost, parentDomain, requestHost, wildcardDomain } from './hosts.js'

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

/** The routes of one tier for one host (or for none), longest prefix first. */
type Tier = readonly PrefixGroup[]

const NOT_FOUND: RouteMatch = Object.freeze({ kind: 'not_found' })

/**
 * The gateway's own namespace: never proxied, on any host, even when a route's prefix covers
 * it (a path that only normalises into it, like `/x/../auth/me`, matches no route either).
 */
const RESERVED = /^\/(auth|health|docs)(\/|$)|^\/\.well-known\/jwks\.json$/

/** True for a path of the gateway's own endpoints, which no route may take over. */
export function isReservedPath(path: string): boolean {
  return RESERVED.test(path)
}

/**
 * An immutable table built once per config. `match` takes a path already normalised by
 * `normalizeTarget` and compares it case-sensitively; methods are compared as given
 * (config holds them upper-case, as node parses them); hosts case-insensitively, port ignored.
 *
 * When routes with the longest matching prefix exist but none allows the method, the
 * answer is 405, never a fall-back to a shorter prefix or a lower tier: an operator who
 * limits the methods of `/admin` means those limits to hold, and falling back would hand the
 * request to another route's upstream under that route's (often weaker, e.g. a public `/`)
 * policy. This is also how nginx treats `limit_except` inside the longest matching `location`.
 */
export class RouteTable {
  readonly routes: readonly RouteConfig[]
  readonly #exact: ReadonlyMap<string, Tier>
  readonly #wildcard: ReadonlyMap<string, Tier>
  readonly #hostless: Tier

  constructor(routes: readonly RouteConfig[]) {
    this.routes = routes
    const exact = new Map<string, RouteConfig[]>()
    const wildcard = new Map<string, RouteConfig[]>()
    const hostless: RouteConfig[] = []
    for (const route of routes) {
      const host = route.host === null ? null : route.host.toLowerCase()
      if (host === null) hostless.push(route)
      else if (isWildcardHost(host)) append(wildcard, wildcardDomain(host), route)
      else append(exact, host, route)
    }
    this.#exact = new Map([...exact].map(([host, list]) => [host, tierOf(list)]))
    this.#wildcard = new Map([...wildcard].map(([domain, list]) => [domain, tierOf(list)]))
    this.#hostless = tierOf(hostless)
  }

  /**
   * The route for a normalised `path`, `method` and the request's `host` (a Host header or
   * `:authority` value; its port and case do not matter). A null host only reaches routes
   * without a host.
   */
  match(path: string, method: string, host: string | null = null): RouteMatch {
    if (RESERVED.test(path)) return NOT_FOUND
    const name = requestHost(host)
    const domain = name === null ? null : parentDomain(name)
    const tiers = [
      name === null ? undefined : this.#exact.get(name),
      domain === null ? undefined : this.#wildcard.get(domain),
      this.#hostless,
    ]
    for (const tier of tiers) {
      if (tier === undefined) continue
      const found = matchInTier(tier, path, method)
      if (found !== null) return found
    }
    return NOT_FOUND
  }
}

/** The decision of the first (longest) prefix group that matches the path; null when none does. */
function matchInTier(tier: Tier, path: string, method: string): RouteMatch | null {
  for (const group of tier) {
    if (!prefixMatches(group.prefix, path)) continue
    for (const route of group.routes) {
      if (route.methods === null || route.methods.includes(method)) {
        return { kind: 'route', route, upstreamPath: route.strip_prefix ? stripPrefix(group.prefix, path) : path }
      }
    }
    return { kind: 'method_not_allowed', allow: [...group.allow] }
  }
  return null
}

function append(map: Map<string, RouteConfig[]>, key: string, route: RouteConfig): void {
  const list = map.get(key)
  if (list) list.push(route)
  else map.set(key, [route])
}

function tierOf(routes: readonly RouteConfig[]): Tier {
  const byPrefix = new Map<string, RouteConfig[]>()
  for (const route of routes) append(byPrefix, canonicalPrefix(route.match), route)
  // Two different prefixes of equal length never both match one path, so ties need no order.
  return [...byPrefix]
    .map(([prefix, group]) => ({ prefix, routes: group, allow: unionOfMethods(group) }))
    .sort((a, b) => b.prefix.length - a.prefix.length)
}

/** The config keeps prefixes without a trailing slash; tolerate one anyway. */
export function canonicalPrefix(match: string): string {
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
