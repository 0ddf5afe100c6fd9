/**
 * The browser side of accounts (SPEC §5): the sign-up page and the account page, whose forms
 * post here and are answered with a 303 back to the page (or the page again with the reason).
 * Each form does what its JSON endpoint does, through the same core services; the CSRF
 * origin check of SPEC §3 applies to every post carrying the session cookie (access.ts).
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { AuditLog } from '../core/audit.js'
import type { EmailVerifications } from '../core/email-verifications.js'
import type { Identity } from '../core/identity.js'
import type { LoginThrottle } from '../core/login-throttle.js'
import type { PasskeyService } from '../core/passkeys.js'
import type { PatService } from '../core/pats.js'
import type { SecondFactors } from '../core/mfa/index.js'
import type { SessionService } from '../core/sessions.js'
import { secondFactorForms } from './account-mfa-forms.js'
import type { UserService } from '../core/users.js'
import { decide } from '../core/policy.js'
import type { UserSecrets } from '../core/user-secrets/index.js'
import type { AccountSecretView } from './account-secrets-section.js'
import { GatehouseError, isGatehouseError, type ErrorCode } from '../errors.js'
import { renderAccountPage, type AccountView } from './account-page.js'
import { toGatehouseError } from './error-handler.js'
import { field, FORM, formBodySchema, formValidationError, invalidField } from './forms.js'
import { escapeHtml } from './login-page.js'
import { ACCOUNT_NOTICES, noticeOf } from './notices.js'
import { ACCOUNT_CSS, ACCOUNT_JS, alertHtml, formMessage, PASSKEY_PAGE_CSP, renderPage, sendPage } from './page.js'
import * as schemas from './schemas.js'
import type { GatewayCookie } from './session-cookie.js'

export interface AccountRoutesOptions {
  users: UserService
  sessions: SessionService
  pats: PatService
  secrets: UserSecrets
  passkeys: PasskeyService
  /** Told after the user's second factors changed (the second-factor status cache). */
  onFactorsChanged?: (userId: string) => Promise<void> | void
  audit: AuditLog
  throttle: LoginThrottle
  verifications: EmailVerifications
  cookie: GatewayCookie
  /** `roles`: the permissions a token of a `*` holder may be limited to. */
  roles: Readonly<Record<string, readonly string[]>>
  registration: 'open' | 'closed'
  emailVerification: 'off' | 'required'
  /** `auth.password.min_length`, for the sign-up form's hint. */
  passwordMinLength: number
  bodyLimit: number
  /** The user's second factors (the page's two-step sign-in section). */
  factors: SecondFactors
}

type Messages = Partial<Record<ErrorCode, string>>

const seeOther = (description: string) => ({ type: 'null', description, headers: { location: { type: 'string' } } }) as const
const pageAnswers = (success: Record<number, unknown>) => ({
  ...success,
  '4xx': { description: 'Refused: the page again with the reason', content: { 'text/html': { schema: { type: 'string' } }, 'application/json': { schema: { $ref: 'Error#' } } } },
  '5xx': schemas.jsonOrHtmlError,
})

const tokenFormBody = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string', maxLength: 4096, description: 'The token name' },
    expires_in_days: { type: 'string', maxLength: 8, description: 'Days until it expires; empty: never' },
    // A checkbox per permission: one field, or the same field repeated.
    permissions: {
      anyOf: [
        { type: 'string', maxLength: 200 },
        { type: 'array', items: { type: 'string', maxLength: 200 }, maxItems: 100 },
      ],
      description: 'The permissions to limit it to; none: all of the owner’s',
    },
  },
  additionalProperties: false,
} as const

function registerPage(options: { email?: string; name?: string; error?: string; verification: boolean; minLength: number }): string {
  const describedBy = options.error ? ' aria-describedby="form-error"' : ''
  const hint = options.verification ? '<p class="hint">We will send a link to this address to confirm it before you can sign in.</p>' : ''
  return renderPage({
    title: 'Create an account',
    body: `${alertHtml(options.error)}
<form method="post" action="/auth/register/form"${describedBy}>
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="email" required maxlength="254" value="${escapeHtml(options.email ?? '')}">
${hint}
<label for="name">Name <span class="hint">(optional)</span></label>
<input id="name" name="name" type="text" autocomplete="name" maxlength="100" value="${escapeHtml(options.name ?? '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required aria-describedby="password-hint">
<p class="hint" id="password-hint">At least ${options.minLength} characters; a phrase of several words works well.</p>
<label for="password_confirm">Password again</label>
<input id="password_confirm" name="password_confirm" type="password" autocomplete="new-password" required>
<button type="submit">Create account</button>
</form>
<ul class="links"><li><a href="/auth/login">I have an account: sign in</a></li></ul>`,
  })
}

function closedPage(): string {
  return renderPage({
    title: 'Sign-up is closed',
    body: `<p>Accounts here are created by an administrator. Ask yours for one.</p>
<ul class="links"><li><a href="/auth/login">Sign in</a></li></ul>`,
  })
}

/** The permissions a new token may be limited to: the user's own, or every one roles name for a `*` holder. */
function permissionChoices(identity: Identity, roles: AccountRoutesOptions['roles']): string[] {
  const own = identity.permissions
  const all = own.includes('*') ? [...new Set(Object.values(roles).flat())] : [...own]
  return all.sort((a, b) => (a === '*' ? 1 : b === '*' ? -1 : a.localeCompare(b)))
}

export async function accountRoutes(app: FastifyInstance, options: AccountRoutesOptions): Promise<void> {
  const { users, sessions, pats, passkeys, audit, throttle, verifications, cookie } = options
  await app.register(formbody, { bodyLimit: options.bodyLimit })
  const signIn = (reply: FastifyReply) => reply.redirect('/auth/login?next=%2Fauth%2Faccount', 303)

  async function accountView(identity: Identity, extra: Partial<AccountView> = {}): Promise<AccountView> {
    const current = identity.session?.session.id
    const [active, tokens, fresh, secrets, factors, keys] = await Promise.all([
      sessions.list(identity.user.id),
      pats.list(identity.user.id),
      users.get(identity.user.id),
      secretViews(identity),
      options.factors.status(identity.user.id),
      passkeys.list(identity.user.id),
    ])
    return {
      user: fresh ?? identity.user,
      factors,
      sessions: active.map(({ session }) => ({ ...session, current: session.id === current })),
      tokens,
      secrets,
      passkeys: keys,
      permissionChoices: permissionChoices(identity, options.roles),
      ...extra,
    }
  }

  /** Every route the user may keep a secret for, then stored secrets whose route went away. */
  async function secretViews(identity: Identity): Promise<AccountSecretView[]> {
    const stored = new Map((await options.secrets.list(identity.user.id)).map((item) => [item.route, item]))
    const usable = options.secrets.routes().filter((route) => decide(route, identity).allow)
    const views: AccountSecretView[] = usable.map((route) => {
      const item = stored.get(route.name)
      stored.delete(route.name)
      return { route: route.name, header: route.user_secret?.header ?? null, state: item?.state ?? null, updated_at: item?.updated_at ?? null }
    })
    for (const item of stored.values()) views.push({ route: item.route, header: item.header, state: item.state, updated_at: item.updated_at })
    return views
  }

  async function refusedPage(reply: FastifyReply, identity: Identity, err: unknown, messages: Messages, extra: Partial<AccountView> = {}) {
    const refused = isGatehouseError(err) ? err : toGatehouseError(err as Error)
    if (refused.statusCode >= 500 && !isGatehouseError(err)) reply.log.error({ err }, 'account form failed')
    if (refused.retryAfter !== undefined) reply.header('retry-after', String(refused.retryAfter))
    const error = messages[refused.code] ?? formMessage(refused)
    // The page itself needs the stores; when they are what failed, a short page says so.
    const view = await accountView(identity, { ...extra, error }).catch(() => null)
    if (view === null) {
      return sendPage(reply, refused.statusCode, renderPage({ title: 'Your account', body: `${alertHtml(error)}<ul class="links"><li><a href="/auth/account">Back to your account</a></li></ul>` }))
    }
    return sendPage(reply, refused.statusCode, renderAccountPage(view), { csp: PASSKEY_PAGE_CSP })
  }

  /**
   * A form of the account page: signed out → the sign-in page; a malformed form, or a refusal
   * of the core, → the page again with the reason (`messages` overrides it per code) and
   * nothing changed; else what `handle` answers.
   */
  function accountForm<Body>(
    path: string,
    summary: string,
    body: object,
    messages: Messages,
    handle: (identity: Identity, body: Body, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>,
    success: Record<number, unknown> = { 303: seeOther('Done: back to the account page, which says so') },
    formOptions: { mfaEnrolment?: boolean } = {},
  ): void {
    app.post<{ Body: Body }>(
      path,
      { config: { access: 'optional', mfaEnrolment: formOptions.mfaEnrolment === true }, attachValidation: true, schema: { summary, body, consumes: [FORM], response: pageAnswers(success) } },
      async (request, reply) => {
        const identity = request.identity
        if (identity === null) return signIn(reply)
        try {
          const invalid = formValidationError(request)
          if (invalid) throw invalid
          return await handle(identity, request.body as Body, request, reply)
        } catch (err) {
          return refusedPage(reply, identity, err, messages)
        }
      },
    )
  }

  secondFactorForms({ form: accountForm, view: accountView, factors: options.factors, users, sessions })

  app.get('/auth/assets/account.css', { config: { access: 'anonymous' }, schema: { summary: 'The account pages stylesheet', response: { 200: { description: 'CSS', content: { 'text/css': { schema: { type: 'string' } } } } } } }, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(ACCOUNT_CSS),
  )
  app.get('/auth/assets/account.js', { config: { access: 'anonymous' }, schema: { summary: 'The account page script (the copy button)', response: { 200: { description: 'JavaScript', content: { 'text/javascript': { schema: { type: 'string' } } } } } } }, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(ACCOUNT_JS),
  )

  app.get<{ Querystring: { done?: string } }>(
    '/auth/account',
    {
      // Users who must enrol a second factor (auth.mfa.required_roles) come here to do it.
      config: { access: 'optional', mfaEnrolment: true },
      attachValidation: true,
      schema: {
        summary: 'The HTML account page: name, password, sessions, tokens, user secrets, delete account',
        querystring: { type: 'object', properties: { done: { type: 'string', description: 'What the last form did (a fixed set of confirmations)' } }, additionalProperties: true },
        response: { 200: schemas.htmlPage('The account page'), 303: seeOther('Signed out: to the sign-in page, back here after'), ...schemas.errorResponses },
      },
    },
    async (request, reply) => {
      const identity = request.identity
      if (identity === null) return signIn(reply)
      const view = await accountView(identity, { notice: noticeOf(ACCOUNT_NOTICES, request.query.done) })
      return sendPage(reply, 200, renderAccountPage(view), { csp: PASSKEY_PAGE_CSP })
    },
  )

  accountForm<{ name: string }>(
    '/auth/account/name',
    'Form: change the display name (empty removes it), as PATCH /auth/me',
    formBodySchema({ name: 'The new name; empty removes it' }, ['name']),
    {},
    async (identity, body, request, reply) => {
      const name = body.name.trim() === '' ? null : body.name
      await users.updateName(identity.user.id, name, { ip: request.ip })
      return reply.redirect(`/auth/account?done=${name === null ? 'name_cleared' : 'name_saved'}`, 303)
    },
  )

  accountForm<{ current_password: string; new_password: string; new_password_confirm: string }>(
    '/auth/account/password',
    "Form: change the password, as POST /auth/password; ends the user's other sessions",
    formBodySchema(
      { current_password: 'The current password', new_password: 'The new password', new_password_confirm: 'The new password again' },
      ['current_password', 'new_password', 'new_password_confirm'],
    ),
    { GH_INVALID_CREDENTIALS: 'The current password is not right. Nothing was changed.' },
    async (identity, body, request, reply) => {
      if (body.current_password === '') throw invalidField('current_password', 'Enter your current password.')
      if (body.new_password === '') throw invalidField('new_password', 'Enter a new password.')
      if (body.new_password !== body.new_password_confirm) {
        throw invalidField('new_password_confirm', 'The two new passwords are not the same. Nothing was changed.')
      }
      await users.changePassword(identity.user.id, body.current_password, body.new_password, { ip: request.ip })
      await sessions.revokeAll(identity.user.id, { except: identity.session?.session.id })
      return reply.redirect('/auth/account?done=password_changed', 303)
    },
  )

  accountForm<{ id: string }>(
    '/auth/account/sessions/revoke',
    'Form: end one of the user\'s sessions, as DELETE /auth/sessions/{id}',
    formBodySchema({ id: 'The session id' }, ['id'], 128),
    { GH_NOT_FOUND: 'That session had already ended.' },
    async (identity, body, request, reply) => {
      const ended = await sessions.revoke(identity.user.id, body.id)
      if (!ended) throw new GatehouseError('GH_NOT_FOUND', 'No such session')
      await audit.record('session.revoked', { userId: identity.user.id, ip: request.ip, details: { session_id: body.id } })
      if (body.id === identity.session?.session.id) {
        cookie.clear(reply)
        return reply.redirect('/auth/login', 303)
      }
      return reply.redirect('/auth/account?done=session_revoked', 303)
    },
  )

  accountForm<{ id: string }>(
    '/auth/account/passkeys/remove',
    "Form: remove one of the user's passkeys, as DELETE /auth/mfa/webauthn/{id}; ends the user's other sessions",
    formBodySchema({ id: 'The passkey id' }, ['id'], 64),
    { GH_NOT_FOUND: 'That passkey was already removed.' },
    async (identity, body, request, reply) => {
      if (!(await passkeys.remove(identity.user, body.id, { ip: request.ip }))) throw new GatehouseError('GH_NOT_FOUND', 'No such passkey')
      await options.onFactorsChanged?.(identity.user.id)
      await sessions.revokeAll(identity.user.id, { except: identity.session?.session.id })
      return reply.redirect('/auth/account?done=passkey_removed', 303)
    },
    undefined,
    { mfaEnrolment: true },
  )

  app.post<{ Body: { name: string; expires_in_days?: string; permissions?: string | string[] } }>(
    '/auth/account/tokens',
    {
      config: { access: 'optional' },
      attachValidation: true,
      schema: {
        summary: 'Form: create a personal access token, as POST /auth/tokens; the page shows it once',
        body: tokenFormBody,
        consumes: [FORM],
        response: pageAnswers({ 201: schemas.htmlPage('The account page with the new token, shown this once') }),
      },
    },
    async (request, reply) => {
      const identity = request.identity
      if (identity === null) return signIn(reply)
      const raw = request.body as Partial<Record<string, unknown>> | undefined
      const chosen = raw?.permissions
      const permissions = typeof chosen === 'string' ? [chosen] : Array.isArray(chosen) ? chosen.filter((p): p is string => typeof p === 'string') : []
      const tokenForm = { name: field(raw, 'name'), expires: field(raw, 'expires_in_days'), permissions }
      try {
        const invalid = formValidationError(request)
        if (invalid) throw invalid
        if (tokenForm.name.trim() === '') throw invalidField('name', 'Give the token a name, to recognise it later.')
        if (!/^(\d{1,4})?$/.test(tokenForm.expires)) throw invalidField('expires_in_days', 'Choose when the token expires.')
        const created = await pats.create(
          { id: identity.user.id, permissions: identity.permissions, secondFactor: identity.secondFactor },
          {
            name: tokenForm.name,
            expires_in_days: tokenForm.expires === '' ? null : Number(tokenForm.expires),
            permissions: permissions.length === 0 ? null : permissions,
          },
          { ip: request.ip },
        )
        const view = await accountView(identity, { created: { name: created.pat.name, token: created.token } })
        return sendPage(reply, 201, renderAccountPage(view), { csp: PASSKEY_PAGE_CSP })
      } catch (err) {
        return refusedPage(reply, identity, err, {}, { tokenForm })
      }
    },
  )

  accountForm<{ id: string }>(
    '/auth/account/tokens/revoke',
    'Form: revoke a personal access token, as DELETE /auth/tokens/{id}',
    formBodySchema({ id: 'The token id' }, ['id'], 128),
    { GH_NOT_FOUND: 'That token does not exist or was already revoked.' },
    async (identity, body, request, reply) => {
      const revoked = await pats.revoke(identity.user.id, body.id, { ip: request.ip })
      if (!revoked) throw new GatehouseError('GH_NOT_FOUND', 'No such token')
      return reply.redirect('/auth/account?done=token_revoked', 303)
    },
  )

  accountForm<{ route: string; value: string }>(
    '/auth/account/secrets',
    'Form: set or replace the secret for a route, as PUT /auth/me/secrets/{route}',
    // Longer than 4 KiB, so that the service says what is wrong with a long value.
    formBodySchema({ route: 'The route name', value: 'The secret' }, ['route', 'value'], 16_384),
    {},
    async (identity, body, request, reply) => {
      await options.secrets.set(identity, body.route, body.value, { ip: request.ip })
      return reply.redirect('/auth/account?done=secret_saved', 303)
    },
  )

  accountForm<{ route: string }>(
    '/auth/account/secrets/remove',
    'Form: remove the secret for a route, as DELETE /auth/me/secrets/{route}',
    formBodySchema({ route: 'The route name' }, ['route'], 200),
    { GH_NOT_FOUND: 'There was no secret for that route.' },
    async (identity, body, request, reply) => {
      const removed = await options.secrets.remove(identity.user.id, body.route, { ip: request.ip })
      if (!removed) throw new GatehouseError('GH_NOT_FOUND', 'No such secret')
      return reply.redirect('/auth/account?done=secret_removed', 303)
    },
  )

  accountForm<{ password: string; confirm?: string }>(
    '/auth/account/delete',
    'Form: delete the account, its tokens and sessions, as DELETE /auth/me',
    formBodySchema({ password: 'The current password', confirm: '"yes": the box confirming the deletion is ticked' }, ['password']),
    { GH_INVALID_CREDENTIALS: 'The password is not right. Your account was not deleted.' },
    async (identity, body, request, reply) => {
      if (body.password === '') throw invalidField('password', 'Enter your password to delete your account.')
      if (body.confirm !== 'yes') throw invalidField('confirm', 'Tick the box to confirm that you want to delete your account.')
      await users.delete(identity.user.id, { password: body.password, ip: request.ip })
      await sessions.revokeAll(identity.user.id)
      cookie.clear(reply)
      return reply.redirect('/auth/login?notice=account_deleted', 303)
    },
    { 303: seeOther('Deleted: to the sign-in page, which says so') },
  )

  const verification = options.emailVerification === 'required'
  app.get(
    '/auth/register',
    {
      config: { access: 'anonymous' },
      schema: {
        summary: 'The HTML sign-up form (404 page when registration is closed)',
        response: { 200: schemas.htmlPage('The sign-up form'), 404: schemas.jsonOrHtmlError, ...schemas.errorResponses },
      },
    },
    async (_request, reply) => {
      if (options.registration === 'closed') return sendPage(reply, 404, closedPage())
      return sendPage(reply, 200, registerPage({ verification, minLength: options.passwordMinLength }))
    },
  )

  app.post<{ Body: { email: string; name?: string; password: string; password_confirm: string } }>(
    '/auth/register/form',
    {
      config: { access: 'anonymous' },
      attachValidation: true,
      schema: {
        summary: 'Form: create an account, as POST /auth/register; 303 to the sign-in page',
        body: formBodySchema(
          { email: 'Email', name: 'Name (optional)', password: 'Password', password_confirm: 'The password again' },
          ['email', 'password', 'password_confirm'],
        ),
        consumes: [FORM],
        response: pageAnswers({ 303: seeOther('Created: to the sign-in page, which says what to do next') }),
      },
    },
    async (request, reply) => {
      const raw = request.body as Partial<Record<string, unknown>> | undefined
      const kept = { email: field(raw, 'email'), name: field(raw, 'name'), verification, minLength: options.passwordMinLength }
      try {
        if (options.registration === 'closed') throw new GatehouseError('GH_REGISTRATION_CLOSED')
        const invalid = formValidationError(request)
        if (invalid) throw invalid
        const { email, name, password, password_confirm } = request.body
        if (email.trim() === '') throw invalidField('email', 'Enter your email address.')
        if (password === '') throw invalidField('password', 'Choose a password.')
        if (password !== password_confirm) throw invalidField('password_confirm', 'The two passwords are not the same.')
        await throttle.hitIp(request.ip)
        const user = await users.register(
          { email, password, name: name === undefined || name.trim() === '' ? null : name },
          { ip: request.ip, emailVerified: false },
        )
        verifications.sendFor(user, { ip: request.ip })
        return reply.redirect(`/auth/login?notice=${verification ? 'verify_required' : 'registered'}`, 303)
      } catch (err) {
        const refused = isGatehouseError(err) ? err : toGatehouseError(err as Error)
        if (refused.statusCode >= 500 && !isGatehouseError(err)) request.log.error({ err }, 'sign-up failed')
        if (refused.retryAfter !== undefined) reply.header('retry-after', String(refused.retryAfter))
        return sendPage(reply, refused.statusCode, registerPage({ ...kept, error: formMessage(refused) }))
      }
    },
  )
}
