import { GatehouseError } from '../errors.js'
import type { InvalidationBus, InvalidationMessage } from '../sessions/invalidation.js'
import type { Database } from '../storage/database.js'
import type { AuditLog } from './audit.js'
import type { Clock } from './clock.js'
import { sha256 } from './crypto.js'
import { generatePat, isWellFormedPat, maskPat } from './pat-format.js'
import { ALL_PERMISSIONS, hasPermission, permissionsFor } from './permissions.js'
import type { AuditContext, User } from './users.js'

/** How long a successful lookup is served from memory at most (invalidations end it sooner). */
export const DEFAULT_PAT_CACHE_TTL_MS = 60_000
/** Tokens held in memory at most (and as many refused ones); the least recently used go first. */
export const DEFAULT_PAT_CACHE_MAX = 10_000
/** How often last-used times are written, all in one statement. */
export const DEFAULT_LAST_USED_FLUSH_MS = 30_000
/**
 * Unrevoked tokens (expired ones included) a user may hold. Keeps `list` short and bounds
 * what one account can store; expired tokens stay listed until revoked, so the owner sees them.
 */
export const MAX_TOKENS_PER_USER = 100
export const MAX_TOKEN_NAME_LENGTH = 100
export const MAX_EXPIRES_IN_DAYS = 3650
export const MAX_TOKEN_PERMISSIONS = 100
export const MAX_PERMISSION_LENGTH = 200

const DAY_MS = 86_400_000

export type RoleMap = Readonly<Record<string, readonly string[]>>

/** A token as its owner sees it after creation: masked, never its hash. */
export interface PatInfo {
  id: string
  name: string
  /** The mask, `pat_abcd…wxyz`. */
  token: string
  /** null: all of the owner's permissions, whatever they are at the time of use. */
  permissions: string[] | null
  /** ISO 8601, UTC, millisecond precision; null when it never expires. */
  expires_at: string | null
  last_used_at: string | null
  created_at: string
  /** Expired tokens are listed (until revoked) so that their owner can see why one stopped working. */
  expired: boolean
}

export interface CreatedPat {
  /** The token itself: shown once, stored nowhere. */
  token: string
  pat: PatInfo
}

export interface PatCreateInput {
  /** 1–100 code points, trimmed, no control characters. */
  name: string
  /** An integer from 1 to 3650; absent or null: no expiry. */
  expires_in_days?: number | null
  /** A non-empty subset of the owner's permissions; absent or null: all of the owner's. */
  permissions?: readonly string[] | null
}

export interface PatOwner {
  id: string
  /** The owner's current effective permissions; the token's may only be a subset. */
  permissions: readonly string[]
}

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
}

export interface PatServiceOptions {
  db: Database
  audit: AuditLog
  clock: Clock
  /** `roles` of gateway.yml; replace it with `setRoleMap` after a reload. */
  roles: RoleMap
  /** Tells every replica to drop a cached token: see `revoke`, `invalidateUser`. */
  invalidation: InvalidationBus
  cacheTtlMs?: number
  cacheMax?: number
  lastUsedFlushMs?: number
  /** Called when a timed flush of last-used times fails (they are kept and retried). */
  onFlushError?: (error: unknown) => void
}

interface PatRow {
  id: string
  name: string
  mask: string
  permissions: string[] | null
  expires_at: Date | null
  last_used_at: Date | null
  created_at: Date
}

interface LookupRow {
  pat_id: string
  pat_permissions: string[] | null
  expires_at: Date | null
  revoked: boolean
  user_id: string
  email: string
  name: string | null
  roles: string[]
  disabled: boolean
  email_verified: boolean
  created_at: string
}

interface CachedPat {
  hash: string
  patId: string
  user: User
  patPermissions: readonly string[] | null
  expiresAt: number | null
  cachedAt: number
  /** `permissions` as computed under `roleMap`; recomputed when the role map is replaced. */
  permissions: string[]
  roleMap: RoleMap
}

/** What a lookup found: a usable token, one that will never be usable again, or one of a disabled owner. */
type Lookup = { state: 'valid'; entry: CachedPat } | { state: 'dead' } | { state: 'disabled' }

const PAT_COLUMNS = 'id::text AS id, name, mask, permissions, expires_at, last_used_at, created_at'

const LOOKUP = `
  SELECT p.id::text AS pat_id, p.permissions AS pat_permissions, p.expires_at,
         p.revoked_at IS NOT NULL AS revoked,
         u.id::text AS user_id, u.email, u.name, u.roles, u.disabled, u.email_verified,
         to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at
    FROM personal_access_tokens p JOIN users u ON u.id = p.user_id
   WHERE p.token_hash = $1`

// Never moves a time backwards: replicas flush independently and in any order.
const FLUSH_LAST_USED = `
  UPDATE personal_access_tokens AS p SET last_used_at = v.used_at
    FROM unnest($1::uuid[], $2::timestamptz[]) AS v (id, used_at)
   WHERE p.id = v.id AND (p.last_used_at IS NULL OR p.last_used_at < v.used_at)`

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** Controls, bidi embeddings/overrides/isolates and line separators, as for user names. */
const FORBIDDEN_CHARACTERS = /[\p{Cc}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]/u

/**
 * Personal access tokens over the `personal_access_tokens` table: creation (the token is
 * returned once; only its SHA-256 and mask are stored), listing, revocation, and the
 * authentication of every PAT-carrying request.
 *
 * `authenticate` is the hot path. A malformed token or a failed checksum is refused without
 * any lookup. Valid tokens are cached in memory, keyed by hash, for at most `cacheTtlMs`;
 * tokens that can never become valid again (unknown, revoked, expired) are cached as refused.
 * A cached token stays valid only while the invalidation bus says it misses nothing: revoking
 * a token, and a `user` message (UserService announces every change to a user; see
 * `invalidateUser`), drop the entries on every replica, and the bus's resets drop them all.
 * Last-used times are kept in memory and written every `lastUsedFlushMs` in one statement.
 *
 * A database failure rejects (the caller answers 503): it never reads as an unknown token.
 */
export class PatService {
  readonly #db: Database
  readonly #audit: AuditLog
  readonly #clock: Clock
  readonly #bus: InvalidationBus
  readonly #ttl: number
  readonly #max: number
  readonly #onFlushError: (error: unknown) => void
  #roleMap: RoleMap

  /** Valid tokens by hash, least recently used first. */
  readonly #entries = new Map<string, CachedPat>()
  readonly #byUser = new Map<string, Set<string>>()
  readonly #byPat = new Map<string, string>()
  /** Hashes of tokens that can never be valid again, with when they were cached, oldest first. */
  readonly #refused = new Map<string, number>()
  /** Lookups in flight by hash, shared by concurrent requests with the same token. */
  readonly #inflight = new Map<string, Promise<Lookup>>()
  /**
   * Bumped by every invalidation and reset. A lookup caches its result only if this did not
   * move while it ran: the row it read may predate the change that was just announced.
   */
  #generation = 0

  #lastUsed = new Map<string, number>()
  #flushing: Promise<void> | undefined
  readonly #timer: NodeJS.Timeout
  readonly #unsubscribe: () => void
  readonly #unsubscribeReset: () => void
  #closing: Promise<void> | undefined

  constructor(options: PatServiceOptions) {
    this.#ttl = positiveInteger('cacheTtlMs', options.cacheTtlMs ?? DEFAULT_PAT_CACHE_TTL_MS)
    this.#max = positiveInteger('cacheMax', options.cacheMax ?? DEFAULT_PAT_CACHE_MAX)
    const flushMs = positiveInteger('lastUsedFlushMs', options.lastUsedFlushMs ?? DEFAULT_LAST_USED_FLUSH_MS)
    this.#db = options.db
    this.#audit = options.audit
    this.#clock = options.clock
    this.#roleMap = options.roles
    this.#bus = options.invalidation
    this.#onFlushError = options.onFlushError ?? (() => {})
    this.#unsubscribe = this.#bus.subscribe((message) => this.#apply(message))
    this.#unsubscribeReset = this.#bus.onReset?.(() => this.#reset()) ?? (() => {})
    this.#timer = setInterval(() => {
      this.flush().catch(this.#onFlushError)
    }, flushMs)
    this.#timer.unref()
  }

  /**
   * Creates a token for `owner` and returns it, once. GH_VALIDATION (`details.field`: name,
   * expires_in_days, permissions with `missing` for those the owner lacks, or tokens when the
   * owner holds MAX_TOKENS_PER_USER already); GH_NOT_FOUND when the owner is gone or disabled.
   */
  async create(owner: PatOwner, input: PatCreateInput, context: AuditContext = {}): Promise<CreatedPat> {
    const name = validateName(input.name)
    const expiresInDays = validateExpiry(input.expires_in_days)
    const permissions = validatePermissions(input.permissions, owner.permissions)
    if (!UUID.test(owner.id)) throw noSuchUser()
    const token = generatePat()
    const now = this.#clock.now()
    const expiresAt = expiresInDays === null ? null : new Date(now + expiresInDays * DAY_MS)

    return this.#db.transaction(async (tx) => {
      // Locking the owner serialises their concurrent creations, so the cap holds.
      const ownerRow = await tx.query<{ email: string; disabled: boolean }>(
        'SELECT email, disabled FROM users WHERE id = $1 FOR UPDATE',
        [owner.id],
      )
      const found = ownerRow.rows[0]
      if (found === undefined || found.disabled) throw noSuchUser()
      const held = await tx.query<{ count: number }>(
        'SELECT count(*)::int AS count FROM personal_access_tokens WHERE user_id = $1 AND revoked_at IS NULL',
        [owner.id],
      )
      if ((held.rows[0]?.count ?? 0) >= MAX_TOKENS_PER_USER) {
        throw new GatehouseError(
          'GH_VALIDATION',
          `A user may hold at most ${MAX_TOKENS_PER_USER} tokens: revoke unused or expired ones first`,
          { details: { field: 'tokens', limit: MAX_TOKENS_PER_USER } },
        )
      }
      const inserted = await tx.query<PatRow>(
        `INSERT INTO personal_access_tokens (user_id, name, token_hash, mask, permissions, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${PAT_COLUMNS}`,
        [owner.id, name, sha256(token), maskPat(token), permissions, expiresAt, new Date(now)],
      )
      const row = inserted.rows[0]
      if (row === undefined) throw new Error('INSERT … RETURNING returned no row')
      await this.#audit.record(
        'token.created',
        {
          userId: owner.id,
          email: found.email,
          ip: context.ip,
          details: withActor(
            { token_id: row.id, name, mask: row.mask, permissions, expires_at: expiresAt?.toISOString() ?? null },
            context,
          ),
        },
        tx,
      )
      return { token, pat: this.#info(row, now) }
    })
  }

  /** The user's unrevoked tokens, expired ones included (marked), newest first. */
  async list(userId: string): Promise<PatInfo[]> {
    if (!UUID.test(userId)) return []
    const result = await this.#db.query<PatRow>(
      `SELECT ${PAT_COLUMNS} FROM personal_access_tokens
        WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC`,
      [userId],
    )
    const now = this.#clock.now()
    return result.rows.map((row) => this.#info(row, now))
  }

  /** The id of the token's owner, revoked or not; null when there is no such token. */
  async ownerOf(id: string): Promise<string | null> {
    if (!UUID.test(id)) return null
    const result = await this.#db.query<{ user_id: string }>(
      'SELECT user_id::text AS user_id FROM personal_access_tokens WHERE id = $1',
      [id],
    )
    return result.rows[0]?.user_id ?? null
  }

  /**
   * Revokes one of the user's own tokens; false when there is no such unrevoked token of
   * theirs. The revocation is committed, and this replica's cache cleared, before the other
   * replicas are told; a rejection after that (the bus could not publish) means they may serve
   * the token from their caches for up to `cacheTtlMs`, unless their own connection to the bus
   * dropped too (then they do not cache at all).
   */
  async revoke(userId: string, id: string, context: AuditContext = {}): Promise<boolean> {
    if (!UUID.test(userId) || !UUID.test(id)) return false
    const revoked = await this.#db.transaction(async (tx) => {
      const result = await tx.query<{ name: string; mask: string; email: string }>(
        `UPDATE personal_access_tokens AS p SET revoked_at = $3 FROM users AS u
          WHERE p.id = $1 AND p.user_id = $2 AND p.revoked_at IS NULL AND u.id = p.user_id
          RETURNING p.name, p.mask, u.email`,
        [id, userId, new Date(this.#clock.now())],
      )
      const row = result.rows[0]
      if (row === undefined) return false
      await this.#audit.record(
        'token.revoked',
        {
          userId,
          email: row.email,
          ip: context.ip,
          details: withActor({ token_id: id, name: row.name, mask: row.mask }, context),
        },
        tx,
      )
      return true
    })
    if (revoked) await this.invalidateToken(id)
    return revoked
  }

  /**
   * The identity a token stands for, or null when it is malformed, unknown, revoked, expired,
   * or its owner is disabled or deleted. Expiry is checked against the clock on every call,
   * cached or not. Rejects when the database fails.
   */
  async authenticate(token: string): Promise<AuthenticatedPat | null> {
    if (!isWellFormedPat(token)) return null
    const hash = sha256(token)
    let now = this.#clock.now()
    if (this.#isRefused(hash, now)) return null
    let entry = this.#cached(hash, now)
    if (entry === undefined) {
      const lookup = await this.#lookup(hash)
      if (lookup.state !== 'valid') return null
      entry = lookup.entry
      now = this.#clock.now()
    }
    if (entry.expiresAt !== null && now >= entry.expiresAt) {
      this.#drop(hash)
      this.#refuse(hash, now)
      return null
    }
    this.#lastUsed.set(entry.patId, now)
    if (entry.roleMap !== this.#roleMap) {
      entry.permissions = effectivePermissions(entry.patPermissions, entry.user.roles, this.#roleMap)
      entry.roleMap = this.#roleMap
    }
    return {
      patId: entry.patId,
      userId: entry.user.id,
      user: entry.user,
      permissions: entry.permissions,
      explicitPermissions: entry.patPermissions !== null,
      expiresAt: entry.expiresAt,
    }
  }

  /**
   * Drops the user's tokens from every replica's cache. UserService announces its own changes
   * (the runtime wires its `onUserChanged` to the bus); this is for users changed otherwise.
   */
  async invalidateUser(userId: string): Promise<void> {
    await this.#announce({ kind: 'user', userId })
  }

  /** Drops one token from every replica's cache (revoke does this itself). */
  async invalidateToken(patId: string): Promise<void> {
    await this.#announce({ kind: 'token', patId })
  }

  /** Entries held in memory now, valid and refused; never above `cacheMax` each. */
  get cacheSize(): { valid: number; refused: number } {
    return { valid: this.#entries.size, refused: this.#refused.size }
  }

  /** Replaces the role map (after a config reload); effective permissions follow at once. */
  setRoleMap(roles: RoleMap): void {
    this.#roleMap = roles
  }

  /** Writes the pending last-used times in one statement; on failure they are kept for the next flush. */
  async flush(): Promise<void> {
    // One flush at a time: a timed flush must not overlap a slow one.
    while (this.#flushing) await this.#flushing.catch(() => {})
    if (this.#lastUsed.size === 0) return
    const batch = this.#lastUsed
    this.#lastUsed = new Map()
    const run = this.#write(batch)
    this.#flushing = run
    try {
      await run
    } finally {
      this.#flushing = undefined
    }
  }

  /** Stops the timer and the subscriptions, drops the cache, and flushes what is pending. */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    clearInterval(this.#timer)
    this.#unsubscribe()
    this.#unsubscribeReset()
    this.#reset()
    await this.flush()
  }

  async #write(batch: Map<string, number>): Promise<void> {
    try {
      await this.#db.query(FLUSH_LAST_USED, [
        [...batch.keys()],
        [...batch.values()].map((time) => new Date(time).toISOString()),
      ])
    } catch (error) {
      for (const [id, time] of batch) {
        const newer = this.#lastUsed.get(id)
        if (newer === undefined || newer < time) this.#lastUsed.set(id, time)
      }
      throw error
    }
  }

  /** Whether cached entries may be trusted: only while the bus misses no message. */
  #cacheUsable(): boolean {
    return this.#closing === undefined && this.#bus.connected
  }

  #cached(hash: string, now: number): CachedPat | undefined {
    if (!this.#cacheUsable()) return undefined
    const entry = this.#entries.get(hash)
    if (entry === undefined) return undefined
    if (now - entry.cachedAt >= this.#ttl) {
      this.#drop(hash)
      return undefined
    }
    // Re-inserted at the young end: eviction takes the least recently used.
    this.#entries.delete(hash)
    this.#entries.set(hash, entry)
    return entry
  }

  #lookup(hash: string): Promise<Lookup> {
    let pending = this.#inflight.get(hash)
    if (pending === undefined) {
      const started = this.#query(hash).finally(() => {
        if (this.#inflight.get(hash) === started) this.#inflight.delete(hash)
      })
      pending = started
      this.#inflight.set(hash, pending)
    }
    return pending
  }

  async #query(hash: string): Promise<Lookup> {
    const generation = this.#generation
    const cacheable = this.#cacheUsable()
    const result = await this.#db.query<LookupRow>(LOOKUP, [hash])
    const row = result.rows[0]
    const now = this.#clock.now()
    const expiresAt = row?.expires_at?.getTime() ?? null
    // Unknown, revoked and expired are final: no token ever comes back from them.
    if (row === undefined || row.revoked || (expiresAt !== null && now >= expiresAt)) {
      this.#refuse(hash, now)
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
    const patPermissions = row.pat_permissions === null ? null : Object.freeze(row.pat_permissions)
    const entry: CachedPat = {
      hash,
      patId: row.pat_id,
      user,
      patPermissions,
      expiresAt,
      cachedAt: now,
      permissions: effectivePermissions(patPermissions, user.roles, this.#roleMap),
      roleMap: this.#roleMap,
    }
    if (cacheable && generation === this.#generation && this.#cacheUsable()) this.#remember(entry)
    return { state: 'valid', entry }
  }

  #remember(entry: CachedPat): void {
    this.#drop(entry.hash)
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size < this.#max) break
      this.#drop(oldest)
    }
    this.#entries.set(entry.hash, entry)
    this.#byPat.set(entry.patId, entry.hash)
    let hashes = this.#byUser.get(entry.user.id)
    if (hashes === undefined) {
      hashes = new Set()
      this.#byUser.set(entry.user.id, hashes)
    }
    hashes.add(entry.hash)
  }

  #drop(hash: string): void {
    const entry = this.#entries.get(hash)
    if (entry === undefined) return
    this.#entries.delete(hash)
    if (this.#byPat.get(entry.patId) === hash) this.#byPat.delete(entry.patId)
    const hashes = this.#byUser.get(entry.user.id)
    hashes?.delete(hash)
    if (hashes?.size === 0) this.#byUser.delete(entry.user.id)
  }

  #isRefused(hash: string, now: number): boolean {
    const cachedAt = this.#refused.get(hash)
    if (cachedAt === undefined) return false
    if (now - cachedAt < this.#ttl) return true
    this.#refused.delete(hash)
    return false
  }

  #refuse(hash: string, now: number): void {
    this.#refused.delete(hash)
    for (const oldest of this.#refused.keys()) {
      if (this.#refused.size < this.#max) break
      this.#refused.delete(oldest)
    }
    this.#refused.set(hash, now)
  }

  /** Applies the message here at once, then tells the other replicas. */
  async #announce(message: InvalidationMessage): Promise<void> {
    this.#apply(message)
    await this.#bus.publish(message)
  }

  #apply(message: InvalidationMessage): void {
    this.#generation++
    this.#inflight.clear()
    if (message.kind === 'token') {
      const hash = this.#byPat.get(message.patId)
      if (hash !== undefined) this.#drop(hash)
    } else {
      for (const hash of [...(this.#byUser.get(message.userId) ?? [])]) this.#drop(hash)
    }
  }

  /** Drops every valid entry; refused ones stay (they can never become valid). */
  #reset(): void {
    this.#generation++
    this.#inflight.clear()
    this.#entries.clear()
    this.#byUser.clear()
    this.#byPat.clear()
  }

  #info(row: PatRow, now: number): PatInfo {
    const expiresAt = row.expires_at?.getTime() ?? null
    const pending = this.#lastUsed.get(row.id)
    const stored = row.last_used_at?.getTime()
    const lastUsed = pending !== undefined && (stored === undefined || pending > stored) ? pending : stored
    return {
      id: row.id,
      name: row.name,
      token: row.mask,
      permissions: row.permissions,
      expires_at: expiresAt === null ? null : new Date(expiresAt).toISOString(),
      last_used_at: lastUsed === undefined ? null : new Date(lastUsed).toISOString(),
      created_at: row.created_at.toISOString(),
      expired: expiresAt !== null && now >= expiresAt,
    }
  }
}

/** The token's own permissions (all of the owner's for null or `*`) that the owner holds now, sorted. */
function effectivePermissions(patPermissions: readonly string[] | null, roles: readonly string[], roleMap: RoleMap): string[] {
  const owner = permissionsFor(roles, roleMap)
  if (patPermissions === null || patPermissions.includes(ALL_PERMISSIONS)) return Object.freeze(owner) as string[]
  return Object.freeze(patPermissions.filter((permission) => hasPermission(owner, permission)).sort()) as string[]
}

function validateName(name: unknown): string {
  const invalid = (message: string): GatehouseError =>
    new GatehouseError('GH_VALIDATION', message, { details: { field: 'name' } })
  if (typeof name !== 'string') throw invalid('The token name must be a string')
  if (name.length > MAX_TOKEN_NAME_LENGTH * 4) throw invalid(`The token name must be at most ${MAX_TOKEN_NAME_LENGTH} characters long`)
  const trimmed = name.trim().normalize('NFC')
  const length = [...trimmed].length
  if (length === 0) throw invalid('The token name must not be empty')
  if (length > MAX_TOKEN_NAME_LENGTH) throw invalid(`The token name must be at most ${MAX_TOKEN_NAME_LENGTH} characters long`)
  if (FORBIDDEN_CHARACTERS.test(trimmed)) throw invalid('The token name contains control characters')
  return trimmed
}

function validateExpiry(days: unknown): number | null {
  if (days === undefined || days === null) return null
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > MAX_EXPIRES_IN_DAYS) {
    throw new GatehouseError('GH_VALIDATION', `expires_in_days must be an integer from 1 to ${MAX_EXPIRES_IN_DAYS}`, {
      details: { field: 'expires_in_days' },
    })
  }
  return days
}

/** null for "all of the owner's"; else the unique, sorted list, each held by the owner. */
function validatePermissions(permissions: unknown, held: readonly string[]): string[] | null {
  if (permissions === undefined || permissions === null) return null
  const invalid = (message: string, details: Record<string, unknown> = {}): GatehouseError =>
    new GatehouseError('GH_VALIDATION', message, { details: { field: 'permissions', ...details } })
  if (!Array.isArray(permissions)) throw invalid('permissions must be a list of permission names')
  if (permissions.length === 0) throw invalid('permissions must not be empty: leave it out for all of yours')
  if (permissions.length > MAX_TOKEN_PERMISSIONS) throw invalid(`permissions may list at most ${MAX_TOKEN_PERMISSIONS} names`)
  for (const permission of permissions as unknown[]) {
    if (
      typeof permission !== 'string' ||
      permission.length === 0 ||
      permission.length > MAX_PERMISSION_LENGTH ||
      permission.trim() !== permission ||
      FORBIDDEN_CHARACTERS.test(permission)
    ) {
      throw invalid(`permissions must be names of 1 to ${MAX_PERMISSION_LENGTH} characters, without spaces around them`)
    }
  }
  const unique = [...new Set(permissions as string[])].sort()
  const missing = unique.filter((permission) => !hasPermission(held, permission))
  if (missing.length > 0) {
    throw invalid(`A token cannot have permissions its owner lacks: ${missing.join(', ')}`, { missing })
  }
  return unique
}

function noSuchUser(): GatehouseError {
  return new GatehouseError('GH_NOT_FOUND', 'No such user')
}

function withActor(details: Record<string, unknown>, context: AuditContext): Record<string, unknown> {
  return context.actorId ? { ...details, actor_id: context.actorId } : details
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer, got ${value}`)
  return value
}
