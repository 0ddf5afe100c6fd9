/**
 * The hot path of every PAT-carrying request: the identity a token stands for. A malformed
 * token or a failed checksum is refused without any lookup. Valid tokens are served from a
 * BusAwareCache (dropped on every replica when the token is revoked or its owner changes);
 * tokens that can never become valid again (unknown, revoked, expired) are remembered as
 * refused. A database failure rejects (the caller answers 503): it never reads as unknown.
 */
import { BusAwareCache } from './bus-cache.js'
import type { Clock } from './clock.js'
import { sha256 } from './crypto.js'
import type { LastUsedRecorder } from './pat-last-used.js'
import { isWellFormedPat } from './pat-format.js'
import type { PatLookupRow } from './pat-repository.js'
import { ALL_PERMISSIONS, hasPermission, permissionsFor } from './permissions.js'
import type { User } from './users.js'
import type { InvalidationBus } from '../kv/invalidation.js'

export type RoleMap = Readonly<Record<string, readonly string[]>>

/** Who a valid token acts for, and what it may do now. */
export interface AuthenticatedPat {
  patId: string
  userId: string
  user: User
  /**
   * The token's permissions (or the owner's, when it has none of its own) intersected with the
   * owner's current ones, sorted. Frozen: shared with the cache.
   */
  permissions: string[]
  /**
   * Whether the token's own permission list was given at its creation (not null): only such a
   * token may be used for automation of the admin API (SPEC §3).
   */
  explicitPermissions: boolean
  /** Epoch milliseconds; null when the token never expires. */
  expiresAt: number | null
  /** Whether the session that created it had a second factor (SPEC §3, `mfa: required`). */
  secondFactor: boolean
}

export interface PatAuthenticatorOptions {
  lookup(tokenHash: string): Promise<PatLookupRow | undefined>
  lastUsed: LastUsedRecorder
  bus: InvalidationBus
  clock: Clock
  roles: RoleMap
  cacheTtlMs: number
  cacheMax: number
}

/** What a lookup found: a usable token, one that will never be usable again, or one of a disabled owner. */
type Lookup = { state: 'valid'; pat: AuthenticatedPat } | { state: 'dead' } | { state: 'disabled' }

export class PatAuthenticator {
  readonly #options: PatAuthenticatorOptions
  readonly #valid: BusAwareCache<AuthenticatedPat>
  /** Hashes of tokens that can never be valid again, with when they were refused, oldest first. */
  readonly #refused = new Map<string, number>()

  constructor(options: PatAuthenticatorOptions) {
    this.#options = options
    this.#valid = new BusAwareCache<AuthenticatedPat>({
      bus: options.bus,
      clock: options.clock,
      ttlMs: options.cacheTtlMs,
      max: options.cacheMax,
      tagsOf: (pat) => [`user:${pat.userId}`, `token:${pat.patId}`],
    })
  }

  /**
   * The identity a token stands for, or null when it is malformed, unknown, revoked, expired,
   * or its owner is disabled or deleted. Expiry is checked against the clock on every call,
   * cached or not. Rejects when the database fails.
   */
  async authenticate(token: string): Promise<AuthenticatedPat | null> {
    if (!isWellFormedPat(token)) return null
    const hash = sha256(token)
    if (this.#isRefused(hash)) return null
    let pat = this.#valid.get(hash)
    if (pat === undefined) {
      const lookup = await this.#valid.load(hash, () => this.#lookup(hash), (found) => (found.state === 'valid' ? found.pat : null))
      if (lookup.state !== 'valid') return null
      pat = lookup.pat
    }
    const now = this.#options.clock.now()
    if (pat.expiresAt !== null && now >= pat.expiresAt) {
      this.#valid.delete(hash)
      this.#refuse(hash)
      return null
    }
    this.#options.lastUsed.touch(pat.patId, now)
    return pat
  }

  close(): void {
    this.#valid.close()
  }

  async #lookup(hash: string): Promise<Lookup> {
    const row = await this.#options.lookup(hash)
    const expiresAt = row?.expires_at?.getTime() ?? null
    // Unknown, revoked and expired are final: no token ever comes back from them.
    if (row === undefined || row.revoked || (expiresAt !== null && this.#options.clock.now() >= expiresAt)) {
      this.#refuse(hash)
      return { state: 'dead' }
    }
    // Not cached: the user may be enabled again.
    if (row.disabled) return { state: 'disabled' }
    const user: User = Object.freeze({
      id: row.user_id,
      email: row.email,
      name: row.name,
      roles: Object.freeze(row.roles) as string[],
      email_verified: row.email_verified,
      created_at: row.created_at,
    })
    const permissions = effectivePermissions(row.pat_permissions, user.roles, this.#options.roles)
    const explicitPermissions = row.pat_permissions !== null
    return { state: 'valid', pat: Object.freeze({ patId: row.pat_id, userId: user.id, user, permissions, explicitPermissions, expiresAt, secondFactor: row.second_factor === true }) }
  }

  #isRefused(hash: string): boolean {
    const refusedAt = this.#refused.get(hash)
    if (refusedAt === undefined) return false
    if (this.#options.clock.now() - refusedAt < this.#options.cacheTtlMs) return true
    this.#refused.delete(hash)
    return false
  }

  #refuse(hash: string): void {
    this.#refused.delete(hash)
    for (const oldest of this.#refused.keys()) {
      if (this.#refused.size < this.#options.cacheMax) break
      this.#refused.delete(oldest)
    }
    this.#refused.set(hash, this.#options.clock.now())
  }
}

/** The token's own permissions (all of the owner's for null or `*`) that the owner holds now, sorted. */
function effectivePermissions(patPermissions: readonly string[] | null, roles: readonly string[], roleMap: RoleMap): string[] {
  const owner = permissionsFor(roles, roleMap)
  if (patPermissions === null || patPermissions.includes(ALL_PERMISSIONS)) return Object.freeze(owner) as string[]
  return Object.freeze(patPermissions.filter((permission) => hasPermission(owner, permission)).sort()) as string[]
}
