/**
 * The request pipeline every caller shares (the edge, `gatehouse explain`, forward auth and
 * WebSocket handshakes): resolve → authenticate → rate-limit → authorise → sign. Each stage
 * either passes its result on or throws a GatehouseError; `evaluate` turns the first throw into
 * a refusal, reports the outcome once, and never throws itself.
 */
import type { RouteConfig } from '../../config/types.js'
import { GatehouseError, isGatehouseError } from '../../errors.js'
import type { AssertionRequest } from '../assertion-signer.js'
import type { Identity } from '../identity.js'
import { identityHeaders } from '../identity-headers.js'
import type { RouteTable } from '../route-table.js'
import type { InjectedSecret } from '../user-secrets/index.js'
import { authorise, isBrowserNavigation, type OriginPolicy } from './authorise.js'
import { outcomeOf, type GateAllow, type GateOutcome, type GateRefusal } from './outcome.js'
import { rateLimitHeaders, type RateLimiter } from './rate-limit.js'
import type { GateRequest } from './request.js'
import { resolveRequest, type Resolved } from './resolve.js'
import { secondFactorState, type SecondFactorPolicy } from './second-factor.js'

/** Turns a request's credential into an identity: null without one, a thrown GatehouseError for a bad one. */
export interface CredentialResolver {
  /** `rawHeaders` as node gives them (name, value, …): several Authorization headers are a refusal, not a choice. */
  resolve(rawHeaders: readonly string[]): Promise<Identity | null>
}

/** The user's own secret for a route (core/user-secrets), looked up once the request is allowed. */
export interface SecretSource {
  /** Null (synchronously) for a route without `user_secret`: no lookup at all. */
  forRequest(identity: Identity | null, route: RouteConfig): Promise<InjectedSecret | null> | null
}

export interface RequestSigner {
  sign(identity: Identity, request: AssertionRequest): string
}

export interface GateDependencies {
  table: RouteTable
  credentials: CredentialResolver
  /** Null: no rate limits (explain). */
  rateLimiter: RateLimiter | null
  /** Null: no assertion is signed and no identity headers are made (explain). */
  signer: RequestSigner | null
  origins: OriginPolicy
  /**
   * Null or absent: no user secret is injected (explain). Never asked for a forward-auth call:
   * the proxy in front would receive the secret, and SPEC §4b lists identity headers only.
   */
  secrets?: SecretSource | null
  /** Maps what a dependency threw (a breaker, a store outage) to the answer; default: 500 GH_INTERNAL. */
  toError?: (err: unknown) => GatehouseError
  /** Second factors (SPEC §3): `auth.mfa.required_roles` and who has a factor; null: no such checks. */
  secondFactors?: SecondFactorPolicy | null
  /** Told every outcome, exactly once per `evaluate`: where metrics count decisions. */
  onOutcome?: (outcome: GateOutcome, request: GateRequest) => void
}

interface Progress {
  target: GateRefusal['target']
  match: GateRefusal['match']
  route: RouteConfig | null
  identity: Identity | null
  decision: GateRefusal['decision']
  responseHeaders: Record<string, string>
}

export class Gate {
  readonly #deps: GateDependencies

  constructor(deps: GateDependencies) {
    this.#deps = deps
  }

  get table(): RouteTable {
    return this.#deps.table
  }

  /** The decision for one request, with the exact upstream request when it is allowed. */
  async evaluate(request: GateRequest): Promise<GateOutcome> {
    const progress: Progress = { target: null, match: null, route: null, identity: null, decision: null, responseHeaders: {} }
    let outcome: GateOutcome
    try {
      const resolved = resolveRequest(this.#deps.table, request, (step) => Object.assign(progress, step))
      progress.route = resolved.route
      progress.identity = await this.#authenticate(resolved.route, request)
      if (resolved.route.rate_limit !== null) await this.#rateLimit(resolved.route, progress, request)
      // Looks nothing up unless the route has mfa: required or the user holds a role of auth.mfa.required_roles.
      const factors = await secondFactorState(progress.identity, resolved.route.mfa === 'required', this.#deps.secondFactors ?? null)
      const decision = authorise(resolved.route, progress.identity, request, this.#deps.origins, (d) => (progress.decision = d), factors)
      const identityHeaders = this.#sign(resolved, progress.identity, request)
      const userSecret = request.kind === 'forward_auth' ? null : await (this.#deps.secrets?.forRequest(progress.identity, resolved.route) ?? null)
      // Field by field: spreading two objects into a literal took V8's slow path, 3 µs a request.
      outcome = {
        kind: 'allow',
        outcome: 'allow',
        target: resolved.target,
        match: resolved.match,
        route: resolved.route,
        upstream: resolved.upstream,
        identity: progress.identity,
        decision,
        responseHeaders: progress.responseHeaders,
        identityHeaders,
        userSecret,
      }
    } catch (err) {
      outcome = this.#refusal(progress, err, request)
    }
    this.#deps.onOutcome?.(outcome, request)
    return outcome
  }

  /** A public route attempts no authentication: its credentials are stripped, never judged. */
  async #authenticate(route: RouteConfig, request: GateRequest): Promise<Identity | null> {
    if (route.auth === 'public') return null
    return this.#deps.credentials.resolve(request.rawHeaders)
  }

  async #rateLimit(route: RouteConfig, progress: Progress, request: GateRequest): Promise<void> {
    const verdict = await this.#deps.rateLimiter?.take(route, progress.identity, request.clientKey)
    if (verdict === null || verdict === undefined) return
    Object.assign(progress.responseHeaders, rateLimitHeaders(verdict))
    if (!verdict.allowed) {
      throw new GatehouseError('GH_RATE_LIMITED', `Rate limit exceeded, retry in ${verdict.resetSeconds} s`, {
        retryAfter: verdict.resetSeconds,
        details: { route: route.name },
      })
    }
  }

  /** The identity headers with an assertion bound to the upstream request (`htm`, `htu`). */
  #sign(resolved: Resolved, identity: Identity | null, request: GateRequest): GateAllow['identityHeaders'] {
    if (identity === null || this.#deps.signer === null) return {}
    const assertion = this.#deps.signer.sign(identity, {
      audience: resolved.route.name,
      requestId: request.requestId,
      method: request.method,
      uri: resolved.upstream.htu,
    })
    return identityHeaders(identity, assertion, identity.tokenId ?? undefined)
  }

  #refusal(progress: Progress, err: unknown, request: GateRequest): GateRefusal {
    const error = isGatehouseError(err) ? err : (this.#deps.toError?.(err) ?? new GatehouseError('GH_INTERNAL', undefined, { cause: err }))
    const responseHeaders = { ...progress.responseHeaders }
    if (progress.match?.kind === 'method_not_allowed') responseHeaders.allow = progress.match.allow.join(', ')
    const target = progress.target
    const next = target === null ? '' : encodeURIComponent(target.path + target.query)
    const navigation = target !== null && isBrowserNavigation(request)
    const loginRedirect =
      progress.decision?.outcome === 'unauthenticated' && navigation
        ? `/auth/login?next=${next}`
        // A session without the second factor a route needs: the step-up page asks for it.
        : error.code === 'GH_MFA_REQUIRED' && progress.identity?.method === 'session' && navigation
          ? `/auth/login/step-up?next=${next}`
          : null
    return { ...progress, responseHeaders, kind: 'refuse', outcome: outcomeOf(error), error, loginRedirect }
  }
}
