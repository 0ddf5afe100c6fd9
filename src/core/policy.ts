/**
 * The access decision for a matched route: pure functions shared by the edge and
 * `gatehouse explain`, so that both always give the same answer for the same request.
 */
import type { RouteConfig } from '../config/types.js'
import { errorCodes, GatehouseError, type ErrorCode } from '../errors.js'
import type { Identity } from './identity.js'
import { assertForwardable, normalizeTarget, type PathRefusal } from './paths.js'
import { hasPermission } from './permissions.js'
import type { RouteMatch, RouteTable } from './route-table.js'

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

export interface ExplainedIdentity {
  user_id: string
  email: string
  roles: string[]
  permissions: string[]
  method: Identity['method']
}

/** What the gateway would answer, before rate limits, CSRF and the upstream itself are considered. */
export interface ExplainedAnswer {
  /** 400, 404, 405, 401 (a browser navigation gets 302 to the login page instead), 403; null when proxied. */
  status: number | null
  code: ErrorCode | null
  /** The URL the request is proxied to; null when refused. */
  upstream_url: string | null
}

export interface Explanation {
  method: string
  /** The target as given. */
  target: string
  /** The normalised path; null when the target is refused. */
  path: string | null
  query: string | null
  path_refusal: { reason: PathRefusal; message: string } | null
  /** Null when the target is refused. */
  match: RouteMatch | null
  /** The identity as given; a public route ignores it (see `decision.reason`). */
  identity: ExplainedIdentity | null
  /** Null unless a route matched. */
  decision: Decision | null
  answer: ExplainedAnswer
}

/**
 * Runs a request through the same steps as the edge (normalise, match, decide) without I/O.
 * `method` is upper-cased for the convenience of a command line; the edge receives it upper-case.
 */
export function explain(table: RouteTable, rawTarget: string, method: string, identity: Identity | null): Explanation {
  const upperMethod = method.toUpperCase()
  const explainedIdentity: ExplainedIdentity | null = identity && {
    user_id: identity.user.id,
    email: identity.user.email,
    roles: [...identity.user.roles],
    permissions: [...identity.permissions],
    method: identity.method,
  }
  const base = { method: upperMethod, target: rawTarget, identity: explainedIdentity }

  let target: { path: string; query: string }
  try {
    target = normalizeTarget(rawTarget)
  } catch (err) {
    return { ...base, path: null, query: null, path_refusal: pathRefusal(err), match: null, decision: null, answer: refused('GH_BAD_PATH') }
  }

  const match = table.match(target.path, upperMethod)
  const common = { ...base, path: target.path, query: target.query, path_refusal: null, match }
  if (match.kind === 'not_found') return { ...common, decision: null, answer: refused('GH_NOT_FOUND') }
  if (match.kind === 'method_not_allowed') return { ...common, decision: null, answer: refused('GH_METHOD_NOT_ALLOWED') }
  try {
    assertForwardable(match.upstreamPath)
  } catch (err) {
    return { ...common, path_refusal: pathRefusal(err), decision: null, answer: refused('GH_BAD_PATH') }
  }

  const decision = decide(match.route, identity)
  const answer: ExplainedAnswer = decision.allow
    ? { status: null, code: null, upstream_url: match.route.upstream + match.upstreamPath + target.query }
    : refused(decision.outcome === 'unauthenticated' ? 'GH_UNAUTHENTICATED' : 'GH_FORBIDDEN')
  return { ...common, decision, answer }
}

/** A path refusal as explain reports it; anything but GH_BAD_PATH is a bug and rethrown. */
function pathRefusal(err: unknown): { reason: PathRefusal; message: string } {
  if (!(err instanceof GatehouseError) || err.code !== 'GH_BAD_PATH') throw err
  return { reason: err.details?.reason as PathRefusal, message: err.message }
}

function refused(code: ErrorCode): ExplainedAnswer {
  return { status: errorCodes[code].status, code, upstream_url: null }
}
