/**
 * `gatehouse explain`: one request through the same pipeline as the edge, offline. The
 * identity is given instead of read from credentials, nothing is counted or signed, and the
 * answer names the exact URL the upstream would receive.
 */
import { errorCodes, type ErrorCode } from '../../errors.js'
import type { Identity } from '../identity.js'
import type { PathRefusal } from '../paths.js'
import type { Decision } from '../policy.js'
import type { RouteMatch, RouteTable } from '../route-table.js'
import { Gate } from './gate.js'
import type { SecondFactorPolicy } from './second-factor.js'

export interface ExplainedIdentity {
  user_id: string
  email: string
  roles: string[]
  permissions: string[]
  method: Identity['method']
}

/** What the gateway would answer, before rate limits and the upstream itself are considered. */
export interface ExplainedAnswer {
  /** 400, 404, 405, 401 (a browser navigation gets 302 to the login page instead), 403; null when proxied. */
  status: number | null
  code: ErrorCode | null
  /** The URL the request is proxied to (on the first server), exactly as the upstream receives it; null when refused. */
  upstream_url: string | null
  /** The path and query every server receives (the assertion's `htu`); null when refused. */
  upstream_path?: string | null
  /** The route's servers, in the configured order; null when refused. */
  servers?: readonly string[] | null
}

export interface Explanation {
  method: string
  /** The host the request names; null: none (only routes without a host match). */
  host: string | null
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

export interface ExplainOptions {
  host?: string | null
  /** `public_url`, for the origins of routes naming a host; only cookie requests need it, and explain sends none. */
  publicUrl?: string
  /** `auth.mfa.required_roles` and whether the identity's user has a second factor (SPEC §3). */
  secondFactors?: SecondFactorPolicy | null
}

/**
 * What the edge would do with `method rawTarget` from `identity` (null: no credential).
 * `method` is upper-cased for the convenience of a command line; the edge receives it upper-case.
 */
export async function explain(
  table: RouteTable,
  rawTarget: string,
  method: string,
  identity: Identity | null,
  options: ExplainOptions = {},
): Promise<Explanation> {
  const gate = new Gate({
    table,
    credentials: { resolve: async () => identity },
    rateLimiter: null,
    signer: null,
    origins: { publicUrl: options.publicUrl ?? 'http://localhost', allowed: new Set() },
    secondFactors: options.secondFactors ?? null,
  })
  const host = options.host ?? null
  const upperMethod = method.toUpperCase()
  const outcome = await gate.evaluate({
    kind: 'proxy',
    method: upperMethod,
    host,
    target: rawTarget,
    headers: {},
    rawHeaders: [],
    clientKey: () => 'explain',
    requestId: 'explain',
  })
  const refusal = outcome.kind === 'refuse' && outcome.error.code === 'GH_BAD_PATH' ? outcome.error : null
  return {
    method: upperMethod,
    host,
    target: rawTarget,
    path: outcome.target?.path ?? null,
    query: outcome.target?.query ?? null,
    path_refusal: refusal && { reason: refusal.details?.reason as PathRefusal, message: refusal.message },
    match: outcome.match,
    identity: identity && {
      user_id: identity.user.id,
      email: identity.user.email,
      roles: [...identity.user.roles],
      permissions: [...identity.permissions],
      method: identity.method,
    },
    decision: outcome.decision,
    answer: outcome.kind === 'allow'
      ? { status: null, code: null, upstream_url: outcome.upstream.url, upstream_path: outcome.upstream.htu, servers: outcome.route.servers }
      : { status: errorCodes[outcome.error.code].status, code: outcome.error.code, upstream_url: null, upstream_path: null, servers: null },
  }
}
