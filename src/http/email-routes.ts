/**
 * Password reset and email verification over HTTP (SPEC §5): each endpoint answers JSON
 * clients as the table says and browsers' form posts with a page or a 303. Requests that
 * mail a link answer 202 at once whatever the address (the outbox does the rest), and count
 * towards `login_rate_limit` like a login.
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { EmailVerifications } from '../core/email-verifications.js'
import type { LoginThrottle } from '../core/login-throttle.js'
import type { PasswordResets } from '../core/password-resets.js'
import { GatehouseError, isGatehouseError } from '../errors.js'
import { toGatehouseError } from './error-handler.js'
import { field, FORM, formValidationError, invalidField, isForm } from './forms.js'
import { escapeHtml } from './login-page.js'
import { alertHtml, formMessage, renderPage, sendPage } from './page.js'
import * as schemas from './schemas.js'

export interface EmailRoutesOptions {
  resets: PasswordResets
  verifications: EmailVerifications
  throttle: LoginThrottle
  bodyLimit: number
}

const email = { type: 'string', minLength: 1, maxLength: 1024 } as const
const token = { type: 'string', minLength: 1, maxLength: 256 } as const
const password = { type: 'string', minLength: 1, maxLength: 4096 } as const

const emailBody = {
  type: 'object',
  required: ['email'],
  properties: { email },
  additionalProperties: false,
} as const

const resetBody = {
  type: 'object',
  required: ['token', 'new_password'],
  properties: {
    token,
    new_password: password,
    new_password_confirm: { ...password, description: "The form's confirmation field: when sent, it must equal new_password" },
  },
  additionalProperties: false,
} as const

const accepted = { type: 'null', description: 'Accepted: a link is mailed if the address has an account that needs one' } as const
const seeOther = (description: string) => ({ type: 'null', description, headers: { location: { type: 'string' } } }) as const
const tokenQuery = {
  type: 'object',
  properties: { token: { type: 'string', description: 'The token of the emailed link' } },
  additionalProperties: true,
} as const
const formAnswers = { '4xx': schemas.jsonOrHtmlError, '5xx': schemas.jsonOrHtmlError }

export function forgotPage(options: { email?: string; error?: string } = {}): string {
  const describedBy = options.error ? ' aria-describedby="form-error"' : ''
  return renderPage({
    title: 'Forgot your password?',
    body: `<p>Enter the email address of your account. We will send it a link to choose a new password.</p>
${alertHtml(options.error)}
<form method="post" action="/auth/password/forgot"${describedBy}>
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required maxlength="254" value="${escapeHtml(options.email ?? '')}">
<button type="submit">Send the link</button>
</form>
<ul class="links"><li><a href="/auth/login">Back to sign in</a></li></ul>`,
  })
}

export function resetPage(options: { token: string; error?: string }): string {
  const describedBy = options.error ? ' aria-describedby="form-error"' : ''
  return renderPage({
    title: 'Choose a new password',
    body: `${alertHtml(options.error)}
<form method="post" action="/auth/password/reset"${describedBy}>
<input type="hidden" name="token" value="${escapeHtml(options.token)}">
<label for="new_password">New password</label>
<input id="new_password" name="new_password" type="password" autocomplete="new-password" required>
<label for="new_password_confirm">New password again</label>
<input id="new_password_confirm" name="new_password_confirm" type="password" autocomplete="new-password" required>
<button type="submit">Set the new password</button>
</form>
<p class="hint">Every session of your account is signed out when the password changes.</p>`,
  })
}

function noEmailPage(): string {
  return renderPage({
    title: 'Password reset is not available',
    body: `<p>This gateway does not send email, so it cannot mail you a reset link. Ask your administrator to set a new password.</p>
<ul class="links"><li><a href="/auth/login">Back to sign in</a></li></ul>`,
  })
}

function deadLinkPage(): string {
  return renderPage({
    title: 'This link no longer works',
    body: `<p class="error" role="alert">The link is invalid, expired or already used. Reset links work once, for 30 minutes.</p>
<ul class="links"><li><a href="/auth/password/forgot">Ask for a new link</a></li><li><a href="/auth/login">Sign in</a></li></ul>`,
  })
}

export async function emailRoutes(app: FastifyInstance, options: EmailRoutesOptions): Promise<void> {
  const { resets, verifications, throttle } = options
  await app.register(formbody, { bodyLimit: options.bodyLimit })

  app.get(
    '/auth/password/forgot',
    {
      config: { access: 'anonymous' },
      schema: {
        summary: 'The HTML form asking for a reset link (a 404 page when no email is configured)',
        response: { 200: schemas.htmlPage('The form'), 404: schemas.jsonOrHtmlError, ...schemas.errorResponses },
      },
    },
    async (_request, reply) => {
      if (!resets.enabled) return sendPage(reply, 404, noEmailPage())
      return sendPage(reply, 200, forgotPage())
    },
  )

  app.post<{ Body: { email: string } }>(
    '/auth/password/forgot',
    {
      config: { access: 'anonymous' },
      attachValidation: true,
      schema: {
        summary: 'Mail a single-use reset link (30 min); the same answer whether or not the address has an account',
        body: emailBody,
        consumes: ['application/json', FORM],
        response: { 202: accepted, 303: seeOther('A form post: to the sign-in page, which says a link was sent'), ...formAnswers },
      },
    },
    mailLink(throttle, (address, ip) => resets.request(address, { ip }), 'reset_sent', (reply, refused, request) => {
      if (refused.retryAfter !== undefined) reply.header('retry-after', String(refused.retryAfter))
      return sendPage(reply, refused.statusCode, forgotPage({ email: field(request.body, 'email'), error: formMessage(refused) }))
    }),
  )

  app.get<{ Querystring: { token?: string } }>(
    '/auth/password/reset',
    {
      config: { access: 'anonymous' },
      attachValidation: true,
      schema: {
        summary: 'The HTML form that sets a new password with an emailed link',
        querystring: tokenQuery,
        response: { 200: schemas.htmlPage('The form, the token in a hidden field'), 400: schemas.jsonOrHtmlError, ...formAnswers },
      },
    },
    async (request, reply) => {
      const value = typeof request.query.token === 'string' ? request.query.token : ''
      if (!(await resets.isLive(value))) return sendPage(reply, 400, deadLinkPage())
      return sendPage(reply, 200, resetPage({ token: value }))
    },
  )

  app.post<{ Body: { token: string; new_password: string; new_password_confirm?: string } }>(
    '/auth/password/reset',
    {
      config: { access: 'anonymous' },
      attachValidation: true,
      schema: {
        summary: 'Set a new password with an emailed link; ends every session of the user and clears its lockout',
        body: resetBody,
        consumes: ['application/json', FORM],
        response: { 204: schemas.noContent, 303: seeOther('A form post: to the sign-in page'), ...formAnswers },
      },
    },
    async (request, reply) => {
      const form = isForm(request)
      const body = request.body as Partial<Record<string, unknown>> | undefined
      try {
        const invalid = formValidationError(request)
        if (invalid) throw form ? invalid : toGatehouseError(request.validationError as Error)
        await throttle.hitIp(request.ip)
        const { token: link, new_password, new_password_confirm } = request.body
        if (new_password_confirm !== undefined && new_password_confirm !== new_password) {
          throw invalidField('new_password_confirm', 'The two passwords are not the same. Type the new password twice.')
        }
        await resets.reset(link, new_password, { ip: request.ip })
      } catch (err) {
        if (!form) throw err
        const refused = isGatehouseError(err) ? err : toGatehouseError(err as Error)
        if (refused.code === 'GH_TOKEN_INVALID') return sendPage(reply, 400, deadLinkPage())
        if (refused.retryAfter !== undefined) reply.header('retry-after', String(refused.retryAfter))
        return sendPage(reply, refused.statusCode, resetPage({ token: field(body, 'token'), error: formMessage(refused) }))
      }
      if (form) return reply.redirect('/auth/login?notice=password_reset', 303)
      return reply.code(204).send()
    },
  )

  app.get<{ Querystring: { token?: string } }>(
    '/auth/email/verify',
    {
      config: { access: 'anonymous' },
      attachValidation: true,
      schema: {
        summary: 'Confirm an email address with its emailed link (single-use, 24 h); 303 to the sign-in page saying how it went',
        querystring: tokenQuery,
        response: { 303: seeOther('To the sign-in page, with a notice'), ...schemas.errorResponses },
      },
    },
    async (request, reply) => {
      const value = typeof request.query.token === 'string' ? request.query.token : ''
      const verified = await verifications.verify(value, { ip: request.ip })
      return reply.redirect(`/auth/login?notice=${verified ? 'email_verified' : 'verify_failed'}`, 303)
    },
  )

  app.post<{ Body: { email: string } }>(
    '/auth/email/verify/resend',
    {
      config: { access: 'anonymous' },
      attachValidation: true,
      schema: {
        summary: 'Mail a new confirmation link; the same answer for any address',
        body: emailBody,
        consumes: ['application/json', FORM],
        response: { 202: accepted, 303: seeOther('A form post: to the sign-in page, which says a link was sent'), ...formAnswers },
      },
    },
    mailLink(throttle, (address, ip) => verifications.resend(address, { ip }), 'verification_sent', resendRefused),
  )
}

type MailRequest = FastifyRequest<{ Body: { email: string } }>

/**
 * A POST that mails a link (reset, verification): the same answer whatever the address, 202
 * for JSON and a 303 to the sign-in page with `notice` for a form; a refusal (bad input, the
 * per-IP limit) is thrown for JSON and shown by `refusedPage` for a form.
 */
function mailLink(
  throttle: LoginThrottle,
  mail: (address: string, ip: string) => void,
  notice: string,
  refusedPage: (reply: FastifyReply, refused: GatehouseError, request: MailRequest) => FastifyReply,
) {
  return async (request: MailRequest, reply: FastifyReply) => {
    const form = isForm(request)
    try {
      const invalid = formValidationError(request)
      if (invalid) throw form ? invalid : toGatehouseError(request.validationError as Error)
      await throttle.hitIp(request.ip)
      mail(request.body.email, request.ip)
    } catch (err) {
      if (!form) throw err
      return refusedPage(reply, isGatehouseError(err) ? err : toGatehouseError(err as Error), request)
    }
    if (form) return reply.redirect(`/auth/login?notice=${notice}`, 303)
    return reply.code(202).send()
  }
}

function resendRefused(reply: FastifyReply, err: GatehouseError): FastifyReply {
  if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
  return sendPage(
    reply,
    err.statusCode,
    renderPage({
      title: 'No link was sent',
      body: `${alertHtml(formMessage(err))}<ul class="links"><li><a href="/auth/login">Back to sign in</a></li></ul>`,
    }),
  )
}

