/**
 * The gateway's circuit breakers by name (`database`, `sessions`, `upstream:<route>`). It
 * outlives configuration reloads, so that a reload neither forgets that a dependency is down
 * nor resets the counts, and it is what the `gatehouse_circuit_state` metric reads.
 */
import { Breaker, DEFAULT_BREAKER_OPTIONS, type BreakerOptions } from './circuit-breaker.js'

export type StateListener = (breaker: Breaker) => void

export class BreakerRegistry {
  readonly #breakers = new Map<string, Breaker>()
  readonly #defaults: Omit<BreakerOptions, 'isFailure'>
  readonly #listeners = new Set<StateListener>()

  constructor(defaults: Partial<Omit<BreakerOptions, 'isFailure'>> = {}) {
    this.#defaults = { ...DEFAULT_BREAKER_OPTIONS, ...defaults }
  }

  /** The breaker of this name, made on first use with `isFailure` and the defaults. */
  get(name: string, isFailure: (err: unknown) => boolean): Breaker {
    let breaker = this.#breakers.get(name)
    if (breaker === undefined) {
      breaker = new Breaker(name, { ...this.#defaults, isFailure }, (b) => {
        for (const listener of this.#listeners) listener(b)
      })
      this.#breakers.set(name, breaker)
    }
    return breaker
  }

  all(): Breaker[] {
    return [...this.#breakers.values()]
  }

  onStateChange(listener: StateListener): void {
    this.#listeners.add(listener)
  }

  shutdown(): void {
    for (const breaker of this.#breakers.values()) breaker.shutdown()
  }
}
