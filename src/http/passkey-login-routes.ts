/**
 * Passkey-only sign-in (SPEC §5 `POST /auth/login/passkey/options`, `POST /auth/login/passkey`),
 * when `auth.mfa.passkey_login` is on; off, both answer 404 as if absent. JSON only (the sign-in
 * page's script calls them): the answer is the one of a JSON password login, `{token,
 * expires_at, user}` and the cookie, plus `refresh_token` with `sessions.refresh_tokens`.
 */
import type { FastifyInstance } from 'fastify'
import { PASSKEY_SIGN_IN_AMR, type PasskeySignIn } from '../core/passkey-sign-in.js'
import { newChainId, type RefreshTokens } from '../core/refresh-tokens.js'
import type { SessionService } from '../core/sessions.js'
import { GatehouseError, isGatehouseError } from '../errors.js'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import * as passkeySchemas from './passkey-schemas.js'
import * as schemas from './schemas.js'
import type { GatewayCookie } from './session-cookie.js'

export interface PasskeyLoginRoutesOptions {
  /** `auth.mfa.passkey_login`. */
  enabled: boolean
  signIn: PasskeySignIn
  sessions: SessionService
  cookie: GatewayCookie
  metrics: GatewayMetrics
  /** With `sessions.refresh_tokens`, the sign-in starts a refresh chain; null: off. */
  refreshTokens: Pick<RefreshTokens, 'start'> | null
}

export async function passkeyLoginRoutes(app: FastifyInstance, options: PasskeyLoginRoutesOptions): Promise<void> {
  const { enabled, signIn, sessions, cookie, metrics, refreshTokens } = options
  const off = () => new GatehouseError('GH_NOT_FOUND', 'Passkey sign-in is not enabled here')

  app.post(
    '/auth/login/passkey/options',
    {
      config: { access: 'anonymous' },
      schema: {
        summary: 'Options for a passkey-only sign-in (auth.mfa.passkey_login; 404 when off): any discoverable credential, user verification required',
        body: passkeySchemas.emptyBody,
        response: { 200: passkeySchemas.webauthnOptions('PublicKeyCredentialRequestOptionsJSON for navigator.credentials.get()'), ...schemas.errorResponses },
      },
    },
    async (request) => {
      if (!enabled) throw off()
      return signIn.options(request.ip)
    },
  )

  app.post<{ Body: { response: unknown } }>(
    '/auth/login/passkey',
    {
      config: { access: 'anonymous' },
      schema: {
        summary: 'Sign in with a passkey alone: {response} → {token, expires_at, user, refresh_token?} and the cookie; amr ["hwk","user"]',
        body: passkeySchemas.passkeyLoginBody,
        response: { 200: schemas.loginResponse, ...schemas.errorResponses },
      },
    },
    async (request, reply) => {
      if (!enabled) throw off()
      const user = await signIn.verify(request.body.response, request.ip).then(
        (verified) => {
          metrics.authAttempt('passkey', 'success')
          return verified
        },
        (err: unknown) => {
          if (isGatehouseError(err) && err.code === 'GH_INVALID_CREDENTIALS') {
            metrics.authAttempt('passkey', 'failure')
            request.log.info({ reason: err.reason }, 'passkey sign-in failed')
          }
          throw err
        },
      )
      const previous = cookie.read(request)
      if (previous !== null) await sessions.revokeToken(previous)
      const session = await sessions.create(user.id, {
        amr: [...PASSKEY_SIGN_IN_AMR],
        ip: request.ip,
        userAgent: request.headers['user-agent'] ?? null,
        // Like a JSON password login: with sessions.refresh_tokens it starts a refresh chain.
        ...(refreshTokens !== null ? { chain: newChainId() } : {}),
      })
      cookie.set(reply, session.token)
      const refresh = refreshTokens !== null ? { refresh_token: await refreshTokens.start(session.session) } : {}
      return { token: session.token, expires_at: new Date(session.expiresAt).toISOString(), user, ...refresh }
    },
  )
}
