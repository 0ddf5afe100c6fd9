/**
 * The settings a running gateway cannot take over on a reload (SIGHUP): its listeners and
 * its stores. A new gateway.yml that changes one of them is refused as a whole, with the
 * keys named, rather than half applied; everything else (routes, roles, limits, timeouts,
 * identity, logging, the certificate files' contents) is reloaded.
 */
import type { GatewayConfig } from './types.js'

const RESTART_ONLY: ReadonlyArray<[string, (c: GatewayConfig) => unknown]> = [
  ['server.host', (c) => c.server.host],
  ['server.port', (c) => c.server.port],
  ['server.tls', (c) => (c.server.tls === null ? null : `${c.server.tls.cert}\n${c.server.tls.key}`)],
  ['server.http2', (c) => c.server.http2],
  ['server.redirect_http_port', (c) => c.server.redirect_http_port],
  ['server.proxy_protocol', (c) => c.server.proxy_protocol],
  ['storage.database', (c) => c.storage.database],
  ['storage.pool', (c) => JSON.stringify(c.storage.pool)],
  ['storage.sessions', (c) => c.storage.sessions],
  ['metrics.host', (c) => c.metrics.host],
  ['metrics.port', (c) => c.metrics.port],
]

/** The restart-only keys whose values differ between the running and the new config. */
export function restartOnlyChanges(running: GatewayConfig, next: GatewayConfig): string[] {
  return RESTART_ONLY.filter(([, read]) => read(running) !== read(next)).map(([key]) => key)
}
