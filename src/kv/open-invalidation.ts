import type { InvalidationBus } from './invalidation.js'
import { MemoryInvalidationBus } from './memory-invalidation.js'
import { RedisInvalidationBus } from './redis-invalidation.js'

export interface OpenInvalidationBusOptions {
  /** Redis only: the channel is `<keyPrefix>invalidate`; default 'gh:', as for the session store. */
  keyPrefix?: string
  /** Redis only: how long to keep trying to connect and subscribe at open. */
  connectTimeoutMs?: number
}

/**
 * Opens the bus that goes with `storage.sessions`: `memory` (this process only) or
 * `redis://…` / `rediss://…` / `redis-sentinel://…` (rejects when Redis cannot be reached within the connect timeout).
 */
export async function openInvalidationBus(
  sessionsUrl: string,
  options: OpenInvalidationBusOptions = {},
): Promise<InvalidationBus> {
  if (sessionsUrl === 'memory') return new MemoryInvalidationBus()
  if (/^(rediss?|redis-sentinel):\/\//i.test(sessionsUrl)) {
    return RedisInvalidationBus.open({
      url: sessionsUrl,
      keyPrefix: options.keyPrefix,
      connectTimeoutMs: options.connectTimeoutMs,
    })
  }
  // Only the scheme is echoed: the rest may hold a password.
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(sessionsUrl)?.[0] ?? sessionsUrl.slice(0, 12)
  throw new Error(`unsupported session store "${scheme}…": expected memory, redis://host:6379/0 (rediss:// for TLS) or redis-sentinel://h1:26379,h2:26379/mymaster/0`)
}
