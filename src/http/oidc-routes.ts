/**
 * Signing in with an OpenID Connect provider (SPEC §5): GET /auth/oidc/:name/start sends the
 * browser to the provider with PKCE, state and nonce; GET /auth/oidc/:name/callback checks
 * the answer, finds or creates the local user (core/oidc-accounts.ts) and starts an ordinary
 * session (amr `oidc`, same cookie and timeouts as a password login), answering 303 to the
 * safe `next` kept from the start.
 *
 * The state, nonce and verifier are bound to the browser that started: they live in the
 * session store under a random handle, and only that browser has the handle, in a cookie
 * (`__Host-gh_oidc`; SameSite=Lax because the provider's redirect back is a cross-site
 * top-level GET) that lasts as long as the pending login. The callback takes the handle out
 * of the store whatever happens next, so a replayed callback finds nothing. A refused
 * callback is a 4xx page that says why, with a link to the login page, and no session; JSON
 * clients get the usual error body.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import * as client from 'openid-client'
import { constantTimeEqual } from '../core/crypto.js'
import type { AuditLog } from '../core/audit.js'
import type { LoginThrottle } from '../core/login-throttle.js'
import type { OidcAccounts } from '../core/oidc-accounts.js'
import type { PendingLogins } from '../core/oidc-pending.js'
import { safeNext } from '../core/redirects.js'
import { GatehouseError, isGatehouseError } from '../errors.js'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import type { ProviderClient } from '../oidc/provider-client.js'
import type { SessionService } from '../core/sessions.js'
import type { OidcProviders } from '../oidc/providers.js'
import type { OidcSessionLink, OidcSessions } from '../core/oidc-sessions.js'
import type { SessionRecheck } from '../oidc/session-recheck.js'
import type { ExchangeResult } from '../oidc/provider-client.js'
import { sendError, toGatehouseError } from './error-handler.js'
import { sendHtml } from './login-page.js'
import { locationOf } from './login-routes.js'
import { renderSignInErrorPage } from './oidc-page.js'
import { createGatewayCookie, type SessionCookie } from './session-cookie.js'

export interface OidcRoutesOptions {
  oidc: OidcProviders
  oidcAccounts: OidcAccounts
  /** The flows under way, kept in the session store. */
  pending: PendingLogins
  sessions: SessionService
  throttle: LoginThrottle
  audit: AuditLog
  publicUrl: string
  cookie: SessionCookie
  metrics: GatewayMetrics
  /** `sessions.cookie_domain`: `next` may also be an https URL on it. */
  cookieDomain?: string | null
  /** Which provider session each gateway session belongs to (back-channel and RP-initiated logout). */
  oidcSessions: Pick<OidcSessions, 'record'>
  /** The provider refresh token kept for `refresh_interval`. */
  sessionRecheck: Pick<SessionRecheck, 'initial'>
}

/** The pending-login cookie: `__Host-gh_oidc` over TLS, `gh_oidc` when public_url is plain http. */
export function flowCookieName(publicUrl: string): string {
  return publicUrl.startsWith('https:') ? '__Host-gh_oidc' : 'gh_oidc'
}

const providerParams = {
  type: 'object',
  properties: { name: { type: 'string', description: 'The provider name of auth.oidc' } },
  required: ['name'],
} as const

function invalid(reason: string, message: string): GatehouseError {
  return new GatehouseError('GH_OIDC_INVALID', message, { details: { reason } })
}

/** What the gateway keeps of the provider session: for back-channel logout, RP-initiated logout and re-checks. */
function linkOf(provider: ProviderClient, exchanged: ExchangeResult): OidcSessionLink {
  const sid = exchanged.claims.all?.sid
  return {
    provider: provider.name,
    issuer: provider.provider.issuer,
    sub: exchanged.claims.sub,
    sid: typeof sid === 'string' && sid.length > 0 && sid.length <= 255 ? sid : null,
    id_token: provider.provider.provider_logout && exchanged.idToken !== '' ? exchanged.idToken : null,
    refresh: null,
  }
}

/** A client that asks for JSON and not for a page gets the JSON error body. */
function wantsJson(request: FastifyRequest): boolean {
  const accept = (request.headers.accept ?? '').toLowerCase()
  return accept.includes('application/json') && !accept.includes('text/html')
}

export async function oidcRoutes(app: FastifyInstance, options: OidcRoutesOptions): Promise<void> {
  const { oidc, oidcAccounts, pending, sessions, throttle, audit, publicUrl, cookie, metrics } = options
  const flowCookie = createGatewayCookie(flowCookieName(publicUrl), publicUrl, pending.ttlMs)

  oidc.start({
    onDiscoveryError: (provider, err, retryInMs) =>
      app.log.warn({ provider, retry_in_ms: retryInMs, error: err instanceof Error ? err.message : String(err) }, 'OIDC discovery failed'),
    onDiscovered: (provider) => app.log.info({ provider }, 'OIDC provider discovered'),
  })
  app.addHook('onClose', async () => oidc.close())

  function providerOf(name: string): ProviderClient {
    const provider = oidc.get(name)
    if (provider === null) throw new GatehouseError('GH_NOT_FOUND', 'No such sign-in provider')
    return provider
  }

  function failure(request: FastifyRequest, reply: FastifyReply, err: unknown, next: string, provider: string): FastifyReply {
    const error = isGatehouseError(err) ? err : toGatehouseError(err as Error)
    if (error.statusCode >= 500) request.log.warn({ err, provider }, 'OIDC sign-in failed')
    if (error.code.startsWith('GH_OIDC_')) metrics.authAttempt('oidc', 'failure')
    if (wantsJson(request)) return sendError(reply, error)
    if (error.retryAfter !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(error.retryAfter))))
    const message =
      error.code === 'GH_RATE_LIMITED'
        ? 'Too many attempts. Wait a moment, then try again.'
        : error.code === 'GH_OIDC_UNAVAILABLE'
          ? `Signing in with ${provider} is unavailable right now. Try again shortly.`
          : error.statusCode >= 500
            ? 'Signing in is unavailable right now. Try again shortly.'
            : error.message
    const reason = typeof error.details?.reason === 'string' ? error.details.reason : undefined
    return sendHtml(reply, error.statusCode, renderSignInErrorPage({ message, code: error.code, reason, next }))
  }

  /** Refusals the account service did not record itself (it audits its own). */
  async function auditFailure(request: FastifyRequest, err: unknown, provider: string): Promise<void> {
    if (!isGatehouseError(err) || !(err.code === 'GH_OIDC_INVALID' || err.code === 'GH_OIDC_REFUSED' || err.code === 'GH_OIDC_UNAVAILABLE')) return
    await audit
      .record('login.failed', { ip: request.ip, details: { amr: ['oidc'], provider, reason: err.details?.reason ?? err.code } })
      .catch((auditErr: unknown) => request.log.error({ err: auditErr }, 'could not audit an OIDC refusal'))
  }

  app.get<{ Params: { name: string }; Querystring: { next?: unknown } }>(
    '/auth/oidc/:name/start',
    // No HEAD twin: a link checker or prefetch must not create or consume a pending sign-in.
    {
      config: { access: 'anonymous' },
      exposeHeadRoute: false,
      // Documentation: a malformed query (a repeated `next`) is not an error, safeNext makes it `/`.
      attachValidation: true,
      schema: {
        params: providerParams,
        querystring: { type: 'object', properties: { next: { type: 'string', description: 'A local path to return to' } } },
      },
    },
    async (request, reply) => {
      const next = safeNext(request.query.next, options.cookieDomain)
      const name = request.params.name
      try {
        await throttle.hitIp(request.ip)
        const provider = providerOf(name)
        const checks = { state: client.randomState(), nonce: client.randomNonce(), codeVerifier: client.randomPKCECodeVerifier() }
        // Built before anything is stored: an undiscovered provider answers 503 and leaves no state.
        const url = await provider.authorizationUrl(checks)
        const handle = await pending.begin({ provider: provider.name, ...checks, next })
        flowCookie.set(reply, handle)
        return reply.redirect(url.href, 302)
      } catch (err) {
        return failure(request, reply, err, next, name)
      }
    },
  )

  app.get<{ Params: { name: string }; Querystring: Record<string, unknown> }>(
    '/auth/oidc/:name/callback',
    {
      config: { access: 'anonymous' },
      exposeHeadRoute: false,
      // Documentation only: every parameter is checked by the handler and openid-client.
      attachValidation: true,
      schema: {
        params: providerParams,
        querystring: {
          type: 'object',
          properties: { code: { type: 'string' }, state: { type: 'string' }, iss: { type: 'string' }, error: { type: 'string' } },
        },
      },
    },
    async (request, reply) => {
      const name = request.params.name
      const handle = flowCookie.read(request)
      // The handle is good once, whatever happens below.
      if (request.headers.cookie?.includes(flowCookie.name)) flowCookie.clear(reply)
      let next = '/'
      let audited = false
      try {
        await throttle.hitIp(request.ip)
        const provider = providerOf(name)
        if (handle === null) {
          throw invalid('state_missing', 'This browser has no sign-in in progress: it expired, was finished already, or cookies are blocked. Start again.')
        }
        const login = await pending.take(handle)
        if (login === null) throw invalid('state_unknown', 'This sign-in has expired or was already used. Start again.')
        next = login.next
        const state = request.query.state
        if (login.provider !== provider.name || typeof state !== 'string' || !constantTimeEqual(state, login.state)) {
          throw invalid('state_mismatch', 'The answer from the provider does not belong to the sign-in this browser started. Start again.')
        }
        const exchanged = await provider.exchange(new URL(request.url, publicUrl), login)
        audited = true
        const { user } = await oidcAccounts.signIn(provider.provider, exchanged.claims, { ip: request.ip })
        const previous = cookie.read(request)
        if (previous !== null) await sessions.revokeToken(previous)
        const session = await sessions.create(user.id, { amr: ['oidc'], ip: request.ip, userAgent: request.headers['user-agent'] ?? null })
        await options.oidcSessions.record(session.session.id, {
          ...linkOf(provider, exchanged),
          refresh: options.sessionRecheck.initial(provider.name, session.session.id, exchanged.refreshToken),
        })
        cookie.set(reply, session.token)
        metrics.authAttempt('oidc', 'success')
        return reply.redirect(locationOf(safeNext(login.next, options.cookieDomain)), 303)
      } catch (err) {
        if (!audited) await auditFailure(request, err, name)
        return failure(request, reply, err, next, name)
      }
    },
  )
}
