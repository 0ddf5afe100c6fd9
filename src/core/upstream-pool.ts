/**
 * The servers of one route's upstream (SPEC §4a "Several upstream servers"): which one gets
 * the next request, and which are in rotation. A server that could not be connected to is
 * left out for a while (passive); one failing its health checks leaves until it passes them
 * again (active). A route with one server never leaves it out: its failures are the route's,
 * handled by the breaker (SPEC §7).
 */
import type { HealthCheckConfig, LoadBalancing } from '../config/types.js'
import type { Clock } from './clock.js'

/** How long a server that refused a connection stays out of rotation. */
export const PASSIVE_EJECTION_MS = 10_000

export type ServerState = 'up' | 'ejected' | 'unhealthy'

export interface UpstreamServer {
  /** 1-based, in the configured order: how /health names it. */
  readonly index: number
  /** The configured URL: scheme, host, port and base path. */
  readonly url: string
  /** host:port, the metric label (SPEC §9). */
  readonly label: string
}

interface ServerStatus {
  ejectedUntil: number
  healthy: boolean
  failuresInRow: number
  successesInRow: number
  inFlight: number
}

export interface UpstreamPoolOptions {
  balancing: LoadBalancing
  healthCheck: Pick<HealthCheckConfig, 'unhealthy_after' | 'healthy_after'> | null
  clock: Clock
  /** Told each time a server enters or leaves the rotation. */
  onChange?: (server: UpstreamServer, inRotation: boolean) => void
}

export class UpstreamPool {
  readonly servers: readonly UpstreamServer[]
  readonly #status: ServerStatus[]
  readonly #options: UpstreamPoolOptions
  #next = 0

  constructor(urls: readonly string[], options: UpstreamPoolOptions) {
    if (urls.length === 0) throw new TypeError('an upstream pool needs at least one server')
    this.servers = urls.map((url, at) => ({ index: at + 1, url, label: new URL(url).host }))
    this.#status = urls.map(() => ({ ejectedUntil: 0, healthy: true, failuresInRow: 0, successesInRow: 0, inFlight: 0 }))
    this.#options = options
  }

  /**
   * The server for the next attempt, among those in rotation and not in `tried`; null when
   * there is none. With one server it is always that server (unless already tried).
   */
  pick(tried: ReadonlySet<number> = new Set()): UpstreamServer | null {
    const candidates = this.servers.filter((server) => !tried.has(server.index) && this.inRotation(server))
    if (candidates.length === 0) return null
    if (this.#options.balancing === 'least_request') {
      const fewest = Math.min(...candidates.map((server) => this.#of(server).inFlight))
      const least = candidates.filter((server) => this.#of(server).inFlight === fewest)
      return this.#roundRobin(least)
    }
    return this.#roundRobin(candidates)
  }

  /** Whether requests may go to `server` now. */
  inRotation(server: UpstreamServer): boolean {
    if (this.servers.length === 1) return true
    const status = this.#of(server)
    return status.healthy && status.ejectedUntil <= this.#options.clock.now()
  }

  state(server: UpstreamServer): ServerState {
    if (this.servers.length === 1) return 'up'
    const status = this.#of(server)
    if (!status.healthy) return 'unhealthy'
    return status.ejectedUntil > this.#options.clock.now() ? 'ejected' : 'up'
  }

  /** Seconds until some server may be back (passive ejections only; else null). */
  retryAfterSeconds(): number | null {
    const now = this.#options.clock.now()
    const ends = this.#status.filter((s) => s.healthy && s.ejectedUntil > now).map((s) => s.ejectedUntil - now)
    return ends.length === 0 ? null : Math.max(1, Math.ceil(Math.min(...ends) / 1000))
  }

  /** A request to `server` starts; the returned function ends it (least_request counts them). */
  begin(server: UpstreamServer): () => void {
    const status = this.#of(server)
    status.inFlight++
    let ended = false
    return () => {
      if (ended) return
      ended = true
      status.inFlight--
    }
  }

  /** `server` refused the connection or did not connect in time: out of rotation for a while. */
  connectFailed(server: UpstreamServer): void {
    if (this.servers.length === 1) return
    const wasIn = this.inRotation(server)
    this.#of(server).ejectedUntil = this.#options.clock.now() + PASSIVE_EJECTION_MS
    if (wasIn) this.#options.onChange?.(server, false)
  }

  /** One health-check result for `server`. */
  probed(server: UpstreamServer, ok: boolean): void {
    const check = this.#options.healthCheck
    if (check === null) return
    const status = this.#of(server)
    const wasIn = this.inRotation(server)
    if (ok) {
      status.failuresInRow = 0
      status.successesInRow++
      if (!status.healthy && status.successesInRow >= check.healthy_after) status.healthy = true
    } else {
      status.successesInRow = 0
      status.failuresInRow++
      if (status.healthy && status.failuresInRow >= check.unhealthy_after) status.healthy = false
    }
    const isIn = this.inRotation(server)
    if (wasIn !== isIn) this.#options.onChange?.(server, isIn)
  }

  #roundRobin(candidates: readonly UpstreamServer[]): UpstreamServer | null {
    // The turn goes round all servers, so that leaving one out does not shift the others' share.
    for (let step = 0; step < this.servers.length; step++) {
      const server = this.servers[(this.#next + step) % this.servers.length]
      if (server !== undefined && candidates.includes(server)) {
        this.#next = (server.index) % this.servers.length
        return server
      }
    }
    return null
  }

  #of(server: UpstreamServer): ServerStatus {
    const status = this.#status[server.index - 1]
    if (status === undefined || this.servers[server.index - 1] !== server) throw new TypeError('not a server of this pool')
    return status
  }
}
