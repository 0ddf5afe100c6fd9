/**
 * Checks across routes and roles that no single key can make (SPEC §2, check-config):
 * two routes that would answer the same requests, and a route permission that no role
 * grants. Both are mistakes the gateway would otherwise serve silently: the second route
 * could never be reached, and a misspelt permission makes a route reachable only by roles
 * holding "*".
 */

import { ALL_PERMISSIONS } from '../core/permissions.js'
import { closest } from './suggest.js'

/** The parts of a route these checks read. `host` is optional so that routes without one compare as "any host". */
export interface RouteKey {
  readonly name: string
  readonly host?: string | null
  readonly match: string
  readonly methods: readonly string[] | null
  readonly permissions: readonly string[]
}

export type Report = (message: string, ...below: string[]) => void

/**
 * Two routes conflict when their hosts are equal ignoring case (no host equals no host),
 * their matches are equal (trailing slashes are already dropped when parsed) and their
 * methods overlap (no methods means all). The later route is reported.
 */
export function checkRouteConflicts(routes: readonly RouteKey[], report: Report): void {
  routes.forEach((later, index) => {
    const earlierIndex = routes.slice(0, index).findIndex((earlier) => conflict(earlier, later) !== null)
    if (earlierIndex === -1) return
    const earlier = routes[earlierIndex] as RouteKey
    const shared = conflict(earlier, later)
    const host = (later.host ?? null) === null ? 'no host' : `host ${later.host}`
    report(
      `conflicts with routes[${earlierIndex}] (${earlier.name}): same ${host}, match ${later.match} and methods (${shared}); ` +
        'the second could never be reached: give them different methods or matches, or remove one',
      `[${index}]`, 'match',
    )
  })
}

/** The methods both routes answer (`all` when neither lists any), or null when they do not conflict. */
function conflict(a: RouteKey, b: RouteKey): string | null {
  if ((a.host ?? '').toLowerCase() !== (b.host ?? '').toLowerCase() || a.match !== b.match) return null
  if (a.methods === null && b.methods === null) return 'all'
  const shared = a.methods === null ? b.methods ?? [] : b.methods === null ? a.methods : a.methods.filter((method) => b.methods?.includes(method))
  return shared.length === 0 ? null : [...new Set(shared)].join(', ')
}

/**
 * Every permission a route needs must be listed by some role. "*" in a role grants every
 * permission at run time, but does not count here: it would make any typo look granted.
 */
export function checkRoutePermissions(routes: readonly RouteKey[], roles: Readonly<Record<string, readonly string[]>>, report: Report): void {
  const listed = new Set(Object.values(roles).flat())
  const named = [...listed].filter((permission) => permission !== ALL_PERMISSIONS)
  routes.forEach((route, index) => {
    route.permissions.forEach((permission, position) => {
      if (listed.has(permission)) return
      const likely = closest(permission, named)
      report(
        `permission ${JSON.stringify(permission)} is granted by no role in roles, so only roles holding "*" could reach this route` +
          (likely === null ? `; roles grant: ${named.join(', ') || 'nothing but "*"'}` : `; did you mean ${likely}?`),
        `[${index}]`, 'permissions', `[${position}]`,
      )
    })
  })
}
