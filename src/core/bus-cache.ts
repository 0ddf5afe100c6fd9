/**
 * One in-memory cache for everything a replica may serve from memory only while every other
 * replica can tell it to forget (PATs, active users, and whatever comes next): entries live at
 * most `ttlMs`, at most `max` of them (least recently used go first), and are dropped the moment
 * an invalidation message names one of their tags. While the bus may be missing messages the
 * cache is neither read nor filled, and a load that raced an invalidation is not kept.
 */
import type { InvalidationBus, InvalidationMessage } from '../kv/invalidation.js'
import type { Clock } from './clock.js'

/**
 * The tag an invalidation message drops: `user:<id>` or `token:<id>`. A session that ended
 * (`session:<id>`) concerns no cached user or token: no entry carries such a tag.
 */
export function invalidationTag(message: InvalidationMessage): string {
  switch (message.kind) {
    case 'user':
      return `user:${message.userId}`
    case 'token':
      return `token:${message.patId}`
    case 'session':
      return `session:${message.sessionId ?? `user:${message.userId}`}`
  }
}

export interface BusAwareCacheOptions<V> {
  bus: InvalidationBus
  clock: Clock
  ttlMs: number
  max: number
  /** The tags (see `invalidationTag`) whose messages drop an entry. */
  tagsOf(value: V): readonly string[]
}

interface Entry<V> {
  value: V
  cachedAt: number
  tags: readonly string[]
}

export class BusAwareCache<V> {
  readonly #bus: InvalidationBus
  readonly #clock: Clock
  readonly #ttl: number
  readonly #max: number
  readonly #tagsOf: (value: V) => readonly string[]
  /** Least recently used first. */
  readonly #entries = new Map<string, Entry<V>>()
  readonly #byTag = new Map<string, Set<string>>()
  /** Loads in flight by key, shared by concurrent callers; forgotten at every invalidation. */
  readonly #inflight = new Map<string, Promise<unknown>>()
  readonly #unsubscribe: () => void
  readonly #unsubscribeReset: () => void
  /**
   * Bumped by every invalidation and reset. A load is kept only if this did not move while it
   * ran: the row it read may predate the change that was just announced.
   */
  #generation = 0
  #closed = false

  constructor(options: BusAwareCacheOptions<V>) {
    this.#bus = options.bus
    this.#clock = options.clock
    this.#ttl = positiveInteger('ttlMs', options.ttlMs)
    this.#max = positiveInteger('max', options.max)
    this.#tagsOf = options.tagsOf
    this.#unsubscribe = this.#bus.subscribe((message) => this.#invalidate(invalidationTag(message)))
    this.#unsubscribeReset = this.#bus.onReset?.(() => this.#reset()) ?? (() => {})
  }

  /** The cached value, when the cache may be trusted and the entry is younger than the ttl. */
  get(key: string): V | undefined {
    if (!this.#usable()) return undefined
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    const now = this.#clock.now()
    if (now - entry.cachedAt >= this.#ttl || now < entry.cachedAt) {
      this.delete(key)
      return undefined
    }
    // Re-inserted at the young end: eviction takes the least recently used.
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    return entry.value
  }

  /**
   * Runs `load` once for all concurrent callers of one key, and keeps what `toValue` makes of
   * its result (null: keep nothing) unless an invalidation or reset happened meanwhile.
   */
  load<R>(key: string, load: () => Promise<R>, toValue: (result: R) => V | null): Promise<R> {
    const pending = this.#inflight.get(key) as Promise<R> | undefined
    if (pending !== undefined) return pending
    const generation = this.#generation
    const cacheable = this.#usable()
    const started = load().then((result) => {
      const value = toValue(result)
      if (value !== null && cacheable && generation === this.#generation && this.#usable()) this.#set(key, value)
      return result
    }).finally(() => {
      if (this.#inflight.get(key) === started) this.#inflight.delete(key)
    })
    this.#inflight.set(key, started)
    return started
  }

  delete(key: string): void {
    const entry = this.#entries.get(key)
    if (entry === undefined) return
    this.#entries.delete(key)
    for (const tag of entry.tags) {
      const keys = this.#byTag.get(tag)
      keys?.delete(key)
      if (keys?.size === 0) this.#byTag.delete(tag)
    }
  }

  /** Unsubscribes and forgets everything; the cache is never read nor filled again. */
  close(): void {
    this.#closed = true
    this.#unsubscribe()
    this.#unsubscribeReset()
    this.#reset()
  }

  #usable(): boolean {
    return !this.#closed && this.#bus.connected
  }

  #set(key: string, value: V): void {
    this.delete(key)
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size < this.#max) break
      this.delete(oldest)
    }
    const tags = this.#tagsOf(value)
    this.#entries.set(key, { value, cachedAt: this.#clock.now(), tags })
    for (const tag of tags) {
      let keys = this.#byTag.get(tag)
      if (keys === undefined) this.#byTag.set(tag, (keys = new Set()))
      keys.add(key)
    }
  }

  #invalidate(tag: string): void {
    this.#generation++
    this.#inflight.clear()
    for (const key of [...(this.#byTag.get(tag) ?? [])]) this.delete(key)
  }

  #reset(): void {
    this.#generation++
    this.#inflight.clear()
    this.#entries.clear()
    this.#byTag.clear()
  }
}

export function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer, got ${value}`)
  return value
}
