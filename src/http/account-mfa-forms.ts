/**
 * The second-factor forms of the account page (SPEC §5), doing what /auth/mfa/* do: set up an
 * authenticator app (the page shows the QR code), confirm it (the page shows the recovery codes,
 * once), turn it off and make new recovery codes (both with the password). Open to users who
 * must still enrol (`auth.mfa.required_roles`). Turning a factor on or off signs out the user's
 * other sessions.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Identity } from '../core/identity.js'
import type { SecondFactors } from '../core/mfa/index.js'
import type { SessionService } from '../core/sessions.js'
import type { UserService } from '../core/users.js'
import type { ErrorCode } from '../errors.js'
import type { AccountView } from './account-page.js'
import { renderAccountPage } from './account-page.js'
import { formBodySchema, invalidField } from './forms.js'
import { sendPage } from './page.js'
import * as schemas from './schemas.js'

type Handler<Body> = (identity: Identity, body: Body, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>

/** accountForm of account-routes.ts: a form of the account page, answered by `handle` or by the page with the reason. */
export type AccountForm = <Body>(
  path: string,
  summary: string,
  body: object,
  messages: Partial<Record<ErrorCode, string>>,
  handle: Handler<Body>,
  success?: Record<number, unknown>,
  options?: { mfaEnrolment?: boolean },
) => void

export interface SecondFactorFormsOptions {
  form: AccountForm
  view: (identity: Identity, extra?: Partial<AccountView>) => Promise<AccountView>
  factors: SecondFactors
  users: Pick<UserService, 'verifyPassword'>
  sessions: Pick<SessionService, 'revokeAll'>
}

const WRONG_PASSWORD = 'The password is not right. Nothing was changed.'

export function secondFactorForms({ form, view, factors, users, sessions }: SecondFactorFormsOptions): void {
  const enrolment = { mfaEnrolment: true }
  const page = (description: string) => ({ 200: schemas.htmlPage(description) })
  const show = async (reply: FastifyReply, identity: Identity, extra: Partial<AccountView>) =>
    sendPage(reply, 200, renderAccountPage(await view(identity, extra)))
  const endOtherSessions = (identity: Identity) => sessions.revokeAll(identity.user.id, { except: identity.session?.session.id })

  form<{ factor?: string }>(
    '/auth/account/mfa/totp',
    'Form: start setting up an authenticator app, as POST /auth/mfa/totp; the page shows the QR code',
    // A form needs a field to be posted as one: `factor=totp` (a hidden field) says what is set up.
    formBodySchema({ factor: 'totp' }, [], 16),
    {},
    async (identity, _body, _request, reply) => {
      const started = await factors.startTotp(identity.user)
      return show(reply, identity, { totpEnrolment: { secret: started.secret, qr_svg: started.qr_svg } })
    },
    page('The account page with the QR code and the confirmation form'),
    enrolment,
  )

  form<{ code: string }>(
    '/auth/account/mfa/totp/confirm',
    'Form: turn the authenticator app on with a code from it, as POST /auth/mfa/totp/confirm; the page shows the recovery codes once',
    formBodySchema({ code: 'A code from the app' }, ['code'], 16),
    {},
    async (identity, body, request, reply) => {
      if (body.code.trim() === '') throw invalidField('code', 'Enter the code the app shows.')
      const codes = await factors.confirmTotp(identity.user, body.code, { ip: request.ip })
      await endOtherSessions(identity)
      return show(reply, identity, { recoveryCodes: codes, notice: 'The authenticator app is on. Your other sessions were signed out.' })
    },
    page('The account page with the recovery codes, shown this once'),
    enrolment,
  )

  form<{ password: string }>(
    '/auth/account/mfa/totp/remove',
    'Form: turn the authenticator app off, as DELETE /auth/mfa/totp',
    formBodySchema({ password: 'The password' }, ['password']),
    { GH_INVALID_CREDENTIALS: WRONG_PASSWORD },
    async (identity, body, request, reply) => {
      await users.verifyPassword(identity.user.id, body.password, { ip: request.ip })
      await factors.removeTotp(identity.user, { ip: request.ip })
      await endOtherSessions(identity)
      return reply.redirect('/auth/account?done=totp_removed', 303)
    },
    undefined,
    enrolment,
  )

  form<{ password: string }>(
    '/auth/account/mfa/recovery-codes',
    'Form: make new recovery codes, as POST /auth/mfa/recovery-codes; the page shows them once',
    formBodySchema({ password: 'The password' }, ['password']),
    { GH_INVALID_CREDENTIALS: WRONG_PASSWORD },
    async (identity, body, request, reply) => {
      await users.verifyPassword(identity.user.id, body.password, { ip: request.ip })
      const codes = await factors.regenerateRecoveryCodes(identity.user, { ip: request.ip })
      return show(reply, identity, { recoveryCodes: codes, notice: 'New recovery codes: the old ones no longer work.' })
    },
    page('The account page with the new recovery codes, shown this once'),
    enrolment,
  )
}
