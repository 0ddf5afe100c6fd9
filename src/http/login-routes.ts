/**
 * Signing in with a password (SPEC §5): the HTML page, and POST /auth/login both as JSON
 * (answers the token) and as a browser form (answers 303 to a safe `next`, or the page again
 * with the reason). Either way the session is new, and the cookie is set.
 *
 * A user with a second factor gets no session from the password alone (SPEC §3): JSON answers
 * `{mfa_required, mfa_token, methods}`, a form the second page; POST /auth/login/mfa finishes
 * the login with one factor, as JSON or as that page's form.
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { safeNext } from '../core/redirects.js'
import { newChainId, type RefreshTokens } from '../core/refresh-tokens.js'
import { GatehouseError, isGatehouseError } from '../errors.js'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import type { LoginThrottle } from '../core/login-throttle.js'
import type { CreatedSession, SessionService } from '../core/sessions.js'
import type { PasskeyService } from '../core/passkeys.js'
import type { User, UserService } from '../core/users.js'
import type { SessionAmr } from '../core/amr.js'
import { offeredProof, type SecondFactors, type StartedMfaLogin, type TwoStepLogin } from '../core/mfa/index.js'
import { renderSecondFactorPage } from './second-factor-page.js'
import { PASSKEY_PAGE_CSP, sendPage } from './page.js'
import { toGatehouseError } from './error-handler.js'
import { LOGIN_CSS, LOGIN_PAGE_CSP, loginPageCsp, renderLoginPage, sendHtml } from './login-page.js'
import { LOGIN_NOTICES, noticeOf } from './notices.js'
import * as passkeySchemas from './passkey-schemas.js'
import * as schemas from './schemas.js'
import type { GatewayCookie } from './session-cookie.js'

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
  cookie: GatewayCookie
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
  /** Who has a second factor (their login takes two steps). */
  secondFactors: Pick<SecondFactors, 'hasSecondFactor'>
  /** Logins waiting for their second factor. */
  twoStepLogin: TwoStepLogin
  /** Passkeys: the challenge of a second step answered with a passkey. */
  passkeys: Pick<PasskeyService, 'secondFactorOptions'>
}

/** Where the second page's script gets the options of a passkey assertion for its `mfa_token`. */
const MFA_PASSKEY_OPTIONS = '/auth/login/mfa/webauthn/options'

interface MfaBody {
  mfa_token: string
  code?: string
  recovery_code?: string
  webauthn?: unknown
}

/** The password step's result: a session, or (a user with a second factor) a login waiting for it. */
type SignedIn = { kind: 'session'; user: User; session: CreatedSession } | { kind: 'mfa'; started: StartedMfaLogin }

export async function loginRoutes(app: FastifyInstance, options: LoginRoutesOptions) {
  const { users, sessions, throttle, providers, cookie, metrics, links, emailEnabled, refreshTokens, twoStepLogin } = options
  await app.register(formbody, { bodyLimit: options.bodyLimit })
  const passkeyLogin = options.passkeyLogin ?? false
  // With the passkey button the page loads the passkey scripts, which fetch() the gateway.
  // The passkey button's scripts (and their fetch) when passkey_login is on; an absolute next's origin in form-action.
  const sendLoginPage = (reply: FastifyReply, status: number, html: string, next: string) =>
    sendHtml(reply, status, html, loginPageCsp(next, passkeyLogin ? PASSKEY_PAGE_CSP : LOGIN_PAGE_CSP))
  const needsSecondFactor = (userId: string) => options.secondFactors.hasSecondFactor(userId)

  async function signIn(request: FastifyRequest, reply: FastifyReply, body: LoginBody, refreshable = false): Promise<SignedIn> {
    const ip = request.ip
    const verified = await throttle.hitIp(ip).then(() => users.authenticatePassword({ email: body.email, password: body.password, ip }, { needsSecondFactor })).then(
      (verified) => {
        metrics.authAttempt('password', 'success')
        return verified
      },
      (err: unknown) => {
        if (isGatehouseError(err) && err.code === 'GH_INVALID_CREDENTIALS') metrics.authAttempt('password', 'failure')
        if (isGatehouseError(err) && err.reason !== undefined) logFailure(request, body.email, err.reason)
        throw err
      },
    )
    const { user } = verified
    if (verified.pending) {
      const next = isForm(request) ? safeNext(body.next, options.cookieDomain) : null
      return { kind: 'mfa', started: await twoStepLogin.begin({ user_id: user.id, email: user.email, amr: ['pwd'], refreshable, next }) }
    }
    return { kind: 'session', user, session: await startSession(request, reply, user.id, ['pwd'], refreshable) }
  }

  /** A new session (never reusing the one of the cookie sent, which ends), and its cookie. */
  async function startSession(request: FastifyRequest, reply: FastifyReply, userId: string, amr: SessionAmr[], refreshable: boolean) {
    const previous = cookie.read(request)
    if (previous !== null) await sessions.revokeToken(previous)
    // A JSON login with sessions.refresh_tokens starts a refresh chain (core/refresh-tokens.ts).
    const chain = refreshable ? { chain: newChainId() } : {}
    const session = await sessions.create(userId, { amr, ip: request.ip, userAgent: request.headers['user-agent'] ?? null, ...chain })
    cookie.set(reply, session.token)
    return session
  }

  /** The JSON answer of a login that started a session (and its refresh chain, when enabled). */
  async function sessionAnswer(user: User, session: CreatedSession) {
    const refresh = refreshTokens !== null && session.session.chain !== undefined ? { refresh_token: await refreshTokens.start(session.session) } : {}
    return { token: session.token, expires_at: new Date(session.expiresAt).toISOString(), user, ...refresh }
  }

  function secondPage(reply: FastifyReply, status: number, token: string, methods: StartedMfaLogin['methods'], next: string, error?: string) {
    const page = renderSecondFactorPage({
      action: '/auth/login/mfa',
      title: 'Two-step sign-in',
      hidden: { mfa_token: token, next },
      methods,
      error,
      passkeyOptions: MFA_PASSKEY_OPTIONS,
    })
    // With a passkey offered the page loads the passkey scripts, which fetch() the gateway.
    return sendPage(reply, status, page, methods.includes('webauthn') ? { csp: PASSKEY_PAGE_CSP } : {})
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
    const next = safeNext(body.next, options.cookieDomain)
    const page = renderLoginPage({ next, email, error: message, providers, links, resendEmail, passkeyLogin })
    return sendLoginPage(reply, err.statusCode, page, next)
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
      const safe = safeNext(next, options.cookieDomain)
      return sendLoginPage(reply, 200, renderLoginPage({ next: safe, providers, links, notice, passkeyLogin }), safe)
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
        const signedIn = await signIn(request, reply, request.body, refreshTokens !== null)
        if (signedIn.kind === 'mfa') return signedIn.started
        return sessionAnswer(signedIn.user, signedIn.session)
      }
      let signedIn: SignedIn
      try {
        signedIn = await signIn(request, reply, request.body)
      } catch (err) {
        if (isGatehouseError(err)) return formFailure(reply, request.body, err)
        return formFailure(reply, request.body, toGatehouseError(err as Error))
      }
      const next = safeNext(request.body.next, options.cookieDomain)
      if (signedIn.kind === 'mfa') return secondPage(reply, 200, signedIn.started.mfa_token, signedIn.started.methods, next)
      return reply.redirect(locationOf(next), 303)
    },
  )

  // A second step answered with a passkey: the challenge is bound to this pending login (its
  // id, the hash of the mfa_token), so it finishes this login only, and offers only this
  // user's passkeys. The token stays pending: POST /auth/login/mfa finishes it.
  app.post<{ Body: { mfa_token: string } }>(
    MFA_PASSKEY_OPTIONS,
    {
      config: { access: 'anonymous' },
      schema: {
        summary: "Passkey assertion options for the second step of a login: {mfa_token} → the user's passkeys, a challenge bound to that login",
        body: passkeySchemas.mfaPasskeyOptionsBody,
        response: { 200: passkeySchemas.webauthnOptions('PublicKeyCredentialRequestOptionsJSON for navigator.credentials.get(): the user’s passkeys'), ...schemas.errorResponses },
      },
    },
    async (request) => {
      await throttle.hitIp(request.ip)
      const pending = await twoStepLogin.peek(request.body.mfa_token)
      if (pending === null) throw new GatehouseError('GH_INVALID_CREDENTIALS', 'The sign-in has expired or is finished: sign in again')
      return options.passkeys.secondFactorOptions({ userId: pending.user_id, binding: pending.id })
    },
  )

  app.post<{ Body: MfaBody & { next?: string } }>(
    '/auth/login/mfa',
    {
      config: { access: 'anonymous' },
      attachValidation: true,
      schema: {
        body: schemas.loginMfaBody,
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
      const body = (request.body ?? {}) as Partial<MfaBody & { next?: string }>
      const proof = request.validationError ? null : offeredProof(body as MfaBody)
      try {
        if (request.validationError) throw toGatehouseError(request.validationError)
        await throttle.hitIp(request.ip)
        if (proof === null) {
          throw new GatehouseError('GH_VALIDATION', 'Send mfa_token and exactly one of code, recovery_code and webauthn')
        }
        const finished = await twoStepLogin.finish(String(body.mfa_token), proof, { ip: request.ip })
        const user = await users.isActive(finished.user_id)
        if (user === null) throw new GatehouseError('GH_INVALID_CREDENTIALS', undefined, { reason: 'disabled' })
        const session = await startSession(request, reply, user.id, finished.amr, !form && finished.refreshable)
        if (form) return reply.redirect(locationOf(finished.next ?? safeNext(body.next, options.cookieDomain)), 303)
        return sessionAnswer(user, session)
      } catch (caught) {
        const err = isGatehouseError(caught) ? caught : toGatehouseError(caught as Error)
        if (err.reason !== undefined) logFailure(request, undefined, err.reason)
        if (!form) throw err
        // The second page again, while its login is still pending; else back to the first.
        const pending = typeof body.mfa_token === 'string' ? await twoStepLogin.peek(body.mfa_token).catch(() => null) : null
        if (pending === null) {
          const expired = err.code === 'GH_INVALID_CREDENTIALS' ? new GatehouseError('GH_UNAUTHENTICATED', 'Your sign-in has expired. Sign in again.') : err
          return formFailure(reply, { next: body.next }, expired)
        }
        if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
        const message = err.code === 'GH_RATE_LIMITED' ? 'Too many attempts. Wait a moment, then try again.'
          : err.code === 'GH_INVALID_CREDENTIALS' ? 'The code is not right.' : err.message
        const methods = await twoStepLogin.methodsOf(pending.user_id)
        return secondPage(reply, err.statusCode, String(body.mfa_token), methods, pending.next ?? '/', message)
      }
    },
  )
}
