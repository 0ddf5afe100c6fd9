import { GatehouseError } from '../errors.js'

export interface SemaphoreOptions {
  /** Tasks running at once. */
  maxConcurrency: number
  /** Tasks allowed to wait for a slot; one more is refused at once. */
  maxQueue: number
  /** How long a task may wait for a slot before it is refused; unlimited when omitted. */
  queueTimeoutMs?: number
}

interface Waiter {
  start(): void
  fail(error: GatehouseError): void
  timer: NodeJS.Timeout | undefined
}

function overloaded(): GatehouseError {
  return new GatehouseError('GH_OVERLOADED', undefined, { retryAfter: 1 })
}

/**
 * Bounded concurrency with a bounded queue: a flood of work waits in a queue of known size,
 * and what does not fit is refused with GH_OVERLOADED (503, Retry-After: 1) instead of piling
 * up in memory.
 */
export class Semaphore {
  readonly #maxConcurrency: number
  readonly #maxQueue: number
  readonly #queueTimeoutMs: number | undefined
  readonly #queue: Waiter[] = []
  #active = 0

  constructor(options: SemaphoreOptions) {
    if (!Number.isInteger(options.maxConcurrency) || options.maxConcurrency < 1) {
      throw new TypeError('maxConcurrency must be a positive integer')
    }
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) {
      throw new TypeError('maxQueue must be a non-negative integer')
    }
    this.#maxConcurrency = options.maxConcurrency
    this.#maxQueue = options.maxQueue
    this.#queueTimeoutMs = options.queueTimeoutMs
  }

  /** Tasks running now. */
  get active(): number {
    return this.#active
  }

  /** Tasks waiting for a slot. */
  get queued(): number {
    return this.#queue.length
  }

  /** Runs `fn` once a slot is free; rejects with GH_OVERLOADED when the queue is full or the wait times out. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.#acquire()
    try {
      return await fn()
    } finally {
      this.#release()
    }
  }

  #acquire(): Promise<void> {
    if (this.#active < this.#maxConcurrency) {
      this.#active++
      return Promise.resolve()
    }
    if (this.#queue.length >= this.#maxQueue) return Promise.reject(overloaded())
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        start: resolve,
        fail: reject,
        timer: undefined,
      }
      if (this.#queueTimeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          const index = this.#queue.indexOf(waiter)
          if (index !== -1) this.#queue.splice(index, 1)
          waiter.fail(overloaded())
        }, this.#queueTimeoutMs)
      }
      this.#queue.push(waiter)
    })
  }

  /** Hands the slot straight to the next waiter, so a newcomer cannot overtake the queue. */
  #release(): void {
    const next = this.#queue.shift()
    if (next === undefined) {
      this.#active--
      return
    }
    clearTimeout(next.timer)
    next.start()
  }
}
