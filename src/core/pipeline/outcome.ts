/** What the pipeline answers: allow with the exact upstream request, or a refusal with its reason. */
import type { RouteConfig } from '../../config/types.js'
import type { GatehouseError } from '../../errors.js'
import type { Identity } from '../identity.js'
import type { NormalizedTarget } from '../paths.js'
import type { Decision } from '../policy.js'
import type { RouteMatch } from '../route-table.js'
import type { UpstreamTarget } from './resolve.js'

/** The `outcome` label of `gatehouse_decisions_total` (SPEC §9). */
export type DecisionOutcome = 'allow' | 'unauthenticated' | 'forbidden' | 'rate_limited' | 'error'

/** What the pipeline had learnt when it stopped: each field is null until its stage ran. */
interface Trace {
  /** The normalised target; null when it was refused. */
  target: NormalizedTarget | null
  match: RouteMatch | null
  route: RouteConfig | null
  /** Null for an anonymous request, a public route, or when authentication failed. */
  identity: Identity | null
  /** The policy decision; null unless authentication and the rate limit passed. */
  decision: Decision | null
  /** To send with the answer, whichever it is (`x-ratelimit-*`; `allow` with a 405). */
  responseHeaders: Readonly<Record<string, string>>
}

export interface GateAllow extends Trace {
  kind: 'allow'
  outcome: 'allow'
  target: NormalizedTarget
  route: RouteConfig
  decision: Decision
  upstream: UpstreamTarget
  /** X-Auth-* and the signed X-Auth-Assertion for an authenticated request; empty otherwise. */
  identityHeaders: Readonly<Record<string, string>>
}

export interface GateRefusal extends Trace {
  kind: 'refuse'
  outcome: Exclude<DecisionOutcome, 'allow'>
  /** Status, GH_ code, message, details and Retry-After of the answer. */
  error: GatehouseError
  /**
   * For a browser navigation without a credential: where to send it (302) instead of the 401;
   * for a session lacking the second factor a route needs, the step-up page instead of the 403.
   */
  loginRedirect: string | null
}

export type GateOutcome = GateAllow | GateRefusal

/** How a refusal is counted (SPEC §9): credential errors are unauthenticated, every 403 forbidden. */
export function outcomeOf(error: GatehouseError): Exclude<DecisionOutcome, 'allow'> {
  if (error.code === 'GH_RATE_LIMITED') return 'rate_limited'
  if (error.statusCode === 401 || error.code === 'GH_AMBIGUOUS_CREDENTIALS') return 'unauthenticated'
  if (error.statusCode === 403) return 'forbidden'
  return 'error'
}
