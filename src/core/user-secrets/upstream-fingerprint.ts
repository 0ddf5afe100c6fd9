/**
 * Which upstream a secret was stored for (SPEC §5: a changed upstream makes it dormant until
 * set again). Every server of the route's list counts, in any order: adding, removing or
 * replacing one is a change, since the secret would otherwise reach a server it was not stored
 * for. Hashed, so the table never holds an upstream URL (which may carry a password).
 */
import { createHash } from 'node:crypto'
import type { RouteConfig } from '../../config/types.js'

export function upstreamFingerprint(route: Pick<RouteConfig, 'servers'>): string {
  const servers = [...new Set(route.servers.map((server) => new URL(server).href))].sort()
  return createHash('sha256').update(JSON.stringify(servers)).digest('hex')
}
