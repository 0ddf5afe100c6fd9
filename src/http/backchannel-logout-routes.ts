/**
 * OpenID Connect Back-Channel Logout 1.0 (SPEC §5): POST /auth/oidc/:name/backchannel-logout
 * with a form-encoded `logout_token`, sent by the provider's server. A valid, first-seen token
 * ends every session of the provider session (`sid`) or user (`sub`) it names. Sessions live
 * in the shared session store and are read from it on every request, so they end on every
 * replica at once. Not covered by login_rate_limit: the signed token authenticates the call.
 * Answers 200 (also when no session matched: the provider must not retry), 400 for a token
 * that does not validate or was seen before.
 */
import type { FastifyInstance } from 'fastify'
import type { AuditLog } from '../core/audit.js'
import type { OidcSessions } from '../core/oidc-sessions.js'
import type { Clock } from '../core/clock.js'
import type { SessionService } from '../core/sessions.js'
import { GatehouseError } from '../errors.js'
import type { LogoutTokenVerifier } from '../oidc/logout-token.js'
import type { OidcProviders } from '../oidc/providers.js'
import * as schemas from './schemas.js'

export interface BackchannelLogoutOptions {
  oidc: OidcProviders
  verifier: LogoutTokenVerifier
  oidcSessions: OidcSessions
  sessions: SessionService
  audit: AuditLog
  clock: Clock
}

const FORM = 'application/x-www-form-urlencoded'

export async function backchannelLogoutRoutes(app: FastifyInstance, options: BackchannelLogoutOptions): Promise<void> {
  const { oidc, verifier, oidcSessions, sessions, audit, clock } = options
  app.addContentTypeParser(FORM, { parseAs: 'string' }, (_request, body, done) => {
    const fields = new URLSearchParams(body as string)
    done(null, Object.fromEntries([...fields.keys()].map((key) => [key, fields.getAll(key).length === 1 ? fields.get(key) : fields.getAll(key)])))
  })

  app.post<{ Params: { name: string }; Body: { logout_token: string } }>(
    '/auth/oidc/:name/backchannel-logout',
    {
      config: { access: 'anonymous' },
      schema: {
        params: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
        consumes: [FORM],
        body: {
          type: 'object',
          properties: { logout_token: { type: 'string', minLength: 1, maxLength: 16384, description: 'The signed logout token' } },
          required: ['logout_token'],
        },
        response: { 200: { type: 'null', description: 'The sessions named by the token have ended' }, ...schemas.errorResponses },
      },
    },
    async (request, reply) => {
      const provider = oidc.get(request.params.name)
      if (provider === null) throw new GatehouseError('GH_NOT_FOUND', 'No such sign-in provider')
      const token = await verifier.verify(provider, request.body.logout_token)
      const issuer = provider.provider.issuer
      if (!(await oidcSessions.claimLogoutToken(issuer, token.jti, token.refusedAfter - clock.now()))) {
        throw new GatehouseError('GH_OIDC_INVALID', 'This logout token was used already', { details: { reason: 'logout_token_replayed' } })
      }
      const subject = { issuer, sid: token.sid, sub: token.sub }
      const ids = await oidcSessions.sessionIdsFor(subject)
      const ended = (await Promise.all(ids.map((id) => sessions.end(id)))).filter((session) => session !== null)
      await oidcSessions.forget(subject, ids)
      for (const userId of new Set(ended.map((session) => session.user_id))) {
        await audit.record('logout.backchannel', {
          userId,
          ip: request.ip,
          details: { provider: provider.name, sid: token.sid, sessions: ended.filter((s) => s.user_id === userId).length },
        })
      }
      request.log.info({ provider: provider.name, sessions: ended.length }, 'back-channel logout')
      return reply.code(200).send()
    },
  )
}
