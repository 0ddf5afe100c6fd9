/**
 * POST /auth/refresh (SPEC §3, §5): spends a refresh token for the chain's next session.
 * Answers `{token, expires_at, refresh_token}` and sets no cookie: refresh tokens belong to
 * API clients. Counted by login_rate_limit, like a login.
 */
import type { FastifyInstance } from 'fastify'
import type { LoginThrottle } from '../core/login-throttle.js'
import type { RefreshTokens } from '../core/refresh-tokens.js'
import { GatehouseError } from '../errors.js'
import * as schemas from './schemas.js'

export interface RefreshRoutesOptions {
  refreshTokens: RefreshTokens
  throttle: LoginThrottle
  /** `sessions.refresh_tokens`: without it the endpoint is 404. */
  enabled: boolean
  /** Told of each refresh: success, or failure for a refused token. */
  onAttempt?: (result: 'success' | 'failure') => void
}

export async function refreshRoutes(app: FastifyInstance, options: RefreshRoutesOptions): Promise<void> {
  const { refreshTokens, throttle, enabled } = options
  app.post<{ Body: { refresh_token: string } }>(
    '/auth/refresh',
    {
      config: { access: 'anonymous' },
      schema: { body: schemas.refreshBody, response: { 200: schemas.refreshResponse, ...schemas.errorResponses } },
    },
    async (request) => {
      if (!enabled) throw new GatehouseError('GH_NOT_FOUND', 'Refresh tokens are not enabled')
      await throttle.hitIp(request.ip)
      try {
        const { session, refreshToken } = await refreshTokens.refresh(request.body.refresh_token, {
          ip: request.ip,
          userAgent: request.headers['user-agent'] ?? null,
        })
        options.onAttempt?.('success')
        return { token: session.token, expires_at: new Date(session.expiresAt).toISOString(), refresh_token: refreshToken }
      } catch (err) {
        options.onAttempt?.('failure')
        throw err
      }
    },
  )
}
