/**
 * Personal access tokens (SPEC §3): creation (the token is returned once; only its SHA-256 and
 * mask are stored), listing and revocation, over three parts with one job each: the table
 * (PatRepository), the hot-path check of every PAT-carrying request (PatAuthenticator, on the
 * bus-aware cache) and the last-used times (LastUsedRecorder).
 */
import { GatehouseError } from '../errors.js'
import type { InvalidationBus } from '../kv/invalidation.js'
import type { Database } from '../storage/database.js'
import type { AuditLog } from './audit.js'
import { positiveInteger } from './bus-cache.js'
import type { Clock } from './clock.js'
import { sha256 } from './crypto.js'
import { PatAuthenticator, type AuthenticatedPat, type RoleMap } from './pat-authenticator.js'
import { generatePat, maskPat } from './pat-format.js'
import { DEFAULT_LAST_USED_FLUSH_MS, LastUsedRecorder } from './pat-last-used.js'
import { PatRepository, type PatRow } from './pat-repository.js'
import { hasPermission } from './permissions.js'
import type { AuditContext } from './users.js'

export type { AuthenticatedPat, RoleMap } from './pat-authenticator.js'
export { DEFAULT_LAST_USED_FLUSH_MS } from './pat-last-used.js'

/** How long a successful lookup is served from memory at most (invalidations end it sooner). */
export const DEFAULT_PAT_CACHE_TTL_MS = 60_000
/** Tokens held in memory at most (and as many refused ones); the least recently used go first. */
export const DEFAULT_PAT_CACHE_MAX = 10_000
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
  /**
   * Whether the creating session had a second factor: only then may the token reach routes with
   * `mfa: required` (SPEC §3). Absent: false (the CLI, the admin API).
   */
  secondFactor?: boolean
}

export interface PatServiceOptions {
  db: Database
  audit: AuditLog
  clock: Clock
  /** `roles` of gateway.yml: a reload builds a new service. */
  roles: RoleMap
  /** Tells every replica to drop a cached token when it is revoked. */
  invalidation: InvalidationBus
  cacheTtlMs?: number
  cacheMax?: number
  lastUsedFlushMs?: number
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
/** Controls, bidi embeddings/overrides/isolates and line separators, as for user names. */
const FORBIDDEN_CHARACTERS = /[\p{Cc}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]/u

export class PatService {
  /** When each token was last used; written in batches (see LastUsedRecorder). */
  readonly lastUsed: LastUsedRecorder
  readonly #repository: PatRepository
  readonly #authenticator: PatAuthenticator
  readonly #clock: Clock
  readonly #bus: InvalidationBus
  #closing: Promise<void> | undefined

  constructor(options: PatServiceOptions) {
    this.#repository = new PatRepository(options.db, options.audit)
    this.#clock = options.clock
    this.#bus = options.invalidation
    this.lastUsed = new LastUsedRecorder({
      write: (batch) => this.#repository.writeLastUsed(batch),
      flushMs: options.lastUsedFlushMs ?? DEFAULT_LAST_USED_FLUSH_MS,
    })
    this.#authenticator = new PatAuthenticator({
      lookup: (hash) => this.#repository.lookup(hash),
      lastUsed: this.lastUsed,
      bus: options.invalidation,
      clock: options.clock,
      roles: options.roles,
      cacheTtlMs: positiveInteger('cacheTtlMs', options.cacheTtlMs ?? DEFAULT_PAT_CACHE_TTL_MS),
      cacheMax: positiveInteger('cacheMax', options.cacheMax ?? DEFAULT_PAT_CACHE_MAX),
    })
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
    if (!UUID.test(owner.id)) throw new GatehouseError('GH_NOT_FOUND', 'No such user')
    const token = generatePat()
    const now = this.#clock.now()
    const expiresAt = expiresInDays === null ? null : new Date(now + expiresInDays * DAY_MS)
    const row = await this.#repository.create(
      { ownerId: owner.id, name, tokenHash: sha256(token), mask: maskPat(token), permissions, expiresAt, createdAt: new Date(now), secondFactor: owner.secondFactor === true },
      MAX_TOKENS_PER_USER,
      context,
    )
    return { token, pat: this.#info(row, now) }
  }

  /** The user's unrevoked tokens, expired ones included (marked), newest first. */
  async list(userId: string): Promise<PatInfo[]> {
    if (!UUID.test(userId)) return []
    const rows = await this.#repository.listUnrevoked(userId)
    const now = this.#clock.now()
    return rows.map((row) => this.#info(row, now))
  }

  /** The id of the token's owner, revoked or not; null when there is no such token. */
  async ownerOf(id: string): Promise<string | null> {
    if (!UUID.test(id)) return null
    return this.#repository.ownerOf(id)
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
    const revoked = await this.#repository.revoke(userId, id, new Date(this.#clock.now()), context)
    // The bus delivers to this replica's subscribers synchronously, then to the others.
    if (revoked) await this.#bus.publish({ kind: 'token', patId: id })
    return revoked
  }

  /** See PatAuthenticator.authenticate. */
  authenticate(token: string): Promise<AuthenticatedPat | null> {
    return this.#authenticator.authenticate(token)
  }

  /** Stops the cache and the timer, and writes the pending last-used times. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#authenticator.close()
      await this.lastUsed.close()
    })()
    return this.#closing
  }

  #info(row: PatRow, now: number): PatInfo {
    const expiresAt = row.expires_at?.getTime() ?? null
    const pending = this.lastUsed.pending(row.id)
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
