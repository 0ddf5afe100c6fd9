/**
 * The pipeline as the gateway's transports use it (the edge, WebSocket handshakes, forward
 * auth): rate limits counted through the fallback counter, dependency failures mapped to the
 * gateway's errors, and every decision counted once in `gatehouse_decisions_total`.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { OriginMatcher } from '../core/allowed-origins.js'
import {
  counterRateLimiter, Gate, type CredentialResolver, type GateHeaders, type GateOutcome, type RequestSigner, type SecondFactorPolicy, type SecretSource,
} from '../core/pipeline/index.js'
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
  /** Users' secrets for routes with `user_secret`; absent: none injected (forward auth). */
  secrets?: SecretSource
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
    secrets: options.secrets ?? null,
    toError: (err) => toGatehouseError(err as Error),
    onOutcome: (outcome) => {
      const route = outcome.route?.name ?? 'unmatched'
      metrics.decision(route, outcome.outcome)
      if (outcome.outcome === 'rate_limited') metrics.rateLimited(route)
      options.onOutcome?.(outcome)
    },
  })
}

/** The headers the gate reads besides the credentials, from a request's (first values). */
export function gateHeaders(headers: IncomingHttpHeaders): GateHeaders {
  return { accept: headers.accept, origin: headers.origin, referer: headers.referer, 'sec-fetch-site': firstValue(headers['sec-fetch-site']) }
}

/** The first of a header's values (node gives repeated unknown headers as an array). */
export function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
