/**
 * The client address of an upgrade request, as fastify's `request.ip` would have it: the
 * peer, or with a trusted peer the right-most X-Forwarded-For entry not itself trusted.
 */
import { normalizeIP } from '@fastify/rate-limit'
import type { IncomingMessage } from 'node:http'
import type { TrustedProxies } from '../trusted-proxies.js'

export function clientAddress(request: IncomingMessage, proxies: TrustedProxies): string {
  let address = request.socket.remoteAddress ?? ''
  const forwarded = request.headers['x-forwarded-for']
  if (forwarded !== undefined && proxies.trusts(address)) {
    const entries = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded).split(',').map((e) => e.trim()).filter(Boolean)
    for (let i = entries.length - 1; i >= 0 && proxies.trusts(address); i--) address = entries[i]!
  }
  return normalizeIP(address)
}
