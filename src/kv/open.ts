import type { Clock } from '../core/clock.js'
import { MemoryKeyValueStore } from './memory.js'
import { isRedisUrl, unsupportedStoreUrl } from './redis-client.js'
import { RedisKeyValueStore } from './redis.js'
import type { KeyValueStore } from './store.js'

export interface OpenKeyValueStoreOptions {
  /** Clock of the memory store's TTLs (Redis keeps its own time). */
  clock?: Clock
  /** Redis key prefix; default 'gh:'. */
  keyPrefix?: string
  /** How long to keep trying to reach Redis at open. */
  connectTimeoutMs?: number
}

/**
 * Opens the store named by `storage.sessions`: `memory` (this process only) or
 * `redis://…` / `rediss://…` / `redis-sentinel://…` (rejects when Redis cannot be reached within the connect timeout).
 */
export async function openKeyValueStore(url: string, options: OpenKeyValueStoreOptions = {}): Promise<KeyValueStore> {
  if (url === 'memory') return new MemoryKeyValueStore({ clock: options.clock })
  if (isRedisUrl(url)) {
    return RedisKeyValueStore.open({ url, keyPrefix: options.keyPrefix, connectTimeoutMs: options.connectTimeoutMs })
  }
  throw unsupportedStoreUrl(url)
}
