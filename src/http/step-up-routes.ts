/**
 * GET/POST /auth/login/step-up (SPEC §3): where a browser lands when a route with
 * `mfa: required` refuses its session for want of a second factor. The page asks for one; the
 * post replaces the session by one whose `amr` adds it (new token, old one ended) and goes back
 * to a safe `next`. JSON clients may post too and get the new token.
 */
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { LoginThrottle } from '../core/login-throttle.js'
import type { PasskeyService } from '../core/passkeys.js'
import { offeredProof, type SecondFactors, type StepUp } from '../core/mfa/index.js'
import { safeNext } from '../core/redirects.js'
import { GatehouseError, isGatehouseError } from '../errors.js'
import { identityOf } from './access.js'
import { toGatehouseError } from './error-handler.js'
import { FORM, isForm } from './forms.js'
import { locationOf } from './login-routes.js'
import { PASSKEY_PAGE_CSP, sendPage, renderPage } from './page.js'
import * as passkeySchemas from './passkey-schemas.js'
import * as schemas from './schemas.js'
import { renderSecondFactorPage } from './second-factor-page.js'
import type { GatewayCookie } from './session-cookie.js'

export interface StepUpRoutesOptions {
  factors: Pick<SecondFactors, 'methods'>
  /** Passkeys: the challenge of a step-up answered with a passkey. */
  passkeys: Pick<PasskeyService, 'secondFactorOptions'>
  stepUp: StepUp
  throttle: Pick<LoginThrottle, 'hitIp'>
  cookie: GatewayCookie
  cookieDomain: string | null
  bodyLimit: number
}

interface StepUpBody {
  next?: string
  code?: string
  recovery_code?: string
  webauthn?: unknown
}

const TITLE = 'Confirm it is you'
/** Where the step-up page's script gets the options of a passkey assertion for this session. */
const STEP_UP_PASSKEY_OPTIONS = '/auth/login/step-up/webauthn/options'



export async function stepUpRoutes(app: FastifyInstance, options: StepUpRoutesOptions): Promise<void> {
  const { factors, stepUp, throttle, cookie } = options
  await app.register(formbody, { bodyLimit: options.bodyLimit })

  async function page(reply: FastifyReply, status: number, userId: string, next: string, error?: string) {
    const methods = await factors.methods(userId)
    if (methods.length === 0) {
      const body = `<p>This page needs a second factor, and your account has none yet.</p>
<ul class="links"><li><a href="/auth/account">Set one up on your account page</a></li></ul>`
      return sendPage(reply, 403, renderPage({ title: TITLE, body }))
    }
    const html = renderSecondFactorPage({ action: '/auth/login/step-up', title: TITLE, hidden: { next }, methods, error, passkeyOptions: STEP_UP_PASSKEY_OPTIONS })
    // With a passkey offered the page loads the passkey scripts, which fetch() the gateway.
    return sendPage(reply, status, html, methods.includes('webauthn') ? { csp: PASSKEY_PAGE_CSP } : {})
  }

  app.get<{ Querystring: { next?: string } }>(
    '/auth/login/step-up',
    {
      config: { access: 'optional' },
      attachValidation: true,
      schema: {
        summary: 'The step-up page: asks the signed-in user for a second factor',
        querystring: schemas.loginPageQuery,
        response: { 200: schemas.htmlPage('The second-factor form, `next` in a hidden field'), 303: schemas.loginRedirect, ...schemas.errorResponses },
      },
    },
    async (request, reply) => {
      const next = safeNext(request.query.next, options.cookieDomain)
      const identity = request.identity
      if (identity === null || identity.method !== 'session') {
        return reply.redirect(`/auth/login?next=${encodeURIComponent(`/auth/login/step-up?next=${encodeURIComponent(next)}`)}`, 303)
      }
      if (identity.secondFactor) return reply.redirect(locationOf(next), 303)
      return page(reply, 200, identity.user.id, next)
    },
  )

  // A step-up answered with a passkey: the challenge is bound to this session (its id), so it
  // upgrades this session only, and offers only this user's passkeys.
  app.post(
    STEP_UP_PASSKEY_OPTIONS,
    {
      config: { access: 'session' },
      schema: {
        summary: "Passkey assertion options for a step-up: the user's passkeys, a challenge bound to this session",
        body: passkeySchemas.emptyBody,
        response: { 200: passkeySchemas.webauthnOptions('PublicKeyCredentialRequestOptionsJSON for navigator.credentials.get()'), ...schemas.errorResponses },
      },
    },
    async (request) => {
      const identity = identityOf(request)
      const session = identity.session?.session
      if (session === undefined) throw new GatehouseError('GH_UNAUTHENTICATED')
      await throttle.hitIp(request.ip)
      return options.passkeys.secondFactorOptions({ userId: identity.user.id, binding: session.id })
    },
  )

  app.post<{ Body: StepUpBody }>(
    '/auth/login/step-up',
    {
      config: { access: 'session' },
      attachValidation: true,
      schema: {
        summary: 'Adds a second factor to the session: a new session token, the old one ended',
        body: schemas.stepUpBody,
        consumes: ['application/json', FORM],
        response: { 200: schemas.stepUpResponse, 303: schemas.loginRedirect, '4xx': schemas.jsonOrHtmlError, '5xx': schemas.jsonOrHtmlError },
      },
    },
    async (request, reply) => {
      const identity = identityOf(request)
      const form = isForm(request)
      const body = (request.body ?? {}) as StepUpBody
      const next = safeNext(body.next, options.cookieDomain)
      try {
        if (request.validationError) throw toGatehouseError(request.validationError)
        await throttle.hitIp(request.ip)
        const proof = offeredProof(body)
        if (proof === null) throw new GatehouseError('GH_VALIDATION', 'Send exactly one of code, recovery_code and webauthn')
        const session = identity.session?.session
        if (session === undefined) throw new GatehouseError('GH_UNAUTHENTICATED')
        const upgraded = await stepUp.upgrade(identity.user, session, proof, { ip: request.ip, userAgent: request.headers['user-agent'] ?? null })
        if (identity.via === 'cookie') cookie.set(reply, upgraded.token)
        if (form) return reply.redirect(locationOf(next), 303)
        return { token: upgraded.token, expires_at: new Date(upgraded.expiresAt).toISOString(), amr: upgraded.session.amr }
      } catch (caught) {
        const err = isGatehouseError(caught) ? caught : toGatehouseError(caught as Error)
        if (!form) throw err
        if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter))
        const message = err.code === 'GH_RATE_LIMITED' ? 'Too many attempts. Wait a moment, then try again.'
          : err.code === 'GH_INVALID_CREDENTIALS' ? 'The code is not right.' : err.message
        return page(reply, err.statusCode, identity.user.id, next, message)
      }
    },
  )
}
