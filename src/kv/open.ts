import type { Clock } from '../core/clock.js'
import { MemoryKeyValueStore } from './memory.js'
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
  if (/^(rediss?|redis-sentinel):\/\//i.test(url)) {
    return RedisKeyValueStore.open({ url, keyPrefix: options.keyPrefix, connectTimeoutMs: options.connectTimeoutMs })
  }
  // Only the scheme is echoed: the rest may hold a password.
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? url.slice(0, 12)
  throw new Error(`unsupported session store "${scheme}…": expected memory, redis://host:6379/0 (rediss:// for TLS) or redis-sentinel://h1:26379,h2:26379/mymaster/0`)
}
