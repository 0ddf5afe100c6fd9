/**
 * A circuit breaker around one dependency (the database, the session store, an upstream),
 * built on opossum. opossum opens on an error percentage over a rolling window; on top of
 * that this one opens after `maxConsecutiveFailures` failures in a row, so that a dependency
 * that dies after a long healthy run is cut off after a bounded number of attempts (SPEC §7:
 * at most 20), not after its error rate has caught up with the past successes.
 *
 * Only outages count as failures (`isFailure`): a unique violation or a 404 from an upstream
 * says the dependency is up. While open, `run` rejects at once with BreakerOpenError, which
 * carries the seconds until the next probe for a Retry-After.
 */
import CircuitBreaker from 'opossum'

export type BreakerState = 'closed' | 'half_open' | 'open'

export interface BreakerOptions {
  /** How long the breaker stays open before one probe is let through. */
  resetTimeoutMs: number
  maxConsecutiveFailures: number
  /** Open when more than this percentage failed in the rolling window (and volume was reached). */
  errorThresholdPercentage: number
  volumeThreshold: number
  rollingWindowMs: number
  /** Tells an outage from an error that proves the dependency is up. */
  isFailure(err: unknown): boolean
}

export const DEFAULT_BREAKER_OPTIONS: Omit<BreakerOptions, 'isFailure'> = {
  resetTimeoutMs: 5_000,
  maxConsecutiveFailures: 5,
  errorThresholdPercentage: 50,
  volumeThreshold: 20,
  rollingWindowMs: 10_000,
}

export class BreakerOpenError extends Error {
  readonly code = 'EOPENBREAKER'
  constructor(
    readonly breaker: string,
    /** Whole seconds until the breaker lets a probe through. */
    readonly retryAfter: number,
  ) {
    super(`The circuit breaker "${breaker}" is open`)
    this.name = 'BreakerOpenError'
  }
}

export function isBreakerOpen(err: unknown): err is BreakerOpenError {
  return err instanceof BreakerOpenError
}

type Action = () => Promise<unknown>

export class Breaker {
  readonly name: string
  readonly #circuit: CircuitBreaker<[Action], unknown>
  readonly #options: BreakerOptions
  #consecutiveFailures = 0
  #openedAt = 0

  constructor(name: string, options: BreakerOptions, onStateChange?: (breaker: Breaker) => void) {
    this.name = name
    this.#options = options
    this.#circuit = new CircuitBreaker((action: Action) => action(), {
      name,
      timeout: false, // every dependency has its own timeout (statement, command, route)
      resetTimeout: options.resetTimeoutMs,
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      rollingCountTimeout: options.rollingWindowMs,
      // opossum calls this "filter": true means "not a failure".
      errorFilter: (err: unknown) => !options.isFailure(err),
      // Nothing reads opossum's latency percentiles or its snapshots. Left on, every call
      // records its latency, and every second each breaker concatenates and sorts the whole
      // window's latencies (50,000 numbers at 5,000 requests a second) to emit a snapshot.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
    })
    this.#circuit.on('failure', () => {
      this.#consecutiveFailures += 1
      if (this.#consecutiveFailures >= options.maxConsecutiveFailures) this.#circuit.open()
    })
    this.#circuit.on('success', () => {
      this.#consecutiveFailures = 0
    })
    this.#circuit.on('open', () => {
      this.#openedAt = Date.now()
      onStateChange?.(this)
    })
    this.#circuit.on('halfOpen', () => onStateChange?.(this))
    this.#circuit.on('close', () => {
      this.#consecutiveFailures = 0
      onStateChange?.(this)
    })
  }

  get state(): BreakerState {
    if (this.#circuit.opened) return 'open'
    if (this.#circuit.halfOpen) return 'half_open'
    return 'closed'
  }

  /** Runs `action` unless the breaker is open; its outcome feeds the breaker. */
  run<T>(action: () => Promise<T>): Promise<T> {
    return (this.#circuit.fire(action) as Promise<T>).catch((err: unknown) => {
      if ((err as { code?: unknown } | null)?.code === 'EOPENBREAKER') {
        throw new BreakerOpenError(this.name, this.retryAfterSeconds())
      }
      throw err
    })
  }

  /** Seconds until the next probe; 1 while half-open (the probe is under way). */
  retryAfterSeconds(): number {
    if (!this.#circuit.opened) return 1
    const remaining = this.#openedAt + this.#options.resetTimeoutMs - Date.now()
    return Math.max(1, Math.ceil(remaining / 1000))
  }

  /** Stops the reset timer; the breaker refuses everything afterwards. */
  shutdown(): void {
    this.#circuit.shutdown()
  }
}
