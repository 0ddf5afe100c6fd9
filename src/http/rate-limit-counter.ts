/**
 * The counts behind the per-route rate limits (SPEC §6): kept in the session store, so that
 * replicas on one Redis share one count; while the store is unreachable (or its breaker is
 * open), counted in this process instead, so that limits still hold per replica and the
 * outage never turns into either a 503 or an unlimited route.
 *
 * It has the shape of an @fastify/rate-limit store (`incr` with a callback, `child`).
 */
import { isBreakerOpen } from '../resilience/circuit-breaker.js'
import { isDependencyOutage } from '../resilience/outage.js'
import { MemorySessionStore } from '../sessions/memory.js'
import type { CounterState, SessionStore } from '../sessions/store.js'

export interface RateLimitCounterOptions {
  store: SessionStore
  /** Told when counting moves to this process and when it moves back to the store. */
  onFallback?: (active: boolean, err?: unknown) => void
  /** Keys the local fallback keeps at most. */
  maxLocalKeys?: number
}

export class RateLimitCounter {
  readonly #store: SessionStore
  readonly #local: MemorySessionStore
  readonly #onFallback: ((active: boolean, err?: unknown) => void) | undefined
  #fallingBack = false

  constructor(options: RateLimitCounterOptions) {
    this.#store = options.store
    this.#local = new MemorySessionStore({ maxEntries: options.maxLocalKeys ?? 100_000 })
    this.#onFallback = options.onFallback
  }

  get fallingBack(): boolean {
    return this.#fallingBack
  }

  async increment(key: string, windowMs: number): Promise<CounterState> {
    const storeKey = `rate:${key}`
    try {
      const state = await this.#store.increment(storeKey, windowMs)
      if (this.#fallingBack) {
        this.#fallingBack = false
        this.#onFallback?.(false)
      }
      return state
    } catch (err) {
      if (!isBreakerOpen(err) && !isDependencyOutage(err)) throw err
      if (!this.#fallingBack) {
        this.#fallingBack = true
        this.#onFallback?.(true, err)
      }
      return this.#local.increment(storeKey, windowMs)
    }
  }

  /** The @fastify/rate-limit store interface. */
  incr(key: string, callback: (err: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number): void {
    this.increment(key, timeWindow).then(
      (state) => callback(null, { current: state.count, ttl: Math.max(0, state.resetInMs) }),
      (err: Error) => callback(err),
    )
  }

  child(): RateLimitCounter {
    return this
  }

  close(): Promise<void> {
    return this.#local.close()
  }
}
