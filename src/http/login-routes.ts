/**
 * Signing in with a password (SPEC §5): the HTML page, and POST /auth/login both as JSON
 * (answers the token) and as a browser form (answers 303 to a safe `next`, or the page again
 * with the reason). Either way the session is new, and the cookie is set.
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { safeNext } from '../core/redirects.js'
import { newChainId, type RefreshTokens } from '../core/refresh-tokens.js'
import { GatehouseError, isGatehouseError } from '../errors.js'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import type { LoginThrottle } from '../core/login-throttle.js'
import type { SessionService } from '../core/sessions.js'
import type { UserService } from '../core/users.js'
import { toGatehouseError } from './error-handler.js'
import { LOGIN_CSS, renderLoginPage, sendHtml } from './login-page.js'
import { LOGIN_NOTICES, noticeOf } from './notices.js'
import { PASSKEY_PAGE_CSP } from './page.js'
import * as schemas from './schemas.js'
import type { SessionCookie } from './session-cookie.js'

interface LoginBody {
  email: string
  password: string
  next?: string
}

const FORM = 'application/x-www-form-urlencoded'

/**
 * A Location header carries ASCII only (node refuses anything else, which would turn a
 * successful login into a 500), so the non-ASCII characters of a safe `next` are sent
 * percent-encoded as UTF-8, the way a browser would request that path anyway. safeNext has
 * refused controls and spaces already; text that is not valid UTF-16 cannot be encoded: `/`.
 */
export function locationOf(next: string): string {
  try {
    return next.replace(/[^\x21-\x7e]+/g, (chars) => encodeURIComponent(chars))
  } catch {
    return '/'
  }
}

/**
 * A failed sign-in, with why (unknown_email, wrong_password, disabled, locked, …), which the
 * client is never told. The email is logged as typed (trimmed, lower-cased) unless it is not
 * an email at all (invalid_email), which is what a password typed in the wrong field looks like.
 */
function logFailure(request: FastifyRequest, email: unknown, reason: string): void {
  const typed = typeof email === 'string' && reason !== 'invalid_email' ? email.trim().toLowerCase().slice(0, 254) : undefined
  request.log.info({ reason, email: typed }, 'login failed')
}

function isForm(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').toLowerCase().startsWith(FORM)
}

export interface LoginRoutesOptions {
  users: UserService
  sessions: SessionService
  throttle: LoginThrottle
  /** The names of the `auth.oidc` providers, one sign-in button each. */
  providers: readonly string[]
  /** `server.body_limit`, for the form posts. */
  bodyLimit: number
  cookie: SessionCookie
  metrics: GatewayMetrics
  /** `sessions.cookie_domain`: `next` may also be an https URL on it. */
  cookieDomain?: string | null
  /** Which links the sign-in page shows: sign-up (registration open), forgot password (email set up). */
  links: { register: boolean; forgot: boolean }
  /** Whether mail can be sent (`email` configured): an unverified user is offered a new link. */
  emailEnabled: boolean
  /** `auth.mfa.passkey_login`: the page offers "Sign in with a passkey". */
  passkeyLogin?: boolean
  /** With `sessions.refresh_tokens`, JSON logins start a refresh chain; null: off. */
  refreshTokens: Pick<RefreshTokens, 'start'> | null
}

export async function loginRoutes(app: FastifyInstance, options: LoginRoutesOptions) {
  const { users, sessions, throttle, providers, cookie, metrics, links, emailEnabled, refreshTokens } = options
  await app.register(formbody, { bodyLimit: options.bodyLimit })
  const passkeyLogin = options.passkeyLogin ?? false
  // With the passkey button the page loads the passkey scripts, which fetch() the gateway.
  const sendLoginPage = (reply: FastifyReply, status: number, html: string) =>
    passkeyLogin ? sendHtml(reply, status, html).header('content-security-policy', PASSKEY_PAGE_CSP) : sendHtml(reply, status, html)

  async function signIn(request: FastifyRequest, reply: FastifyReply, body: LoginBody, refreshable = false) {
    const ip = request.ip
    const user = await throttle.hitIp(ip).then(() => users.authenticate({ email: body.email, password: body.password, ip })).then(
      (user) => {
        metrics.authAttempt('password', 'success')
        return user
      },
      (err: unknown) => {
        if (isGatehouseError(err) && err.code === 'GH_INVALID_CREDENTIALS') metrics.authAttempt('password', 'failure')
        if (isGatehouseError(err) && err.reason !== undefined) logFailure(request, body.email, err.reason)
        throw err
      },
    )
    const previous = cookie.read(request)
    if (previous !== null) await sessions.revokeToken(previous)
    // A JSON login with sessions.refresh_tokens starts a refresh chain (core/refresh-tokens.ts).
    const chain = refreshable ? { chain: newChainId() } : {}
    const session = await sessions.create(user.id, { amr: 'pwd', ip, userAgent: request.headers['user-agent'] ?? null, ...chain })
    cookie.set(reply, session.token)
    return { user, session }
  }

  function formFailure(reply: FastifyReply, body: Partial<LoginBody>, err: GatehouseError) {
    if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
    const message =
      err.code === 'GH_RATE_LIMITED'
        ? 'Too many attempts. Wait a moment, then try again.'
        : err.statusCode >= 500
          ? 'Signing in is unavailable right now. Try again shortly.'
          : err.code === 'GH_INVALID_CREDENTIALS'
            ? 'The email or password is not right.'
            : err.message
    // After a failed validation the body is whatever the form held: a repeated field is an array.
    const email = typeof body.email === 'string' ? body.email : ''
    // The password was right: offering a new link tells nothing the 403 has not told already.
    const resendEmail = err.code === 'GH_EMAIL_UNVERIFIED' && emailEnabled ? email : undefined
    const page = renderLoginPage({ next: safeNext(body.next, options.cookieDomain), email, error: message, providers, links, resendEmail, passkeyLogin })
    return sendLoginPage(reply, err.statusCode, page)
  }

  app.get<{ Querystring: { next?: string; notice?: string } }>(
    '/auth/login',
    {
      config: { access: 'anonymous' },
      // A `next` that is not one string (repeated) is not an error: safeNext makes it `/`.
      attachValidation: true,
      schema: {
        querystring: schemas.loginPageQuery,
        response: { 200: schemas.htmlPage('The sign-in form, `next` in a hidden field'), ...schemas.errorResponses },
      },
    },
    async (request, reply) => {
      const notice = noticeOf(LOGIN_NOTICES, request.query.notice)
      // Arriving from an emailed link or a sign-up, there is nowhere to go back to: the account page.
      const next = request.query.next ?? (notice !== undefined && request.query.notice !== 'account_deleted' ? '/auth/account' : undefined)
      return sendLoginPage(reply, 200, renderLoginPage({ next: safeNext(next, options.cookieDomain), providers, links, notice, passkeyLogin }))
    },
  )

  app.get('/auth/assets/login.css', { config: { access: 'anonymous' }, schema: { response: { 200: schemas.cssAsset } } }, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(LOGIN_CSS),
  )

  app.post<{ Body: LoginBody }>(
    '/auth/login',
    {
      config: { access: 'anonymous' },
      attachValidation: true,
      schema: {
        body: schemas.loginBody,
        consumes: ['application/json', FORM],
        response: {
          200: schemas.loginResponse,
          303: schemas.loginRedirect,
          '4xx': schemas.jsonOrHtmlError,
          '5xx': schemas.jsonOrHtmlError,
        },
      },
    },
    async (request, reply) => {
      const form = isForm(request)
      if (request.validationError) {
        const err = toGatehouseError(request.validationError)
        if (form) return formFailure(reply, (request.body ?? {}) as Partial<LoginBody>, err)
        throw err
      }
      if (!form) {
        const refreshable = refreshTokens !== null
        const { user, session } = await signIn(request, reply, request.body, refreshable)
        const refresh = refreshTokens !== null ? { refresh_token: await refreshTokens.start(session.session) } : {}
        return { token: session.token, expires_at: new Date(session.expiresAt).toISOString(), user, ...refresh }
      }
      try {
        await signIn(request, reply, request.body)
      } catch (err) {
        if (isGatehouseError(err)) return formFailure(reply, request.body, err)
        return formFailure(reply, request.body, toGatehouseError(err as Error))
      }
      return reply.redirect(locationOf(safeNext(request.body.next, options.cookieDomain)), 303)
    },
  )
}
