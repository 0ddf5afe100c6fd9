/**
 * The session store interface: a small string-and-TTL store with per-key sets and counters.
 * The core builds sessions, lockouts and login limits on it. Implementations: `memory.ts`
 * (in-process, bounded) and `redis.ts` (shared by replicas); both pass
 * test/contracts/kv-store.ts.
 *
 * TTLs are garbage collection only: the core never relies on a store expiring a key on
 * time, it checks its own timestamps against its own clock.
 */

export interface CounterState {
  /** The count after this increment. */
  count: number
  /** Milliseconds until the window of this counter ends. */
  resetInMs: number
}

export interface KeyValueStore {
  readonly kind: 'memory' | 'redis'
  get(key: string): Promise<string | null>
  /** Stores `value` under `key`, replacing any value, for `ttlMs` milliseconds. */
  set(key: string, value: string, ttlMs: number): Promise<void>
  /** Resolves true when the key existed. */
  delete(key: string): Promise<boolean>
  /** Deletes several keys at once; resolves how many existed. */
  deleteMany(keys: readonly string[]): Promise<number>

  /** Adds `member` to the set `key`, and keeps the set for at least `ttlMs`. */
  setAdd(key: string, member: string, ttlMs: number): Promise<void>
  setRemove(key: string, member: string): Promise<void>
  setMembers(key: string): Promise<string[]>

  /**
   * Increments the counter `key`; the first increment starts a window of `windowMs`,
   * after which the counter starts again from zero. Atomic across replicas.
   */
  increment(key: string, windowMs: number): Promise<CounterState>
  /** Current state of a counter without changing it; count 0 when absent. */
  peek(key: string): Promise<CounterState>

  /**
   * How many live keys start with `prefix` (for the active-sessions gauge). It walks the
   * keyspace: call it for metrics, at scrape intervals, never per request.
   */
  countKeys(prefix: string): Promise<number>

  /** Round trip to the store; rejects when it is unreachable. */
  ping(): Promise<void>
  close(): Promise<void>
}
