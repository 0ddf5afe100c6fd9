/**
 * What the access log and the request metrics learn about a request as it goes through the
 * gateway: the route it matched, who made it, how long the upstream took. Decorated on the
 * root instance (see app.ts) so that every request object has the same shape.
 */
import type { Identity } from '../core/identity.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The signed-in identity, once a route that reads credentials has authenticated it. */
    identity: Identity | null
    /** The configured route's name for proxied requests. */
    routeName: string | null
    /** Seconds the upstream took to answer (or fail), for proxied requests. */
    upstreamSeconds: number | null
    /**
     * `performance.now()` when the request came in (access-log.ts). On the request rather than
     * in a WeakMap: weak collections of short-lived keys cost the garbage collector every request.
     */
    receivedAt: number | null
    /** Whether its access line was written: once per request, whichever way it ended. */
    accessLogged: boolean | null
  }
}

export const REQUEST_DECORATIONS = ['identity', 'routeName', 'upstreamSeconds', 'receivedAt', 'accessLogged'] as const
