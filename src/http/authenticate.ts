/**
 * Turns a request's credential into an Identity, or null for an anonymous request.
 * Fails closed: an unknown or expired header credential is 401, a store outage is 503,
 * and nothing ever falls back from a bad Authorization header to the cookie.
 */
import type { FastifyRequest } from 'fastify'
import type { Identity } from '../core/identity.js'
import type { CredentialResolver } from '../core/pipeline/index.js'
import { hasSecondFactor } from '../core/amr.js'
import { permissionsFor } from '../core/permissions.js'
import type { ActiveSession } from '../core/sessions.js'
import { GatehouseError } from '../errors.js'
import type { ActiveUserCache } from '../core/active-users.js'
import type { PatService } from '../core/pats.js'
import type { SessionService } from '../core/sessions.js'
import { readCredentials } from './credentials.js'
import { jwtIdentity } from './jwt-identity.js'
import type { JwtBearer } from '../oidc/jwt-bearer.js'
import type { SessionRecheck } from '../oidc/session-recheck.js'

export interface Authenticator extends CredentialResolver {
  /** The cookie that carries the session token. */
  readonly cookieName: string
  authenticate(request: FastifyRequest): Promise<Identity | null>
}

const unknownCredential = () => new GatehouseError('GH_UNAUTHENTICATED', 'The credential is unknown or has expired')

/** Told of every credential checked: a PAT or a session token, and whether it was good. */
export type AttemptListener = (method: 'session' | 'pat' | 'jwt', result: 'success' | 'failure') => void

export interface AuthenticatorServices {
  sessions: SessionService
  activeUsers: ActiveUserCache
  pats: Pick<PatService, 'authenticate'>
  /** `roles` of the configuration: a session's permissions come from its user's roles. */
  roles: Readonly<Record<string, readonly string[]>>
  /** `auth.jwt_bearer`: access tokens of other issuers. */
  jwtBearer: JwtBearer
  /** OIDC sessions due for their provider re-check (`refresh_interval`). */
  sessionRecheck: Pick<SessionRecheck, 'stillValid'>
}

export function createAuthenticator(services: AuthenticatorServices, cookieName: string, onAttempt: AttemptListener = () => {}): Authenticator {
  const { sessions, activeUsers, pats, roles, jwtBearer, sessionRecheck } = services

  async function identityFor(active: ActiveSession, via: Identity['via']): Promise<Identity | null> {
    // An OIDC session due for its provider re-check (refresh_interval) may end here.
    if (!(await sessionRecheck.stillValid(active))) return null
    const user = await activeUsers.get(active.session.user_id)
    if (user === null) {
      await sessions.revoke(active.session.user_id, active.session.id)
      return null
    }
    return {
      user,
      permissions: permissionsFor(user.roles, roles),
      method: 'session',
      amr: active.session.amr,
      secondFactor: hasSecondFactor(active.session.amr),
      session: active,
      via,
      expiresAt: active.expiresAt,
      tokenId: null,
      explicitPermissions: false,
    }
  }

  async function resolve(rawHeaders: readonly string[]): Promise<Identity | null> {
    const { header, cookie } = readCredentials(rawHeaders, cookieName)
    if (header?.kind === 'pat') {
      const pat = await pats.authenticate(header.token)
      onAttempt('pat', pat === null ? 'failure' : 'success')
      if (pat === null) throw unknownCredential()
      const identity: Identity = {
        user: pat.user,
        permissions: pat.permissions,
        method: 'pat',
        amr: ['pat'],
        secondFactor: pat.secondFactor,
        session: null,
        via: 'header',
        expiresAt: pat.expiresAt,
        tokenId: pat.patId,
        explicitPermissions: pat.explicitPermissions,
      }
      if (cookie !== null) await refuseOtherUsersCookie(cookie, identity)
      return identity
    }
    if (header?.kind === 'jwt') {
      // auth.jwt_bearer (oidc/jwt-bearer.ts); a JWT of an unlisted issuer is an unknown credential.
      const identity = await jwtIdentity(jwtBearer, header.token, roles, onAttempt)
      if (cookie !== null && (await sessions.resolve(cookie)) !== null) {
        throw new GatehouseError('GH_AMBIGUOUS_CREDENTIALS', 'The cookie and the Authorization header name different users')
      }
      return identity
    }
    if (header?.kind === 'session') {
      const active = await sessions.resolve(header.token)
      const identity = active && (await identityFor(active, 'header'))
      onAttempt('session', identity ? 'success' : 'failure')
      if (!identity) throw unknownCredential()
      if (cookie !== null && cookie !== header.token) await refuseOtherUsersCookie(cookie, identity)
      return identity
    }
    if (cookie === null) return null
    // A stale cookie is no credential at all: the request goes on as anonymous.
    const active = await sessions.resolve(cookie)
    const identity = active && (await identityFor(active, 'cookie'))
    onAttempt('session', identity ? 'success' : 'failure')
    return identity
  }

  /**
   * SPEC §3: a cookie and an Authorization credential naming different users are refused,
   * whichever kind the header credential is; a cookie that names nobody (stale) is no
   * credential and does not matter.
   */
  async function refuseOtherUsersCookie(cookie: string, identity: Identity): Promise<void> {
    const other = await sessions.resolve(cookie)
    if (other !== null && other.session.user_id !== identity.user.id) {
      throw new GatehouseError('GH_AMBIGUOUS_CREDENTIALS', 'The cookie and the Authorization header name different users')
    }
  }

  return { cookieName, resolve, authenticate: (request) => resolve(request.raw.rawHeaders) }
}
