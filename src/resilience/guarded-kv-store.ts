/**
 * The session store behind its circuit breaker: once it is open, session checks fail at once
 * with BreakerOpenError (503 with Retry-After) instead of each waiting for a command timeout.
 */
import type { CounterState, KeyValueStore } from '../kv/store.js'
import type { Breaker } from './circuit-breaker.js'

export class GuardedKeyValueStore implements KeyValueStore {
  readonly #store: KeyValueStore
  readonly #breaker: Breaker

  constructor(store: KeyValueStore, breaker: Breaker) {
    this.#store = store
    this.#breaker = breaker
  }

  get kind(): KeyValueStore['kind'] {
    return this.#store.kind
  }

  get(key: string): Promise<string | null> {
    return this.#breaker.run(() => this.#store.get(key))
  }

  set(key: string, value: string, ttlMs: number): Promise<void> {
    return this.#breaker.run(() => this.#store.set(key, value, ttlMs))
  }

  delete(key: string): Promise<boolean> {
    return this.#breaker.run(() => this.#store.delete(key))
  }

  deleteMany(keys: readonly string[]): Promise<number> {
    return this.#breaker.run(() => this.#store.deleteMany(keys))
  }

  setAdd(key: string, member: string, ttlMs: number): Promise<void> {
    return this.#breaker.run(() => this.#store.setAdd(key, member, ttlMs))
  }

  setRemove(key: string, member: string): Promise<void> {
    return this.#breaker.run(() => this.#store.setRemove(key, member))
  }

  setMembers(key: string): Promise<string[]> {
    return this.#breaker.run(() => this.#store.setMembers(key))
  }

  increment(key: string, windowMs: number): Promise<CounterState> {
    return this.#breaker.run(() => this.#store.increment(key, windowMs))
  }

  peek(key: string): Promise<CounterState> {
    return this.#breaker.run(() => this.#store.peek(key))
  }

  countKeys(prefix: string): Promise<number> {
    return this.#breaker.run(() => this.#store.countKeys(prefix))
  }

  ping(): Promise<void> {
    return this.#breaker.run(() => this.#store.ping())
  }

  close(): Promise<void> {
    return this.#store.close()
  }
}
