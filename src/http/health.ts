/**
 * `/health`, `/health/live` and `/health/ready` (SPEC §5): liveness never touches a
 * dependency; readiness and health ping the database and the session store, each bounded
 * by a timeout so a hung dependency reports unhealthy instead of hanging the probe.
 */
import type { FastifyInstance } from 'fastify'
import { errorResponses, healthResponse, livenessResponse, readinessResponse } from './schemas.js'

export interface ComponentHealth {
  status: 'ok' | 'unavailable'
  latency_ms: number
}

export interface HealthOptions {
  version: string
  components: Record<string, () => Promise<void>>
  timeoutMs?: number
  /** Each route's upstream servers by index and state (UpstreamPools.health). */
  upstreams?: () => Record<string, Array<{ server: number; state: string }>>
}

async function probe(ping: () => Promise<void>, timeoutMs: number): Promise<ComponentHealth> {
  const started = performance.now()
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), timeoutMs)
  })
  try {
    await Promise.race([ping(), timeout])
    return { status: 'ok', latency_ms: roundMs(performance.now() - started) }
  } catch {
    return { status: 'unavailable', latency_ms: roundMs(performance.now() - started) }
  } finally {
    clearTimeout(timer)
  }
}

const roundMs = (ms: number) => Math.round(ms * 100) / 100

export async function healthRoutes(app: FastifyInstance, options: HealthOptions): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 2000

  async function check() {
    const entries = await Promise.all(
      Object.entries(options.components).map(async ([name, ping]) => [name, await probe(ping, timeoutMs)] as const),
    )
    const components = Object.fromEntries(entries)
    const healthy = entries.every(([, c]) => c.status === 'ok')
    return { healthy, components }
  }

  app.get('/health', { schema: { response: { 200: healthResponse, 503: healthResponse, ...errorResponses } } }, async (_request, reply) => {
    const { healthy, components } = await check()
    reply.header('cache-control', 'no-store').code(healthy ? 200 : 503)
    const upstreams = options.upstreams?.()
    return { status: healthy ? 'ok' : 'unavailable', version: options.version, components, ...(upstreams ? { upstreams } : {}) }
  })

  app.get('/health/live', { schema: { response: { 200: livenessResponse, ...errorResponses } } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })

  app.get('/health/ready', { schema: { response: { 200: readinessResponse, 503: readinessResponse, ...errorResponses } } }, async (_request, reply) => {
    const { healthy, components } = await check()
    reply.header('cache-control', 'no-store').code(healthy ? 200 : 503)
    return { status: healthy ? 'ok' : 'unavailable', components }
  })
}
