/**
 * Who may call each /auth endpoint, declared per route as `config.access`, and the hook that
 * enforces it before the body is even read: authentication, the PAT restriction of SPEC §3
 * (a PAT may call GET /auth/me, and the admin API when its permission list was explicit) and
 * the CSRF origin check.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Identity } from '../core/identity.js'
import { GatehouseError } from '../errors.js'
import type { Authenticator } from './authenticate.js'
import './request-context.js'
import type { OriginMatcher } from '../core/allowed-origins.js'
import { checkSameOrigin, isUnsafeMethod, sentOriginRefusal } from '../core/origin-check.js'
import { enforceSecondFactor, mayNeedEnrolment, secondFactorState, type SecondFactorPolicy } from '../core/pipeline/index.js'

/**
 * - `anonymous`: credentials are not read (login);
 * - `optional`: an identity when a valid credential is sent (register, for admins);
 * - `session`: a browser or API session, never a PAT;
 * - `any`: a session or a PAT;
 * - `admin`: a session, or a PAT whose own permission list was given at its creation (the
 *   admin API: automation acts with that list ∩ its owner's current permissions, which is what
 *   the identity carries; the route still checks the permission it needs).
 */
export type Access = 'anonymous' | 'optional' | 'session' | 'any' | 'admin'

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access
    /** Reachable by users who must still enrol a second factor (`auth.mfa.required_roles`). */
    mfaEnrolment?: boolean
  }
}

export function accessHook(authenticator: Authenticator, allowedOrigins: OriginMatcher, secondFactors: SecondFactorPolicy | null = null) {
  return async function enforceAccess(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    request.identity = null
    // A CORS preflight carries no credentials; http/cors.ts answers it.
    if (request.method === 'OPTIONS') return
    const access = request.routeOptions.config.access ?? 'session'
    const unsafe = isUnsafeMethod(request.method)

    if (access === 'anonymous') {
      if (unsafe) checkOriginWhenSent(request, allowedOrigins)
      return
    }
    const identity = await authenticator.authenticate(request)
    if (identity === null) {
      if (access !== 'optional') throw new GatehouseError('GH_UNAUTHENTICATED')
      if (unsafe) checkOriginWhenSent(request, allowedOrigins)
      return
    }
    if (identity.method === 'jwt' && !(access === 'any' && request.method === 'GET')) {
      throw new GatehouseError('GH_FORBIDDEN', 'A token of another issuer may only call GET /auth/me', {
        details: { reason: 'jwt_not_allowed' },
      })
    }
    if (identity.method === 'pat' && !patMayCall(access, identity)) {
      throw new GatehouseError(
        'GH_FORBIDDEN',
        'A personal access token may call only GET /auth/me, and the admin API when it was created with an explicit permission list',
        { details: { reason: 'pat_not_allowed' } },
      )
    }
    if (unsafe && identity.via === 'cookie') checkSameOrigin(request.headers, allowedOrigins)
    // SPEC §3: a user who must enrol reaches only the account page, enrolment and logout.
    if (secondFactors !== null && request.routeOptions.config.mfaEnrolment !== true && mayNeedEnrolment(identity, secondFactors)) {
      enforceSecondFactor(await secondFactorState(identity, false, secondFactors), null)
    }
    request.identity = identity
  }
}

/**
 * A PAT with all of its owner's permissions (none listed) stays a key for upstreams: only one
 * made for automation, with a list that says so, reaches the admin API.
 */
function patMayCall(access: Access, identity: Identity): boolean {
  if (access === 'any') return true
  return access === 'admin' && identity.explicitPermissions
}

/** The signed-in identity of a route whose access is `session` or `any`. */
export function identityOf(request: FastifyRequest): Identity {
  if (request.identity === null) throw new GatehouseError('GH_UNAUTHENTICATED')
  return request.identity
}

/** See `sentOriginRefusal`: login CSRF. */
function checkOriginWhenSent(request: FastifyRequest, allowedOrigins: OriginMatcher): void {
  const refusal = sentOriginRefusal(request.headers, allowedOrigins)
  if (refusal !== null) throw new GatehouseError('GH_CSRF', refusal)
}
