/**
 * The gateway's own account endpoints under /auth (SPEC §5): register, login, logout,
 * me, password, sessions. Thin: each handler validates through its schema, calls the
 * core, and shapes the answer.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { EmailVerifications } from '../core/email-verifications.js'
import type { SecondFactors } from '../core/mfa/index.js'
import type { Identity } from '../core/identity.js'
import { hasPermission } from '../core/permissions.js'
import { GatehouseError } from '../errors.js'
import type { AuditLog } from '../core/audit.js'
import type { LoginThrottle } from '../core/login-throttle.js'
import type { SessionService } from '../core/sessions.js'
import type { UserService } from '../core/users.js'
import { identityOf } from './access.js'
import type { SessionCookie } from './session-cookie.js'
import * as schemas from './schemas.js'

const FORM = 'application/x-www-form-urlencoded'

export interface AuthRoutesOptions {
  users: UserService
  sessions: SessionService
  throttle: LoginThrottle
  audit: AuditLog
  /** `auth.registration`. */
  registration: 'open' | 'closed'
  cookie: SessionCookie
  /** Mails a verification link to users who register themselves. */
  verifications?: EmailVerifications
  /** The user's second factors, for `mfa` of GET /auth/me. */
  factors: Pick<SecondFactors, 'status'>
  /** Where a signed-out browser goes to end its provider session too (RP-initiated logout), or null. */
  providerLogout?: (sessionId: string) => Promise<string | null>
}

const iso = (ms: number) => new Date(ms).toISOString()

async function meOf(identity: Identity, factors: Pick<SecondFactors, 'status'>) {
  const { user } = identity
  // A jwt_bearer identity has no local user, hence no factors.
  const status = identity.method === 'jwt' ? { totp: false, passkeys: 0 } : await factors.status(user.id)
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    roles: user.roles,
    email_verified: user.email_verified,
    permissions: identity.permissions,
    mfa: { totp: status.totp, passkeys: status.passkeys },
    auth: {
      method: identity.method,
      expires_at: identity.expiresAt === null ? null : iso(identity.expiresAt),
      // How the user proved who they are: the `amr` of the assertions upstreams receive.
      amr: [...identity.amr],
    },
  }
}

export async function authRoutes(app: FastifyInstance, options: AuthRoutesOptions): Promise<void> {
  const { users, sessions, throttle, audit, registration, cookie, verifications } = options
  const noContent = (reply: FastifyReply) => reply.code(204).send()

  app.post<{ Body: { email: string; password: string; name?: string | null } }>(
    '/auth/register',
    {
      config: { access: 'optional' },
      schema: { body: schemas.registerBody, response: { 201: { $ref: 'User#' }, ...schemas.errorResponses } },
    },
    async (request, reply) => {
      const actor = request.identity
      const admin = actor !== null && hasPermission(actor.permissions, 'users:manage')
      if (registration === 'closed' && !admin) throw new GatehouseError('GH_REGISTRATION_CLOSED')
      if (!admin) await throttle.hitIp(request.ip)
      const { email, password, name } = request.body
      // An admin vouches for the address; anyone else confirms it with the mailed link.
      const user = await users.register(
        { email, password, name: name ?? null },
        { ip: request.ip, actorId: actor?.user.id ?? null, emailVerified: admin },
      )
      if (!admin) verifications?.sendFor(user, { ip: request.ip })
      return reply.code(201).send(user)
    },
  )

  // The answer of the endpoints that answer 204 (or an error), as a route schema part.
  const noContentAnswers = () => ({ response: { 204: schemas.noContent, ...schemas.errorResponses } })

  // Signing out: JSON clients get 204; a browser's plain form post (a "Sign out" button in an
  // app's page) gets 303 to the login page. Either way the same-origin check of `session`
  // access applies, and the form's fields, if any, are ignored.
  await app.register(async (signOut) => {
    signOut.addContentTypeParser(FORM, { parseAs: 'string' }, (_request, _body, done) => done(null, undefined))
    const answers = () => ({ response: { 204: schemas.noContent, 303: schemas.signOutRedirect, ...schemas.errorResponses } })
    // A form post of an OIDC session whose provider has provider_logout goes on to the
    // provider's end_session_endpoint, which sends the browser back to the login page.
    const signedOut = (request: FastifyRequest, reply: FastifyReply, location = '/auth/login') => {
      cookie.clear(reply)
      if ((request.headers['content-type'] ?? '').toLowerCase().startsWith(FORM)) return reply.redirect(location, 303)
      return noContent(reply)
    }

    // Signing out is open to users who must still enrol a second factor (SPEC §3).
    signOut.post('/auth/logout', { config: { access: 'session', mfaEnrolment: true }, schema: answers() }, async (request, reply) => {
      const identity = identityOf(request)
      const session = identity.session?.session
      // Read before the session ends: ending it deletes its provider link.
      const providerLogout = session ? await (options.providerLogout?.(session.id) ?? null) : null
      if (session) await sessions.revoke(identity.user.id, session.id)
      await audit.record('logout', { userId: identity.user.id, email: identity.user.email, ip: request.ip })
      return signedOut(request, reply, providerLogout ?? undefined)
    })

    signOut.post('/auth/logout-all', { config: { access: 'session', mfaEnrolment: true }, schema: answers() }, async (request, reply) => {
      const identity = identityOf(request)
      const ended = await sessions.revokeAll(identity.user.id)
      await audit.record('logout.all', { userId: identity.user.id, email: identity.user.email, ip: request.ip, details: { sessions: ended } })
      return signedOut(request, reply)
    })
  })

  app.get('/auth/me', { config: { access: 'any' }, schema: { response: { 200: { $ref: 'Me#' }, ...schemas.errorResponses } } }, async (request) =>
    meOf(identityOf(request), options.factors),
  )

  app.patch<{ Body: { name: string | null } }>(
    '/auth/me',
    { config: { access: 'session' }, schema: { body: schemas.patchMeBody, response: { 200: { $ref: 'Me#' }, ...schemas.errorResponses } } },
    async (request) => {
      const identity = identityOf(request)
      const user = await users.updateName(identity.user.id, request.body.name, { ip: request.ip })
      return meOf({ ...identity, user }, options.factors)
    },
  )

  app.delete<{ Body: { password: string } }>(
    '/auth/me',
    { config: { access: 'session' }, schema: { body: schemas.deleteMeBody, ...noContentAnswers() } },
    async (request, reply) => {
      const identity = identityOf(request)
      await users.delete(identity.user.id, { password: request.body.password, ip: request.ip })
      // The user is gone, so every session is refused from now on even if this fails.
      await sessions.revokeAll(identity.user.id)
      cookie.clear(reply)
      return noContent(reply)
    },
  )

  app.post<{ Body: { current_password: string; new_password: string } }>(
    '/auth/password',
    { config: { access: 'session' }, schema: { body: schemas.passwordBody, ...noContentAnswers() } },
    async (request, reply) => {
      const identity = identityOf(request)
      const { current_password, new_password } = request.body
      await users.changePassword(identity.user.id, current_password, new_password, { ip: request.ip })
      await sessions.revokeAll(identity.user.id, { except: identity.session?.session.id })
      return noContent(reply)
    },
  )

  app.get(
    '/auth/sessions',
    { config: { access: 'session' }, schema: { response: { 200: schemas.sessionList, ...schemas.errorResponses } } },
    async (request) => {
      const identity = identityOf(request)
      const current = identity.session?.session.id
      const active = await sessions.list(identity.user.id)
      return {
        items: active.map(({ session, expiresAt }) => ({
          id: session.id,
          method: session.amr[0],
          amr: session.amr,
          created_at: iso(session.created_at),
          last_seen_at: iso(session.last_seen_at),
          expires_at: iso(expiresAt),
          ip: session.ip,
          user_agent: session.user_agent,
          current: session.id === current,
        })),
        next_cursor: null,
      }
    },
  )

  app.delete<{ Params: { id: string } }>(
    '/auth/sessions/:id',
    { config: { access: 'session' }, schema: { params: schemas.idParams, ...noContentAnswers() } },
    async (request, reply) => {
      const identity = identityOf(request)
      const ended = await sessions.revoke(identity.user.id, request.params.id)
      if (!ended) throw new GatehouseError('GH_NOT_FOUND', 'No such session')
      await audit.record('session.revoked', { userId: identity.user.id, ip: request.ip, details: { session_id: request.params.id } })
      if (request.params.id === identity.session?.session.id) cookie.clear(reply)
      return noContent(reply)
    },
  )
}
