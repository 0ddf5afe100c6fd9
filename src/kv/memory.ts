import { systemClock, type Clock } from '../core/clock.js'
import { DependencyUnavailableError } from '../dependency-error.js'
import type { CounterState, KeyValueStore } from './store.js'

export const DEFAULT_MAX_ENTRIES = 100_000

/** Entries the incremental sweep looks at per write: enough to outpace inserts, never a pause. */
const SWEEP_STEP = 8

export interface MemoryKeyValueStoreOptions {
  /** Keys held at most (strings, sets and counters alike); the oldest-written go first. */
  maxEntries?: number
  clock?: Clock
}

type Entry =
  | { type: 'string'; value: string; expiresAt: number }
  | { type: 'set'; members: Set<string>; expiresAt: number }
  | { type: 'counter'; count: number; expiresAt: number }

type EntryOf<T extends Entry['type']> = Extract<Entry, { type: T }>

/**
 * The session store of a single process: a Map in insertion order, bounded by `maxEntries`.
 * Expired entries are dropped when read and by a sweep that advances a few entries on every
 * write. Sessions kept here end with the process and are not shared by replicas.
 */
export class MemoryKeyValueStore implements KeyValueStore {
  readonly kind = 'memory'
  readonly #entries = new Map<string, Entry>()
  readonly #maxEntries: number
  readonly #clock: Clock
  #sweep: Iterator<[string, Entry]> | undefined
  #closed = false

  constructor(options: MemoryKeyValueStoreOptions = {}) {
    const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new TypeError(`maxEntries must be a positive integer, got ${maxEntries}`)
    }
    this.#maxEntries = maxEntries
    this.#clock = options.clock ?? systemClock
  }

  /** Keys held, including expired ones the sweep has not reached yet; never above maxEntries. */
  get size(): number {
    return this.#entries.size
  }

  async get(key: string): Promise<string | null> {
    return this.#live(key, 'string')?.value ?? null
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.#write(key, { type: 'string', value, expiresAt: this.#expiry(ttlMs) })
  }

  async delete(key: string): Promise<boolean> {
    this.#open()
    const existed = this.#live(key) !== undefined
    this.#entries.delete(key)
    return existed
  }

  async deleteMany(keys: readonly string[]): Promise<number> {
    let deleted = 0
    for (const key of keys) if (await this.delete(key)) deleted++
    return deleted
  }

  async setAdd(key: string, member: string, ttlMs: number): Promise<void> {
    const expiresAt = this.#expiry(ttlMs)
    const entry = this.#live(key, 'set')
    if (entry) {
      entry.members.add(member)
      entry.expiresAt = Math.max(entry.expiresAt, expiresAt)
    } else {
      this.#write(key, { type: 'set', members: new Set([member]), expiresAt })
    }
  }

  async setRemove(key: string, member: string): Promise<void> {
    const entry = this.#live(key, 'set')
    if (!entry) return
    entry.members.delete(member)
    // Like Redis: an empty set does not exist.
    if (entry.members.size === 0) this.#entries.delete(key)
  }

  async setMembers(key: string): Promise<string[]> {
    return [...(this.#live(key, 'set')?.members ?? [])]
  }

  async increment(key: string, windowMs: number): Promise<CounterState> {
    const expiresAt = this.#expiry(windowMs)
    let entry = this.#live(key, 'counter')
    if (entry) {
      entry.count++
    } else {
      entry = { type: 'counter', count: 1, expiresAt }
      this.#write(key, entry)
    }
    return { count: entry.count, resetInMs: entry.expiresAt - this.#clock.now() }
  }

  async peek(key: string): Promise<CounterState> {
    const entry = this.#live(key, 'counter')
    return entry ? { count: entry.count, resetInMs: entry.expiresAt - this.#clock.now() } : { count: 0, resetInMs: 0 }
  }

  async countKeys(prefix: string): Promise<number> {
    this.#open()
    const now = this.#clock.now()
    let count = 0
    for (const [key, entry] of this.#entries) if (entry.expiresAt > now && key.startsWith(prefix)) count++
    return count
  }

  async ping(): Promise<void> {
    this.#open()
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#entries.clear()
    this.#sweep = undefined
  }

  #open(): void {
    if (this.#closed) throw new DependencyUnavailableError('session store', new Error('the memory session store is closed'))
  }

  #expiry(ttlMs: number): number {
    this.#open()
    if (!(ttlMs > 0) || !Number.isFinite(ttlMs)) throw new RangeError(`ttl must be a positive number of milliseconds, got ${ttlMs}`)
    return this.#clock.now() + ttlMs
  }

  /** The entry under `key` unless absent or expired (then dropped); a key of another type is a caller's bug. */
  #live(key: string): Entry | undefined
  #live<T extends Entry['type']>(key: string, type: T): EntryOf<T> | undefined
  #live(key: string, type?: Entry['type']): Entry | undefined {
    this.#open()
    const entry = this.#entries.get(key)
    if (!entry) return undefined
    if (entry.expiresAt <= this.#clock.now()) {
      this.#entries.delete(key)
      return undefined
    }
    if (type !== undefined && entry.type !== type) {
      throw new TypeError(`session store key "${key}" holds a ${entry.type}, not a ${type}`)
    }
    return entry
  }

  #write(key: string, entry: Entry): void {
    this.#sweepSome()
    // Re-inserting moves the key to the young end, so eviction takes the least recently written.
    this.#entries.delete(key)
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size < this.#maxEntries) break
      this.#entries.delete(oldest)
    }
    this.#entries.set(key, entry)
  }

  #sweepSome(): void {
    const now = this.#clock.now()
    this.#sweep ??= this.#entries.entries()
    for (let i = 0; i < SWEEP_STEP; i++) {
      const next = this.#sweep.next()
      if (next.done) {
        this.#sweep = undefined
        return
      }
      const [key, entry] = next.value
      if (entry.expiresAt <= now) this.#entries.delete(key)
    }
  }
}
