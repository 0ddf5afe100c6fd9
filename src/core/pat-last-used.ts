/**
 * When each PAT was last used: kept in memory on the hot path and written every `flushMs` in
 * one statement. A failed write keeps the times for the next one, and is reported to the
 * listeners (the app logs and counts it) instead of vanishing.
 */
import { positiveInteger } from './bus-cache.js'

export const DEFAULT_LAST_USED_FLUSH_MS = 30_000

export interface LastUsedRecorderOptions {
  write(batch: ReadonlyMap<string, number>): Promise<void>
  flushMs?: number
}

export class LastUsedRecorder {
  readonly #write: LastUsedRecorderOptions['write']
  readonly #timer: NodeJS.Timeout
  readonly #failureListeners = new Set<(error: unknown) => void>()
  #pending = new Map<string, number>()
  #flushing: Promise<void> | undefined

  constructor(options: LastUsedRecorderOptions) {
    this.#write = options.write
    const flushMs = positiveInteger('lastUsedFlushMs', options.flushMs ?? DEFAULT_LAST_USED_FLUSH_MS)
    this.#timer = setInterval(() => {
      this.flush().catch(() => {}) // reported to the failure listeners by flush itself
    }, flushMs)
    this.#timer.unref()
  }

  /** Records a use at `time` (epoch ms). */
  touch(patId: string, time: number): void {
    this.#pending.set(patId, time)
  }

  /** The time of a use not written yet, if any. */
  pending(patId: string): number | undefined {
    return this.#pending.get(patId)
  }

  /** Tells `listener` of every failed write; returns the unsubscribe function. */
  onFlushError(listener: (error: unknown) => void): () => void {
    this.#failureListeners.add(listener)
    return () => this.#failureListeners.delete(listener)
  }

  /** Writes the pending times in one statement; on failure they are kept for the next flush, and it rejects. */
  async flush(): Promise<void> {
    // One flush at a time: a timed flush must not overlap a slow one.
    while (this.#flushing) await this.#flushing.catch(() => {})
    if (this.#pending.size === 0) return
    const batch = this.#pending
    this.#pending = new Map()
    const run = this.#writeOrKeep(batch)
    this.#flushing = run
    try {
      await run
    } finally {
      this.#flushing = undefined
    }
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    clearInterval(this.#timer)
    await this.flush()
  }

  async #writeOrKeep(batch: Map<string, number>): Promise<void> {
    try {
      await this.#write(batch)
    } catch (error) {
      for (const [id, time] of batch) {
        const newer = this.#pending.get(id)
        if (newer === undefined || newer < time) this.#pending.set(id, time)
      }
      for (const listener of this.#failureListeners) listener(error)
      throw error
    }
  }
}
