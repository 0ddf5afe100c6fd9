/**
 * Counters for rate limits (the per-route limits of SPEC §6 and the per-IP login limit): kept
 * in the session store, so that replicas on one Redis share one count; while the store is
 * unreachable (or its breaker open), counted in this process instead, so that limits still
 * hold per replica and the outage turns into neither a 503 nor an unlimited route.
 */
import type { CounterState, KeyValueStore } from '../kv/store.js'
import { MemoryKeyValueStore } from '../kv/memory.js'
import { isBreakerOpen } from './circuit-breaker.js'
import { isDependencyOutage } from './outage.js'

export type FallbackListener = (active: boolean, err?: unknown) => void

export class FallbackCounter {
  readonly #store: KeyValueStore
  readonly #local: MemoryKeyValueStore
  readonly #listeners = new Set<FallbackListener>()
  #fallingBack = false

  constructor(store: KeyValueStore, options: { maxLocalKeys?: number } = {}) {
    this.#store = store
    this.#local = new MemoryKeyValueStore({ maxEntries: options.maxLocalKeys ?? 100_000 })
  }

  get fallingBack(): boolean {
    return this.#fallingBack
  }

  /** Told when counting moves to this process and when it moves back; returns the unsubscribe. */
  onChange(listener: FallbackListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async increment(key: string, windowMs: number): Promise<CounterState> {
    try {
      const state = await this.#store.increment(key, windowMs)
      if (this.#fallingBack) this.#switch(false)
      return state
    } catch (err) {
      if (!isBreakerOpen(err) && !isDependencyOutage(err)) throw err
      if (!this.#fallingBack) this.#switch(true, err)
      return this.#local.increment(key, windowMs)
    }
  }

  close(): Promise<void> {
    this.#listeners.clear()
    return this.#local.close()
  }

  #switch(active: boolean, err?: unknown): void {
    this.#fallingBack = active
    for (const listener of this.#listeners) listener(active, err)
  }
}
