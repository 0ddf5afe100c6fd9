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
import { EMAIL_KINDS, type EmailKind } from '../core/mailer.js'
import { SECOND_FACTOR_METHODS, type SecondFactorMethod } from '../core/mfa/index.js'
import type { EmailResult } from '../core/email-outbox.js'
import { CLOSE_REASONS, type CloseReason } from '../core/websockets/index.js'
import type { BreakerRegistry } from '../resilience/breaker-registry.js'
import { version } from '../version.js'
import type { BreakerState } from '../resilience/circuit-breaker.js'

export type { DecisionOutcome }
/** Every value of each `result` and `outcome` label (SPEC §9): their series exist, at 0, from the start. */
export const DECISION_OUTCOMES: readonly DecisionOutcome[] = ['allow', 'unauthenticated', 'forbidden', 'rate_limited', 'error']
export const AUTH_ATTEMPT_METHODS = ['session', 'pat', 'jwt', 'password', 'oidc', 'passkey'] as const
export const AUTH_ATTEMPT_RESULTS = ['success', 'failure'] as const
export const RELOAD_RESULTS = ['success', 'failure'] as const

export type AuthAttemptMethod = (typeof AUTH_ATTEMPT_METHODS)[number]
export type AuthAttemptResult = (typeof AUTH_ATTEMPT_RESULTS)[number]

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
  readonly #mfaAttempts: Counter<'method' | 'result'>
  readonly #reloads: Counter<'result'>
  readonly #rateLimited: Counter<'route'>
  readonly #forwardAuth: Counter<'outcome'>
  readonly #emails: Counter<'kind' | 'result'>
  readonly #patLastUsedFlushFailures: Counter
  readonly #websockets: Gauge<'route'>
  readonly #websocketsClosed: Counter<'route' | 'reason'>
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
      help: 'Credentials checked: method password, session, pat, oidc or jwt; result success or failure.',
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
    this.#mfaAttempts = new Counter({
      name: 'gatehouse_mfa_attempts_total',
      help: 'Second-factor checks (two-step logins and step-ups) by method and result.',
      labelNames: ['method', 'result'],
      registers,
    })
    for (const method of SECOND_FACTOR_METHODS) for (const result of AUTH_ATTEMPT_RESULTS) this.#mfaAttempts.inc({ method, result }, 0)
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
    this.#forwardAuth = new Counter({
      name: 'gatehouse_forward_auth_total',
      help: 'GET /auth/verify answers for a proxy in front, by outcome (as gatehouse_decisions_total).',
      labelNames: ['outcome'],
      registers,
    })
    // Every outcome exists from the start, so that an alert sees the first one.
    for (const outcome of DECISION_OUTCOMES) this.#forwardAuth.inc({ outcome }, 0)
    this.#emails = new Counter({
      name: 'gatehouse_emails_total',
      help: 'Emails handed to the mail server (or the log), by kind (reset, verification, password_changed) and result (sent, failed).',
      labelNames: ['kind', 'result'],
      registers,
    })
    // Every label value from the start, so that an alert on failures sees the first one.
    for (const kind of EMAIL_KINDS) for (const result of ['sent', 'failed'] as const) this.#emails.inc({ kind, result }, 0)
    new Gauge({
      name: 'gatehouse_build_info',
      help: 'Always 1: the running version of Gatehouse and of Node.js.',
      labelNames: ['version', 'node'],
      registers,
    }).set({ version, node: process.version }, 1)
    // Alert rules see the first event only when the series already exists at 0 before it:
    // increase() over a series that appears with the value 1 is 0.
    for (const method of AUTH_ATTEMPT_METHODS) for (const result of AUTH_ATTEMPT_RESULTS) this.#authAttempts.inc({ method, result }, 0)
    for (const result of RELOAD_RESULTS) this.#reloads.inc({ result }, 0)

    this.#patLastUsedFlushFailures = new Counter({
      name: 'gatehouse_pat_last_used_flush_failures_total',
      help: 'Failed writes of PAT last-used times (the times are kept and written with the next flush).',
      registers,
    })
    this.#websockets = new Gauge({
      name: 'gatehouse_websocket_connections',
      help: 'Open WebSocket tunnels, by route name.',
      labelNames: ['route'],
      registers,
    })
    this.#websocketsClosed = new Counter({
      name: 'gatehouse_websocket_closed_total',
      help: 'WebSocket tunnels closed, by route name and reason: client, upstream, revoked, expired or shutdown.',
      labelNames: ['route', 'reason'],
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

  /**
   * Starts the per-route counters at 0 for every outcome (each configuration calls it with
   * its route names; routes removed by a reload keep their series until the process ends).
   */
  declareRoutes(names: readonly string[]): void {
    for (const route of names) {
      for (const outcome of DECISION_OUTCOMES) this.#decisions.inc({ route, outcome }, 0)
      this.#rateLimited.inc({ route }, 0)
    }
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

  forwardAuth(outcome: DecisionOutcome): void {
    this.#forwardAuth.inc({ outcome })
  }

  mfaAttempt(method: SecondFactorMethod, result: AuthAttemptResult): void {
    this.#mfaAttempts.inc({ method, result })
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

  email(kind: EmailKind, result: EmailResult): void {
    this.#emails.inc({ kind, result })
  }

  patLastUsedFlushFailed(): void {
    this.#patLastUsedFlushFailures.inc()
  }

  /** Shows every WebSocket route's gauge and close counters from 0, so that alert rules see the first event. */
  websocketRoutes(routes: readonly string[]): void {
    for (const route of routes) {
      this.#websockets.inc({ route }, 0)
      for (const reason of CLOSE_REASONS) this.#websocketsClosed.inc({ route, reason }, 0)
    }
  }

  websocketOpened(route: string): void {
    this.#websockets.inc({ route })
  }

  websocketClosed(route: string, reason: CloseReason): void {
    this.#websockets.dec({ route })
    this.#websocketsClosed.inc({ route, reason })
  }

  exposition(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
