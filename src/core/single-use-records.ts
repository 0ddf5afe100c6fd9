/**
 * Records that are good once and for a short time, kept in the key-value store under a key the
 * caller derives (a hash: reading the store gives no secrets): OIDC sign-ins in flight, logins
 * waiting for their second factor, WebAuthn challenges. Expiry is decided on the gateway's
 * clock from the record's `created_at`; the store's TTL only collects garbage. `take` is the
 * claim: of two requests racing for one record, only the one whose delete removed it gets it.
 */
import type { KeyValueStore } from '../kv/store.js'
import type { Clock } from './clock.js'

export interface SingleUseRecordsOptions {
  store: KeyValueStore
  clock: Clock
  ttlMs: number
  /** The key's prefix in the store: `<prefix>:<id>`. */
  prefix: string
  /** Whether what was read (without `created_at`) has the record's shape. */
  isRecord(value: Record<string, unknown>): boolean
}

export class SingleUseRecords<T extends object> {
  readonly #options: SingleUseRecordsOptions

  constructor(options: SingleUseRecordsOptions) {
    this.#options = options
  }

  get ttlMs(): number {
    return this.#options.ttlMs
  }

  async put(id: string, record: T): Promise<void> {
    const { store, clock, ttlMs } = this.#options
    await store.set(this.#key(id), JSON.stringify({ ...record, created_at: clock.now() }), ttlMs)
  }

  /** The record, left in place; null when unknown, malformed or expired (an expired one is deleted). */
  async peek(id: string): Promise<T | null> {
    const raw = await this.#options.store.get(this.#key(id))
    if (raw === null) return null
    const parsed = this.#parse(raw)
    if (parsed === 'expired') await this.#options.store.delete(this.#key(id))
    return parsed === 'expired' ? null : parsed
  }

  /** The record, deleted so that it cannot be used again; null when unknown, already taken, malformed or expired. */
  async take(id: string): Promise<T | null> {
    const raw = await this.#options.store.get(this.#key(id))
    if (raw === null) return null
    if (!(await this.#options.store.delete(this.#key(id)))) return null
    const parsed = this.#parse(raw)
    return parsed === 'expired' ? null : parsed
  }

  /** Resolves true for the one caller whose delete removed the record. */
  delete(id: string): Promise<boolean> {
    return this.#options.store.delete(this.#key(id))
  }

  #key(id: string): string {
    return `${this.#options.prefix}:${id}`
  }

  #parse(raw: string): T | 'expired' | null {
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      return null
    }
    if (typeof parsed !== 'object' || parsed === null) return null
    const { created_at: createdAt, ...record } = parsed as Record<string, unknown>
    if (typeof createdAt !== 'number' || !this.#options.isRecord(record)) return null
    if (this.#options.clock.now() - createdAt >= this.#options.ttlMs) return 'expired'
    return record as T
  }
}
