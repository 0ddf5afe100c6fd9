import { deliver, type InvalidationBus, type InvalidationMessage } from './invalidation.js'

/**
 * The invalidation bus of a single process (`storage.sessions: memory`): publishing calls
 * the subscribers synchronously. Several services sharing one instance behave like replicas
 * sharing a Redis, which is what tests use it for too. It never loses a message, so it has
 * no `onReset`.
 */
export class MemoryInvalidationBus implements InvalidationBus {
  readonly kind = 'memory'
  readonly #handlers = new Set<(message: InvalidationMessage) => void>()
  #closed = false

  get connected(): boolean {
    return !this.#closed
  }

  async publish(message: InvalidationMessage): Promise<void> {
    if (this.#closed) throw new Error('the invalidation bus is closed')
    deliver(this.#handlers, message)
  }

  subscribe(handler: (message: InvalidationMessage) => void): () => void {
    // A wrapper per call, so that subscribing one function twice needs two unsubscribes.
    const entry = (message: InvalidationMessage): void => handler(message)
    this.#handlers.add(entry)
    return () => {
      this.#handlers.delete(entry)
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#handlers.clear()
  }
}
