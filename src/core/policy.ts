/**
 * The access decision for a matched route: a pure function the request pipeline
 * (core/pipeline) asks for the edge, `gatehouse explain` and every other caller.
 */
import type { RouteConfig } from '../config/types.js'
import type { Identity } from './identity.js'
import { hasPermission } from './permissions.js'

export type Outcome = 'allow' | 'unauthenticated' | 'forbidden'

export type DecisionReason =
  /** A public route: the edge does not authenticate, so any identity is ignored. */
  | 'public_route'
  /** An optional route reached without a credential. */
  | 'anonymous'
  /** Authenticated and holding every permission the route lists. */
  | 'authenticated'
  /** A required route reached without a credential. */
  | 'no_credential'
  /** Authenticated but lacking at least one of the route's permissions. */
  | 'missing_permission'

export interface Decision {
  allow: boolean
  outcome: Outcome
  reason: DecisionReason
  /** The route's permissions the identity lacks, in config order; empty unless forbidden. */
  missing_permissions: string[]
}

/**
 * Decides whether `identity` (null: no credential was presented) may use `route`.
 *
 * - `public`: allowed; the identity is ignored, since the edge never authenticates there.
 * - `required`: no identity is `unauthenticated`; an identity lacking any of the route's
 *   permissions (all are needed, `*` grants all) is `forbidden`.
 * - `optional`: no identity is allowed (the upstream receives no identity). An identity is
 *   held to the route's permissions exactly as on a `required` route: lacking one is
 *   `forbidden`, never a silent downgrade to anonymous. The upstream can thus trust that
 *   every identity it receives on the route holds its permissions, a caller whose token
 *   lacks a permission learns so from the 403 instead of getting the anonymous view, and
 *   it matches the edge's rule that a credential sent to an optional route is always
 *   judged (a bad one is 401, not anonymous). Sending no credential gets the anonymous view.
 */
export function decide(route: RouteConfig, identity: Identity | null): Decision {
  if (route.auth === 'public') return { allow: true, outcome: 'allow', reason: 'public_route', missing_permissions: [] }
  if (identity === null) {
    return route.auth === 'optional'
      ? { allow: true, outcome: 'allow', reason: 'anonymous', missing_permissions: [] }
      : { allow: false, outcome: 'unauthenticated', reason: 'no_credential', missing_permissions: [] }
  }
  const missing = missingPermissions(route.permissions, identity.permissions)
  if (missing.length > 0) {
    return { allow: false, outcome: 'forbidden', reason: 'missing_permission', missing_permissions: missing }
  }
  return { allow: true, outcome: 'allow', reason: 'authenticated', missing_permissions: [] }
}

function missingPermissions(needed: readonly string[], granted: readonly string[]): string[] {
  const missing: string[] = []
  for (const permission of needed) {
    if (!hasPermission(granted, permission) && !missing.includes(permission)) missing.push(permission)
  }
  return missing
}
