/**
 * Who is active, cached for session-authenticated requests: without it every such request
 * reads its user from the database. Entries live for at most `ttlMs` and are dropped on
 * every replica the moment a user changes (disabled, deleted, roles or name changed: the
 * same `user` invalidation message the PAT cache obeys). The cache is neither read nor
 * filled while the bus may be missing messages, and a lookup that raced an invalidation is
 * not cached: a disabled user is never served from a stale entry.
 */
import type { InvalidationBus } from '../sessions/invalidation.js'
import type { Clock } from './clock.js'
import type { User } from './users.js'

export const DEFAULT_ACTIVE_USER_TTL_MS = 60_000
export const DEFAULT_ACTIVE_USER_MAX = 10_000

export interface ActiveUserCacheOptions {
  users: { isActive(id: string): Promise<User | null> }
  bus: InvalidationBus
  clock: Clock
  ttlMs?: number
  max?: number
}

export class ActiveUserCache {
  readonly #users: ActiveUserCacheOptions['users']
  readonly #bus: InvalidationBus
  readonly #clock: Clock
  readonly #ttl: number
  readonly #max: number
  readonly #entries = new Map<string, { user: User; cachedAt: number }>()
  readonly #unsubscribe: () => void
  readonly #unsubscribeReset: () => void
  #generation = 0

  constructor(options: ActiveUserCacheOptions) {
    this.#users = options.users
    this.#bus = options.bus
    this.#clock = options.clock
    this.#ttl = options.ttlMs ?? DEFAULT_ACTIVE_USER_TTL_MS
    this.#max = options.max ?? DEFAULT_ACTIVE_USER_MAX
    this.#unsubscribe = this.#bus.subscribe((message) => {
      this.#generation++
      if (message.kind === 'user') this.#entries.delete(message.userId)
    })
    this.#unsubscribeReset =
      this.#bus.onReset?.(() => {
        this.#generation++
        this.#entries.clear()
      }) ?? (() => {})
  }

  /** The user if they exist and are not disabled, else null (UserService.isActive, cached). */
  async get(id: string): Promise<User | null> {
    const now = this.#clock.now()
    if (this.#bus.connected) {
      const entry = this.#entries.get(id)
      if (entry !== undefined && now - entry.cachedAt < this.#ttl && now >= entry.cachedAt) return entry.user
    }
    const generation = this.#generation
    const user = await this.#users.isActive(id)
    if (user !== null && generation === this.#generation && this.#bus.connected) {
      this.#entries.delete(id)
      for (const oldest of this.#entries.keys()) {
        if (this.#entries.size < this.#max) break
        this.#entries.delete(oldest)
      }
      this.#entries.set(id, { user, cachedAt: now })
    } else if (user === null) {
      this.#entries.delete(id)
    }
    return user
  }

  /** Entries held now (for tests). */
  get size(): number {
    return this.#entries.size
  }

  close(): void {
    this.#unsubscribe()
    this.#unsubscribeReset()
    this.#entries.clear()
  }
}
