/**
 * Strict-Transport-Security on every answer over TLS (SPEC §4a "Response headers"), the
 * gateway's own and the upstreams' alike; an upstream that sends its own value keeps it.
 */
import type { FastifyInstance } from 'fastify'
import type { GatewayConfig } from '../config/types.js'

/** `server.hsts` in seconds when `public_url` is https; 0 (off) otherwise. */
export function hstsSeconds(config: GatewayConfig): number {
  return config.server.public_url.startsWith('https:') ? Math.floor(config.server.hsts / 1000) : 0
}

/** The header's value for `maxAgeSeconds`; null when it is off. */
export function hstsHeader(maxAgeSeconds: number): string | null {
  return maxAgeSeconds > 0 ? `max-age=${maxAgeSeconds}` : null
}

/**
 * Registered at the root, so that it covers not-found answers and every error too. Proxied
 * answers are written by the edge itself, which sets the same value.
 */
export function addHsts(app: FastifyInstance, value: string | null): void {
  if (value === null) return
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (!reply.hasHeader('strict-transport-security')) reply.header('strict-transport-security', value)
    done(null, payload)
  })
}
