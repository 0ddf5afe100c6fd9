import type { InvalidationBus } from './invalidation.js'
import { MemoryInvalidationBus } from './memory-invalidation.js'
import { isRedisUrl, unsupportedStoreUrl } from './redis-client.js'
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
  if (isRedisUrl(sessionsUrl)) {
    return RedisInvalidationBus.open({
      url: sessionsUrl,
      keyPrefix: options.keyPrefix,
      connectTimeoutMs: options.connectTimeoutMs,
    })
  }
  throw unsupportedStoreUrl(sessionsUrl)
}
