/**
 * The upstream servers of every route of one configuration: a pool per route (core/upstream-pool)
 * and, for routes with `health_check`, the probes that keep it current. Built with the app,
 * stopped when the app closes (a reload starts new probes with the new configuration).
 */
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { HealthCheckConfig, RouteConfig } from '../config/types.js'
import type { Clock } from '../core/clock.js'
import { UpstreamPool, type ServerState, type UpstreamServer } from '../core/upstream-pool.js'

export interface ServerHealth {
  server: number
  state: ServerState
}

export interface UpstreamPoolsOptions {
  clock: Clock
  /** Told when a server enters or leaves a route's rotation. */
  onChange?: (route: string, server: UpstreamServer, inRotation: boolean) => void
}

export class UpstreamPools {
  readonly #pools = new Map<string, UpstreamPool>()
  readonly #timers: NodeJS.Timeout[] = []
  readonly #probes = new Set<() => void>()
  readonly #routes: readonly RouteConfig[]

  constructor(routes: readonly RouteConfig[], options: UpstreamPoolsOptions) {
    this.#routes = routes
    for (const route of routes) {
      this.#pools.set(route.name, new UpstreamPool(route.servers, {
        balancing: route.load_balancing,
        healthCheck: route.health_check,
        clock: options.clock,
        onChange: (server, inRotation) => options.onChange?.(route.name, server, inRotation),
      }))
    }
  }

  /** The pool of `route` (every configured route has one). */
  of(route: RouteConfig): UpstreamPool {
    const pool = this.#pools.get(route.name)
    if (pool === undefined) throw new TypeError(`no upstream pool for route ${route.name}`)
    return pool
  }

  /** Each route's servers by index and state, never their addresses (SPEC §5 /health). */
  health(): Record<string, ServerHealth[]> {
    return Object.fromEntries([...this.#pools].map(([name, pool]) =>
      [name, pool.servers.map((server) => ({ server: server.index, state: pool.state(server) }))]))
  }

  /** For `gatehouse_upstream_server_up`: every server of every route, 1 in rotation, 0 out. */
  gauges(): Array<{ route: string; server: string; up: number }> {
    return [...this.#pools].flatMap(([route, pool]) =>
      pool.servers.map((server) => ({ route, server: server.label, up: pool.inRotation(server) ? 1 : 0 })))
  }

  /** Starts the active health checks of the routes that have them. */
  startHealthChecks(): void {
    for (const route of this.#routes) {
      const check = route.health_check
      if (check === null) continue
      const pool = this.of(route)
      for (const server of pool.servers) {
        const run = () => {
          const cancel = probe(server.url, check, (ok) => {
            this.#probes.delete(cancel)
            pool.probed(server, ok)
          })
          this.#probes.add(cancel)
        }
        run()
        const timer = setInterval(run, check.interval)
        timer.unref()
        this.#timers.push(timer)
      }
    }
  }

  stop(): void {
    for (const timer of this.#timers.splice(0)) clearInterval(timer)
    for (const cancel of [...this.#probes]) cancel()
    this.#probes.clear()
  }
}

/**
 * One GET of the health-check path on the server's origin: a 2xx or 3xx answer within the
 * timeout is a success. Returns a function that abandons the probe without a result.
 */
function probe(serverUrl: string, check: HealthCheckConfig, done: (ok: boolean) => void): () => void {
  const url = new URL(check.path, serverUrl)
  let settled = false
  const settle = (ok: boolean) => {
    if (settled) return
    settled = true
    clearTimeout(timer)
    done(ok)
  }
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest
  const req = send(url, { method: 'GET', agent: false, headers: { 'user-agent': 'gatehouse-health-check' } }, (res) => {
    res.resume()
    const status = res.statusCode ?? 0
    settle(status >= 200 && status < 400)
  })
  req.on('error', () => settle(false))
  const timer = setTimeout(() => {
    settle(false)
    req.destroy()
  }, check.timeout)
  timer.unref()
  req.end()
  return () => {
    settled = true
    clearTimeout(timer)
    req.destroy()
  }
}
