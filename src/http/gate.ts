/**
 * The pipeline as the gateway's transports use it (the edge, WebSocket handshakes, forward
 * auth): rate limits counted through the fallback counter, dependency failures mapped to the
 * gateway's errors, and every decision counted once in `gatehouse_decisions_total`.
 */
import type { OriginMatcher } from '../core/allowed-origins.js'
import { counterRateLimiter, Gate, type CredentialResolver, type GateOutcome, type RequestSigner, type SecondFactorPolicy } from '../core/pipeline/index.js'
import type { RouteTable } from '../core/route-table.js'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import type { FallbackCounter } from '../resilience/fallback-counter.js'
import { toGatehouseError } from './error-handler.js'

export interface GatewayGateOptions {
  table: RouteTable
  credentials: CredentialResolver
  signer: RequestSigner
  counter: FallbackCounter
  publicUrl: string
  allowedOrigins: OriginMatcher
  metrics: GatewayMetrics
  /** Second factors (`auth.mfa.required_roles`, who has one); null: none checked. */
  secondFactors: SecondFactorPolicy | null
  /** Told each outcome after it is counted (forward auth counts its own metric too). */
  onOutcome?: (outcome: GateOutcome) => void
}

export function gatewayGate(options: GatewayGateOptions): Gate {
  const { metrics } = options
  return new Gate({
    table: options.table,
    credentials: options.credentials,
    rateLimiter: counterRateLimiter(options.counter),
    signer: options.signer,
    origins: { publicUrl: options.publicUrl, allowed: options.allowedOrigins },
    secondFactors: options.secondFactors,
    toError: (err) => toGatehouseError(err as Error),
    onOutcome: (outcome) => {
      const route = outcome.route?.name ?? 'unmatched'
      metrics.decision(route, outcome.outcome)
      if (outcome.outcome === 'rate_limited') metrics.rateLimited(route)
      options.onOutcome?.(outcome)
    },
  })
}
