/**
 * The passkey endpoints of a signed-in user (SPEC §5): registration options, registering,
 * listing and removing. Registering or removing one ends the user's other sessions (SPEC §3).
 * Session access only: a PAT never manages its user's factors.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { PasskeyService } from '../core/passkeys.js'
import type { SessionService } from '../core/sessions.js'
import { GatehouseError } from '../errors.js'
import { identityOf } from './access.js'
import * as passkeySchemas from './passkey-schemas.js'
import * as schemas from './schemas.js'

export interface PasskeyRoutesOptions {
  passkeys: PasskeyService
  sessions: SessionService
  /** Told after a passkey was added or removed (the second-factor status cache). */
  onChanged?: (userId: string) => Promise<void> | void
}

/** Session only; reachable by users who must still enrol a second factor (`auth.mfa.required_roles`). */
const ENROLMENT = { access: 'session', mfaEnrolment: true } as const

export async function passkeyRoutes(app: FastifyInstance, options: PasskeyRoutesOptions): Promise<void> {
  const { passkeys, sessions } = options

  /** SPEC §3: enrolling or removing a factor ends the user's other sessions (and their refresh chains). */
  async function factorsChanged(request: FastifyRequest): Promise<void> {
    const identity = identityOf(request)
    await options.onChanged?.(identity.user.id)
    await sessions.revokeAll(identity.user.id, { except: identity.session?.session.id })
  }

  app.post(
    '/auth/mfa/webauthn/options',
    {
      config: ENROLMENT,
      schema: {
        summary: 'Passkey registration options for navigator.credentials.create(); the challenge is kept server-side, single use, 5 minutes',
        body: passkeySchemas.emptyBody,
        response: { 200: passkeySchemas.webauthnOptions('PublicKeyCredentialCreationOptionsJSON for navigator.credentials.create()'), ...schemas.errorResponses },
      },
    },
    async (request) => passkeys.registrationOptions(identityOf(request).user),
  )

  app.post<{ Body: { name: string; response: unknown } }>(
    '/auth/mfa/webauthn',
    {
      config: ENROLMENT,
      schema: {
        summary: "Register a passkey: {name, response} (the browser's answer to the options); ends the user's other sessions",
        body: passkeySchemas.registerPasskeyBody,
        response: { 201: { $ref: 'Passkey#' }, ...schemas.errorResponses },
      },
    },
    async (request, reply: FastifyReply) => {
      const { user } = identityOf(request)
      const passkey = await passkeys.register(user, request.body, { ip: request.ip })
      await factorsChanged(request)
      return reply.code(201).send(passkey)
    },
  )

  app.get(
    '/auth/mfa/webauthn',
    { config: ENROLMENT, schema: { summary: "The user's passkeys (never their keys)", response: { 200: passkeySchemas.passkeyList, ...schemas.errorResponses } } },
    async (request) => ({ items: await passkeys.list(identityOf(request).user.id), next_cursor: null }),
  )

  app.delete<{ Params: { id: string } }>(
    '/auth/mfa/webauthn/:id',
    { config: ENROLMENT, schema: { summary: "Remove one of the user's passkeys; ends the user's other sessions", params: passkeySchemas.passkeyIdParams, response: { 204: schemas.noContent, ...schemas.errorResponses } } },
    async (request, reply) => {
      const { user } = identityOf(request)
      if (!(await passkeys.remove(user, request.params.id, { ip: request.ip }))) throw new GatehouseError('GH_NOT_FOUND', 'No such passkey')
      await factorsChanged(request)
      return reply.code(204).send()
    },
  )
}
