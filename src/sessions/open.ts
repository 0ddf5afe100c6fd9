import type { Clock } from '../core/clock.js'
import { MemorySessionStore } from './memory.js'
import { RedisSessionStore } from './redis.js'
import type { SessionStore } from './store.js'

export interface OpenSessionStoreOptions {
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
export async function openSessionStore(url: string, options: OpenSessionStoreOptions = {}): Promise<SessionStore> {
  if (url === 'memory') return new MemorySessionStore({ clock: options.clock })
  if (/^(rediss?|redis-sentinel):\/\//i.test(url)) {
    return RedisSessionStore.open({ url, keyPrefix: options.keyPrefix, connectTimeoutMs: options.connectTimeoutMs })
  }
  // Only the scheme is echoed: the rest may hold a password.
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? url.slice(0, 12)
  throw new Error(`unsupported session store "${scheme}…": expected memory, redis://host:6379/0 (rediss:// for TLS) or redis-sentinel://h1:26379,h2:26379/mymaster/0`)
}
