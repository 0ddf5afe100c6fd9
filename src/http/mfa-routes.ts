/**
 * Enrolling and removing second factors (SPEC §5): TOTP (start → confirm with a code → removed
 * with the password) and recovery codes (new ones with the password). Session only: a PAT never
 * changes its user's factors. Adding or removing a factor ends the user's other sessions.
 * `config.mfaEnrolment` marks them as reachable by users who must still enrol
 * (`auth.mfa.required_roles`).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { SecondFactors } from '../core/mfa/index.js'
import type { SessionService } from '../core/sessions.js'
import type { UserService } from '../core/users.js'
import { identityOf } from './access.js'
import * as schemas from './schemas.js'

export interface MfaRoutesOptions {
  users: Pick<UserService, 'verifyPassword'>
  sessions: Pick<SessionService, 'revokeAll'>
  factors: SecondFactors
}

/** Ends every session of the user but the one making the change. */
async function endOtherSessions(request: FastifyRequest, sessions: MfaRoutesOptions['sessions']): Promise<void> {
  const identity = identityOf(request)
  await sessions.revokeAll(identity.user.id, { except: identity.session?.session.id })
}

export async function mfaRoutes(app: FastifyInstance, options: MfaRoutesOptions): Promise<void> {
  const { users, sessions, factors } = options
  const config = { access: 'session', mfaEnrolment: true } as const

  app.post('/auth/mfa/totp', { config, schema: { response: { 200: schemas.totpEnrolment, ...schemas.errorResponses } } }, async (request) => {
    const { user } = identityOf(request)
    return factors.startTotp(user)
  })

  app.post<{ Body: { code: string } }>(
    '/auth/mfa/totp/confirm',
    { config, schema: { body: schemas.totpConfirmBody, response: { 200: schemas.recoveryCodes, ...schemas.errorResponses } } },
    async (request) => {
      const { user } = identityOf(request)
      const codes = await factors.confirmTotp(user, request.body.code, { ip: request.ip })
      await endOtherSessions(request, sessions)
      return { recovery_codes: codes }
    },
  )

  app.delete<{ Body: { password: string } }>(
    '/auth/mfa/totp',
    { config, schema: { body: schemas.deleteMeBody, response: { 204: schemas.noContent, ...schemas.errorResponses } } },
    async (request, reply) => {
      const { user } = identityOf(request)
      await users.verifyPassword(user.id, request.body.password, { ip: request.ip })
      await factors.removeTotp(user, { ip: request.ip })
      await endOtherSessions(request, sessions)
      return reply.code(204).send()
    },
  )

  app.post<{ Body: { password: string } }>(
    '/auth/mfa/recovery-codes',
    { config, schema: { body: schemas.deleteMeBody, response: { 200: schemas.recoveryCodes, ...schemas.errorResponses } } },
    async (request) => {
      const { user } = identityOf(request)
      await users.verifyPassword(user.id, request.body.password, { ip: request.ip })
      return { recovery_codes: await factors.regenerateRecoveryCodes(user, { ip: request.ip }) }
    },
  )
}
