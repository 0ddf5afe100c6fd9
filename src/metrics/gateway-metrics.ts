/**
 * The metrics of SPEC §9 on a registry of their own (not prom-client's global one, so that
 * several gateways in one process, as in the tests, never mix their counts). One instance
 * lives as long as the process and survives configuration reloads.
 *
 * Label values are bounded: a route is named by its configured `name` (or the gateway's own
 * route pattern), never by the raw path; methods outside the usual set are `OTHER`.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { DecisionOutcome } from '../core/pipeline/outcome.js'
import type { BreakerRegistry } from '../resilience/breaker-registry.js'
import type { BreakerState } from '../resilience/circuit-breaker.js'

export type { DecisionOutcome }
export type AuthAttemptMethod = 'password' | 'session' | 'pat' | 'oidc'
export type AuthAttemptResult = 'success' | 'failure'

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
const STATE_VALUES: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 }
/** Active sessions are counted by walking the store's keys: at most this often. */
const ACTIVE_SESSIONS_CACHE_MS = 10_000

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export interface MetricsSources {
  breakers?: BreakerRegistry
  /** Counts the live sessions (SessionService.countActive). */
  activeSessions?: () => Promise<number>
  /** The serving certificate's expiry, epoch milliseconds; null without TLS. */
  certificateExpiry?: () => number | null
  /** Every route's upstream servers: 1 in rotation, 0 out (UpstreamPools.gauges). */
  upstreamServers?: () => Array<{ route: string; server: string; up: number }>
}

export class GatewayMetrics {
  readonly registry = new Registry()
  readonly #requests: Counter<'route' | 'method' | 'status'>
  readonly #requestDuration: Histogram<'route'>
  readonly #upstreamDuration: Histogram<'route'>
  readonly #authAttempts: Counter<'method' | 'result'>
  readonly #decisions: Counter<'route' | 'outcome'>
  readonly #lockouts: Counter
  readonly #reloads: Counter<'result'>
  readonly #rateLimited: Counter<'route'>
  #sources: MetricsSources = {}

  constructor() {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    this.#requests = new Counter({
      name: 'gatehouse_http_requests_total',
      help: 'Requests answered, by route name, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers,
    })
    this.#requestDuration = new Histogram({
      name: 'gatehouse_http_request_duration_seconds',
      help: 'Time from receiving a request to finishing its answer, by route name.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.#upstreamDuration = new Histogram({
      name: 'gatehouse_upstream_duration_seconds',
      help: 'Time from sending a request upstream to its response headers (or failure), by route name.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.#authAttempts = new Counter({
      name: 'gatehouse_auth_attempts_total',
      help: 'Credentials checked: method password, session, pat or oidc; result success or failure.',
      labelNames: ['method', 'result'],
      registers,
    })
    this.#decisions = new Counter({
      name: 'gatehouse_decisions_total',
      help: 'Access decisions at the edge: allow, unauthenticated, forbidden, rate_limited or error.',
      labelNames: ['route', 'outcome'],
      registers,
    })
    this.#lockouts = new Counter({
      name: 'gatehouse_login_lockouts_total',
      help: 'Accounts locked after too many failed logins.',
      registers,
    })
    this.#reloads = new Counter({
      name: 'gatehouse_config_reloads_total',
      help: 'Configuration reloads (SIGHUP), by result: success or failure.',
      labelNames: ['result'],
      registers,
    })
    this.#rateLimited = new Counter({
      name: 'gatehouse_rate_limited_total',
      help: 'Requests refused with 429 by a rate limit, by route name.',
      labelNames: ['route'],
      registers,
    })
    // The gauges read their sources at scrape time.
    const sources = () => this.#sources
    new Gauge({
      name: 'gatehouse_tls_cert_expiry_seconds',
      help: 'Seconds until the serving TLS certificate expires (negative once expired); absent without TLS.',
      registers,
      collect() {
        const expiry = sources().certificateExpiry?.() ?? null
        if (expiry === null) this.reset()
        else this.set(Math.round((expiry - Date.now()) / 1000))
      },
    })
    new Gauge({
      name: 'gatehouse_circuit_state',
      help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open.',
      labelNames: ['breaker'],
      registers,
      collect() {
        for (const breaker of sources().breakers?.all() ?? []) {
          this.set({ breaker: breaker.name }, STATE_VALUES[breaker.state])
        }
      },
    })
    new Gauge({
      name: 'gatehouse_upstream_server_up',
      help: 'Whether an upstream server of a route is in rotation (1) or left out (0); server is host:port.',
      labelNames: ['route', 'server'],
      registers,
      collect() {
        // Reset first: a reload may have removed a route or a server.
        this.reset()
        for (const { route, server, up } of sources().upstreamServers?.() ?? []) this.set({ route, server }, up)
      },
    })
    let cached: { at: number; value: number } | undefined
    new Gauge({
      name: 'gatehouse_active_sessions',
      help: 'Live sessions in the session store (counted at most every 10 s).',
      registers,
      async collect() {
        const count = sources().activeSessions
        if (count === undefined) return
        if (cached === undefined || Date.now() - cached.at >= ACTIVE_SESSIONS_CACHE_MS) {
          // A store outage leaves the last known value rather than failing the whole scrape.
          cached = { at: Date.now(), value: await count().catch(() => cached?.value ?? 0) }
        }
        this.set(cached.value)
      },
    })
  }

  /** Where the gauges read from; given sources replace the old ones (a reload brings new services). */
  setSources(sources: MetricsSources): void {
    this.#sources = { ...this.#sources, ...sources }
  }

  request(route: string, method: string, status: number, seconds: number): void {
    this.#requests.inc({ route, method: METHODS.has(method) ? method : 'OTHER', status: String(status) })
    this.#requestDuration.observe({ route }, seconds)
  }

  upstream(route: string, seconds: number): void {
    this.#upstreamDuration.observe({ route }, seconds)
  }

  authAttempt(method: AuthAttemptMethod, result: AuthAttemptResult): void {
    this.#authAttempts.inc({ method, result })
  }

  decision(route: string, outcome: DecisionOutcome): void {
    this.#decisions.inc({ route, outcome })
  }

  lockout(): void {
    this.#lockouts.inc()
  }

  configReload(result: 'success' | 'failure'): void {
    this.#reloads.inc({ result })
  }

  rateLimited(route: string): void {
    this.#rateLimited.inc({ route })
  }

  exposition(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
