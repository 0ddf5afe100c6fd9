/**
 * Who is active, cached for session-authenticated requests: without it every such request
 * reads its user from the database. Entries live for at most `ttlMs` and are dropped on
 * every replica the moment a user changes (disabled, deleted, roles or name changed: the
 * same `user` invalidation message the PAT cache obeys). The cache is neither read nor
 * filled while the bus may be missing messages, and a lookup that raced an invalidation is
 * not cached: a disabled user is never served from a stale entry.
 */
import type { InvalidationBus } from '../kv/invalidation.js'
import { BusAwareCache } from './bus-cache.js'
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
  readonly #cache: BusAwareCache<User>

  constructor(options: ActiveUserCacheOptions) {
    this.#users = options.users
    this.#cache = new BusAwareCache<User>({
      bus: options.bus,
      clock: options.clock,
      ttlMs: options.ttlMs ?? DEFAULT_ACTIVE_USER_TTL_MS,
      max: options.max ?? DEFAULT_ACTIVE_USER_MAX,
      tagsOf: (user) => [`user:${user.id}`],
    })
  }

  /** The user if they exist and are not disabled, else null (UserService.isActive, cached). */
  async get(id: string): Promise<User | null> {
    const cached = this.#cache.get(id)
    if (cached !== undefined) return cached
    const user = await this.#cache.load(id, () => this.#users.isActive(id), (found) => found)
    if (user === null) this.#cache.delete(id)
    return user
  }

  close(): void {
    this.#cache.close()
  }
}
