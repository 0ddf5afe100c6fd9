/**
 * Users' own secrets for routes with `user_secret` (SPEC §5): stored sealed with the data key
 * ring, bound to (user, route, upstream), listed by name and time only, and looked up for the
 * edge, which injects one only into its own route's upstream request and only for its owner's
 * session or PAT.
 *
 * The edge's lookups are cached per (user, route) in a BusAwareCache for `cacheTtlMs`: a set or
 * a removal publishes a `user` invalidation, which drops the entry on every replica within a
 * second; while the bus may be missing messages nothing is cached and every request reads the
 * table. Routes without `user_secret` never reach the store.
 *
 * After a data key rotation, values sealed with an older key still open (the ring keeps every
 * key); the first lookup that opens one re-seals it under the current key (lazily, on read),
 * unless it changed meanwhile.
 */
import type { RouteConfig } from '../../config/types.js'
import { GatehouseError } from '../../errors.js'
import type { InvalidationBus } from '../../kv/invalidation.js'
import { BusAwareCache } from '../bus-cache.js'
import type { Clock } from '../clock.js'
import { DataKeyError, type DataKeyRing } from '../data-keys.js'
import type { Identity } from '../identity.js'
import { decide } from '../policy.js'
import type { AuditContext } from '../users.js'
import { canonicalHeaderName } from './header-name.js'
import type { UserSecretStore } from './store.js'
import { upstreamFingerprint } from './upstream-fingerprint.js'
import { checkSecretValue } from './value.js'

/** The header an upstream request gets: lower-case name, the stored value. */
export interface InjectedSecret {
  header: string
  value: string
}

/** A secret as its owner may see it: never the value. */
export interface SecretListItem {
  route: string
  /** The header it is sent in; null when the route is gone or no longer takes one. */
  header: string | null
  /** dormant: not injected until set again (the route is gone or its upstream changed). */
  state: 'active' | 'dormant'
  created_at: string
  updated_at: string
}

/**
 * A stored secret that could not be used, for the log (never its value): `unreadable` does not
 * open (tampered with, or sealed with a key the ring lacks: it is not injected); `reseal_failed`
 * opened but could not be re-sealed under the current key (it still opens, and is injected).
 */
export interface SecretProblem {
  kind: 'unreadable' | 'reseal_failed'
  userId: string
  route: string
  keyId: string
  reason: string
}

export interface UserSecretsOptions {
  store: UserSecretStore
  keys: DataKeyRing
  /** The routes the edge proxies. */
  routes: readonly RouteConfig[]
  bus: InvalidationBus
  clock: Clock
  /** How long a looked-up secret (or its absence) is served from memory; default 60 s. */
  cacheTtlMs?: number
  /** Cached (user, route) pairs at most; default 10 000. */
  cacheMax?: number
}

interface Cached {
  secret: InjectedSecret | null
  userId: string
}

export class UserSecrets {
  readonly #store: UserSecretStore
  readonly #keys: DataKeyRing
  readonly #routes: ReadonlyMap<string, RouteConfig>
  readonly #bus: InvalidationBus
  readonly #cache: BusAwareCache<Cached>
  readonly #problemHandlers = new Set<(problem: SecretProblem) => void>()

  constructor(options: UserSecretsOptions) {
    this.#store = options.store
    this.#keys = options.keys
    this.#routes = new Map(options.routes.map((route) => [route.name, route]))
    this.#bus = options.bus
    this.#cache = new BusAwareCache<Cached>({
      bus: options.bus,
      clock: options.clock,
      ttlMs: options.cacheTtlMs ?? 60_000,
      max: options.cacheMax ?? 10_000,
      tagsOf: (cached) => [`user:${cached.userId}`],
    })
  }

  /** Calls `handler` with every problem of a stored secret (see SecretProblem); returns the unsubscribe function. */
  onProblem(handler: (problem: SecretProblem) => void): () => void {
    this.#problemHandlers.add(handler)
    return () => this.#problemHandlers.delete(handler)
  }

  /** The routes a user may keep a secret for, in config order. */
  routes(): RouteConfig[] {
    return [...this.#routes.values()].filter((route) => route.user_secret !== null)
  }

  /** The header names stripped from every client request (SPEC §5), lower-case, `-` for `_`. */
  headerNames(): ReadonlySet<string> {
    return new Set(this.routes().map((route) => canonicalHeaderName((route.user_secret as { header: string }).header)))
  }

  async list(userId: string): Promise<SecretListItem[]> {
    const stored = await this.#store.list(userId)
    return stored.map((info) => {
      const route = this.#routes.get(info.route)
      const active = route?.user_secret != null && upstreamFingerprint(route) === info.upstreamFingerprint
      return {
        route: info.route,
        header: route?.user_secret?.header ?? null,
        state: active ? 'active' : 'dormant',
        created_at: info.createdAt.toISOString(),
        updated_at: info.updatedAt.toISOString(),
      }
    })
  }

  /**
   * Stores (or replaces) `identity`'s secret for `routeName`. GH_NOT_FOUND for a route that does
   * not exist or takes no secret, GH_FORBIDDEN when the user may not use the route, GH_VALIDATION
   * for a value that cannot be stored (see value.ts); nothing is stored then.
   */
  async set(identity: Identity, routeName: string, value: unknown, context: AuditContext = {}): Promise<'created' | 'replaced'> {
    const route = this.#secretRoute(routeName)
    const decision = decide(route, identity)
    if (!decision.allow) {
      throw new GatehouseError('GH_FORBIDDEN', `Route ${route.name} needs ${decision.missing_permissions.join(', ')}: a secret for it would never be used`, {
        details: { reason: 'missing_permission', missing_permissions: decision.missing_permissions },
      })
    }
    const checked = checkSecretValue(value)
    const userId = identity.user.id
    const fingerprint = upstreamFingerprint(route)
    const ciphertext = this.#keys.encrypt(checked, sealContext(userId, route.name, fingerprint))
    const outcome = await this.#store.put(userId, route.name, { upstreamFingerprint: fingerprint, ciphertext, keyId: this.#keys.currentKid }, context)
    await this.#bus.publish({ kind: 'user', userId })
    return outcome
  }

  /** Removes the user's secret for `routeName` (the route need not exist any more); false when there was none. */
  async remove(userId: string, routeName: string, context: AuditContext = {}): Promise<boolean> {
    const removed = await this.#store.delete(userId, routeName, context)
    if (removed) await this.#bus.publish({ kind: 'user', userId })
    return removed
  }

  /**
   * The header to add to `route`'s upstream request for `identity`, or null: the route takes no
   * secret, the identity is not a local user's session or PAT, none is stored, or it is dormant.
   */
  forRequest(identity: Identity | null, route: RouteConfig): Promise<InjectedSecret | null> | null {
    if (route.user_secret === null || identity === null) return null
    // A jwt_bearer identity is not a local user (SPEC §3): it owns no secrets.
    if (identity.method !== 'session' && identity.method !== 'pat') return null
    const userId = identity.user.id
    const key = `${userId}\n${route.name}`
    const cached = this.#cache.get(key)
    if (cached !== undefined) return Promise.resolve(cached.secret)
    return this.#cache
      .load(key, () => this.#open(userId, route), (secret) => ({ secret, userId }))
  }

  /** Stops caching; the service must not be used afterwards. */
  close(): void {
    this.#cache.close()
  }

  async #open(userId: string, route: RouteConfig): Promise<InjectedSecret | null> {
    const stored = await this.#store.get(userId, route.name)
    const fingerprint = upstreamFingerprint(route)
    if (stored === null || stored.upstreamFingerprint !== fingerprint || route.user_secret === null) return null
    const context = sealContext(userId, route.name, fingerprint)
    let value: string
    try {
      value = this.#keys.decrypt(stored.ciphertext, context)
    } catch (err) {
      if (!(err instanceof DataKeyError)) throw err
      this.#report({ kind: 'unreadable', userId, route: route.name, keyId: stored.keyId, reason: err.message })
      return null
    }
    if (stored.keyId !== this.#keys.currentKid) {
      const resealed = this.#keys.encrypt(value, context)
      await this.#store.reseal(userId, route.name, stored.ciphertext, { ciphertext: resealed, keyId: this.#keys.currentKid }).catch((err: unknown) => {
        this.#report({ kind: 'reseal_failed', userId, route: route.name, keyId: stored.keyId, reason: err instanceof Error ? err.message : String(err) })
      })
    }
    return { header: canonicalHeaderName(route.user_secret.header), value }
  }

  #report(problem: SecretProblem): void {
    for (const handler of this.#problemHandlers) handler(problem)
  }

  #secretRoute(name: string): RouteConfig {
    const route = this.#routes.get(name)
    if (route === undefined) throw new GatehouseError('GH_NOT_FOUND', `No route is named ${JSON.stringify(name.slice(0, 100))}`, { details: { reason: 'unknown_route' } })
    if (route.user_secret === null) {
      throw new GatehouseError('GH_NOT_FOUND', `Route ${route.name} takes no user secret (it has no user_secret)`, { details: { reason: 'no_user_secret' } })
    }
    return route
  }
}

/**
 * What a sealed secret is bound to (the ring's additional data): its owner, its route and the
 * upstream it was stored for. A row copied to another user or route does not open there, nor
 * does one whose upstream column was edited.
 */
function sealContext(userId: string, route: string, fingerprint: string): string {
  return `user-secret:${JSON.stringify([userId, route, fingerprint])}`
}
