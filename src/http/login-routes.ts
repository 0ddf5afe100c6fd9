/**
 * Signing in with a password (SPEC §5): the HTML page, and POST /auth/login both as JSON
 * (answers the token) and as a browser form (answers 303 to a safe `next`, or the page again
 * with the reason). Either way the session is new, and the cookie is set.
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { safeNext } from '../core/redirects.js'
import { newChainId } from '../core/refresh-tokens.js'
import { GatehouseError, isGatehouseError } from '../errors.js'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import type { Runtime } from '../runtime.js'
import { toGatehouseError } from './error-handler.js'
import { LOGIN_CSS, renderLoginPage, sendHtml } from './login-page.js'
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

function isForm(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').toLowerCase().startsWith(FORM)
}

export interface LoginRoutesOptions {
  runtime: Runtime
  cookie: SessionCookie
  metrics: GatewayMetrics
}

export async function loginRoutes(app: FastifyInstance, { runtime, cookie, metrics }: LoginRoutesOptions) {
  const { users, sessions, throttle, config } = runtime
  const providers = config.auth.oidc.map((p) => p.name)
  await app.register(formbody, { bodyLimit: config.server.body_limit })

  async function signIn(request: FastifyRequest, reply: FastifyReply, body: LoginBody, refreshable = false) {
    const ip = request.ip
    await throttle.hitIp(ip)
    const user = await users.authenticate({ email: body.email, password: body.password, ip }).then(
      (user) => {
        metrics.authAttempt('password', 'success')
        return user
      },
      (err: unknown) => {
        if (isGatehouseError(err) && err.code === 'GH_INVALID_CREDENTIALS') metrics.authAttempt('password', 'failure')
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
    const page = renderLoginPage({ next: safeNext(body.next), email, error: message, providers })
    return sendHtml(reply, err.statusCode, page)
  }

  app.get<{ Querystring: { next?: string } }>(
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
    async (request, reply) => sendHtml(reply, 200, renderLoginPage({ next: safeNext(request.query.next), providers })),
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
        const refreshable = config.sessions.refresh_tokens
        const { user, session } = await signIn(request, reply, request.body, refreshable)
        const refresh = refreshable ? { refresh_token: await runtime.refreshTokens.start(session.session) } : {}
        return { token: session.token, expires_at: new Date(session.expiresAt).toISOString(), user, ...refresh }
      }
      try {
        await signIn(request, reply, request.body)
      } catch (err) {
        if (isGatehouseError(err)) return formFailure(reply, request.body, err)
        return formFailure(reply, request.body, toGatehouseError(err as Error))
      }
      return reply.redirect(locationOf(safeNext(request.body.next)), 303)
    },
  )
}
