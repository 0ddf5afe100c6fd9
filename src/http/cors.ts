/**
 * CORS for /auth (SPEC §2 `server.cors`): browser apps on the operator's listed origins may
 * call /auth with credentials. Exact origins only, never `*`; other origins get no CORS
 * headers at all. Small and local rather than @fastify/cors, whose preflight route is
 * `OPTIONS /*`, a path the edge owns (fastify refuses to start with both).
 */
import type { FastifyInstance } from 'fastify'
import { GatehouseError } from '../errors.js'

export const CORS_METHODS = 'GET, POST, PATCH, DELETE'
export const CORS_HEADERS = 'Content-Type, Authorization, X-Request-Id'
export const CORS_MAX_AGE_SECONDS = 600

/** Adds the CORS headers and the preflight route to `auth`, the context of the /auth routes. */
export function addAuthCors(auth: FastifyInstance, origins: readonly string[]): void {
  const allowed = new Set(origins)

  auth.addHook('onRequest', async (request, reply) => {
    reply.header('vary', 'Origin')
    const { origin } = request.headers
    if (origin !== undefined && allowed.has(origin)) {
      reply.header('access-control-allow-origin', origin).header('access-control-allow-credentials', 'true')
    }
  })

  // A preflight carries no credentials: it is answered before any authentication.
  auth.options('/auth/*', async (request, reply) => {
    const { origin } = request.headers
    if (origin === undefined || !allowed.has(origin)) throw new GatehouseError('GH_NOT_FOUND')
    return reply
      .code(204)
      .header('access-control-allow-methods', CORS_METHODS)
      .header('access-control-allow-headers', CORS_HEADERS)
      .header('access-control-max-age', String(CORS_MAX_AGE_SECONDS))
      .send()
  })
}
