/**
 * Puts WebSocket handshakes on the app's server (`upgrade` events; server.ts forwards its
 * listener's to the current app) and hands the process's open sockets this configuration's
 * way of judging them.
 */
import type { OriginMatcher } from '../../core/allowed-origins.js'
import type { FastifyInstance } from 'fastify'
import type { RouteConfig } from '../../config/types.js'
import type { Clock } from '../../core/clock.js'
import { type CredentialResolver, type RequestSigner } from '../../core/pipeline/index.js'
import type { RouteTable } from '../../core/route-table.js'
import { OpenSockets, socketChecker } from '../../core/websockets/index.js'
import type { SecondFactorPolicy } from '../../core/pipeline/index.js'
import type { GatewayMetrics } from '../../metrics/gateway-metrics.js'
import type { FallbackCounter } from '../../resilience/fallback-counter.js'
import type { InvalidationBus } from '../../kv/invalidation.js'
import type { TrustedProxies } from '../trusted-proxies.js'
import { upgradeHandler } from './upgrades.js'
import { gatewayGate } from '../gate.js'

export interface WebSocketOptions {
  /** Second factors (SPEC §3): the enrolment gate and route `mfa: required`. */
  secondFactors: SecondFactorPolicy | null
  /** The process's open sockets; null: the app keeps its own, stopped when it closes. */
  sockets: OpenSockets | null
  bus: InvalidationBus
  clock: Clock
  routes: readonly RouteConfig[]
  table: RouteTable
  credentials: CredentialResolver
  /** Resolves the credential of an open socket again (without counting a sign-in attempt). */
  recheckCredentials: CredentialResolver
  signer: RequestSigner
  counter: FallbackCounter
  proxies: TrustedProxies
  publicUrl: string
  allowedOrigins: OriginMatcher
  sessionCookieNames: readonly string[]
  protocol: 'http' | 'https'
  metrics: GatewayMetrics
  idleTimeoutMs?: number
}

export async function webSockets(app: FastifyInstance, options: WebSocketOptions): Promise<void> {
  const { metrics } = options
  const sockets = options.sockets ?? new OpenSockets({ bus: options.bus, clock: options.clock })
  metrics.websocketRoutes(options.routes.filter((route) => route.websocket).map((route) => route.name))
  const gate = gatewayGate({
    table: options.table,
    credentials: options.credentials,
    signer: options.signer,
    counter: options.counter,
    publicUrl: options.publicUrl,
    allowedOrigins: options.allowedOrigins,
    metrics,
    secondFactors: options.secondFactors,
  })
  const handler = upgradeHandler({
    gate,
    sockets,
    proxies: options.proxies,
    sessionCookieNames: options.sessionCookieNames,
    protocol: options.protocol,
    metrics,
    serveOrdinary: (request, response) => app.routing(request, response),
    log: app.log,
    idleTimeoutMs: options.idleTimeoutMs,
  })
  app.addHook('onReady', async () => {
    sockets.useChecker(socketChecker({ routes: options.routes, credentials: options.recheckCredentials, clock: options.clock, secondFactors: options.secondFactors }))
    app.server.on('upgrade', handler)
  })
  app.addHook('onClose', async () => {
    app.server.off('upgrade', handler)
    if (options.sockets === null) {
      sockets.stop()
      sockets.closeAll(1001, 'shutdown')
    }
  })
}
