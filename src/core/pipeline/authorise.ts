/**
 * The authorise stage: the route's policy (core/policy.ts), then the second factor, then the
 * origin check. Pure functions of the route, the identity and the request's headers.
 */
import type { RouteConfig } from '../../config/types.js'
import { GatehouseError } from '../../errors.js'
import type { OriginMatcher } from '../allowed-origins.js'
import type { Identity } from '../identity.js'
import { crossOriginRefusal, isUnsafeMethod } from '../origin-check.js'
import { decide, type Decision } from '../policy.js'
import type { GateRequest } from './request.js'
import { enforceSecondFactor, type SecondFactorState } from './second-factor.js'

/** The origins a cookie-authenticated browser request may come from (SPEC §3 "Allowed origins"). */
export interface OriginPolicy {
  /** `public_url`: its scheme (and port, if it names one) apply to the hosts routes name. */
  publicUrl: string
  /** `public_url`'s origin and the CORS origins of the configuration. */
  allowed: OriginMatcher
}

/**
 * The decision, throwing GH_UNAUTHENTICATED or GH_FORBIDDEN (naming the missing permissions) when
 * it denies, GH_MFA_ENROLMENT_REQUIRED or GH_MFA_REQUIRED when the second factor is missing
 * (`factors`: second-factor.ts, worked out before), GH_CSRF for an origin refusal.
 */
export function authorise(
  route: RouteConfig,
  identity: Identity | null,
  request: GateRequest,
  origins: OriginPolicy,
  seen: (d: Decision) => void,
  factors: SecondFactorState = { enrolmentRequired: false, satisfiesRoute: true },
): Decision {
  const decision = decide(route, identity)
  seen(decision)
  if (!decision.allow) {
    if (decision.outcome === 'unauthenticated') throw new GatehouseError('GH_UNAUTHENTICATED')
    const missing = decision.missing_permissions
    throw new GatehouseError('GH_FORBIDDEN', `Missing permission: ${missing.join(', ')}`, {
      details: { route: route.name, missing_permission: missing[0], missing_permissions: missing },
    })
  }
  // Second factors (route `mfa: required`, `auth.mfa.required_roles`) are checked here, after the
  // permissions and before the origin: a 403 GH_MFA_* names what the identity lacks.
  if (identity !== null) enforceSecondFactor(factors, route.name)
  const refusal = originRefusal(route, identity, request, origins)
  if (refusal !== null) throw new GatehouseError('GH_CSRF', refusal)
  return decision
}

/**
 * Only a cookie is sent by a browser on its own, so only cookie-authenticated requests are
 * checked: unsafe methods on routes with `csrf: true`; every WebSocket handshake (cross-site
 * WebSocket hijacking), which must name an allowed Origin; every forward-auth call that names
 * an Origin, since the proxy in front does not say whether the original was a handshake.
 */
function originRefusal(route: RouteConfig, identity: Identity | null, request: GateRequest, origins: OriginPolicy): string | null {
  if (identity?.via !== 'cookie') return null
  const allowed = allowedOriginsFor(route, request.host, origins)
  const { origin } = request.headers
  if (request.kind === 'websocket' && (origin === undefined || !allowed.has(origin))) {
    return 'A cookie-authenticated WebSocket handshake needs an allowed Origin'
  }
  if (request.kind === 'forward_auth' && origin !== undefined && !allowed.has(origin)) {
    return 'The request comes from another origin'
  }
  if (route.csrf && isUnsafeMethod(request.method)) return crossOriginRefusal(request.headers, allowed)
  return null
}

/**
 * Adds the route's own `cors` origins and, for a route naming a host, the request's host with
 * `public_url`'s scheme and port.
 */
export function allowedOriginsFor(route: RouteConfig, host: string | null, origins: OriginPolicy): OriginMatcher {
  const corsOrigins = route.cors?.origins ?? []
  let own: string | null = null
  if (route.host !== null && host !== null) {
    const publicUrl = new URL(origins.publicUrl)
    const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':', 1)[0] ?? ''
    own = `${publicUrl.protocol}//${name.toLowerCase()}${publicUrl.port === '' ? '' : `:${publicUrl.port}`}`
  }
  if (own === null && corsOrigins.length === 0) return origins.allowed
  return { has: (origin) => origin === own || corsOrigins.includes(origin) || origins.allowed.has(origin) }
}

/** A browser navigation: sent to the login page instead of getting a bare 401. */
export function isBrowserNavigation(request: Pick<GateRequest, 'method' | 'headers'>): boolean {
  return (request.method === 'GET' || request.method === 'HEAD') && (request.headers.accept ?? '').includes('text/html')
}
