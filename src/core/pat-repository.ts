/**
 * The `personal_access_tokens` table: every SQL statement about PATs, and the audit events
 * written in the same transactions. No caching and no validation: PatService does those.
 */
import type { Database } from '../storage/database.js'
import type { AuditLog } from './audit.js'
import type { AuditContext } from './users.js'
import { GatehouseError } from '../errors.js'

/** A token row as its owner may see it (no hash). */
export interface PatRow {
  id: string
  name: string
  mask: string
  permissions: string[] | null
  expires_at: Date | null
  last_used_at: Date | null
  created_at: Date
}

/** A token and its owner, as authentication needs them. */
export interface PatLookupRow {
  pat_id: string
  pat_permissions: string[] | null
  /** Whether the session that created the token had a second factor (SPEC §3, `mfa: required`). */
  second_factor: boolean
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

export interface NewPat {
  ownerId: string
  name: string
  tokenHash: string
  mask: string
  permissions: string[] | null
  expiresAt: Date | null
  createdAt: Date
  secondFactor: boolean
}

const PAT_COLUMNS = 'id::text AS id, name, mask, permissions, expires_at, last_used_at, created_at'

const LOOKUP = `
  SELECT p.id::text AS pat_id, p.permissions AS pat_permissions, p.second_factor, p.expires_at,
         p.revoked_at IS NOT NULL AS revoked,
         u.id::text AS user_id, u.email, u.name, u.roles, u.disabled, u.email_verified,
         to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at
    FROM personal_access_tokens p JOIN users u ON u.id = p.user_id
   WHERE p.token_hash = $1`

// Never moves a time backwards: replicas flush independently and in any order.
const WRITE_LAST_USED = `
  UPDATE personal_access_tokens AS p SET last_used_at = v.used_at
    FROM unnest($1::uuid[], $2::timestamptz[]) AS v (id, used_at)
   WHERE p.id = v.id AND (p.last_used_at IS NULL OR p.last_used_at < v.used_at)`

export class PatRepository {
  readonly #db: Database
  readonly #audit: AuditLog

  constructor(db: Database, audit: AuditLog) {
    this.#db = db
    this.#audit = audit
  }

  /**
   * Inserts a token for an enabled owner holding fewer than `maxPerUser` unrevoked ones, and
   * audits it. GH_NOT_FOUND when the owner is gone or disabled; GH_VALIDATION (`field: tokens`)
   * at the cap. Locking the owner serialises their concurrent creations, so the cap holds.
   */
  create(pat: NewPat, maxPerUser: number, context: AuditContext): Promise<PatRow> {
    return this.#db.transaction(async (tx) => {
      const owner = await tx.query<{ email: string; disabled: boolean }>(
        'SELECT email, disabled FROM users WHERE id = $1 FOR UPDATE',
        [pat.ownerId],
      )
      const found = owner.rows[0]
      if (found === undefined || found.disabled) throw new GatehouseError('GH_NOT_FOUND', 'No such user')
      const held = await tx.query<{ count: number }>(
        'SELECT count(*)::int AS count FROM personal_access_tokens WHERE user_id = $1 AND revoked_at IS NULL',
        [pat.ownerId],
      )
      if ((held.rows[0]?.count ?? 0) >= maxPerUser) {
        throw new GatehouseError('GH_VALIDATION', `A user may hold at most ${maxPerUser} tokens: revoke unused or expired ones first`, {
          details: { field: 'tokens', limit: maxPerUser },
        })
      }
      const inserted = await tx.query<PatRow>(
        `INSERT INTO personal_access_tokens (user_id, name, token_hash, mask, permissions, expires_at, created_at, second_factor)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${PAT_COLUMNS}`,
        [pat.ownerId, pat.name, pat.tokenHash, pat.mask, pat.permissions, pat.expiresAt, pat.createdAt, pat.secondFactor],
      )
      const row = inserted.rows[0]
      if (row === undefined) throw new Error('INSERT … RETURNING returned no row')
      const details = { token_id: row.id, name: pat.name, mask: row.mask, permissions: pat.permissions, expires_at: pat.expiresAt?.toISOString() ?? null, second_factor: pat.secondFactor }
      await this.#audit.record('token.created', { userId: pat.ownerId, email: found.email, ip: context.ip, details: withActor(details, context) }, tx)
      return row
    })
  }

  /** The user's unrevoked tokens, newest first. */
  async listUnrevoked(userId: string): Promise<PatRow[]> {
    const result = await this.#db.query<PatRow>(
      `SELECT ${PAT_COLUMNS} FROM personal_access_tokens
        WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC`,
      [userId],
    )
    return result.rows
  }

  /** The id of the token's owner, revoked or not; null when there is no such token. */
  async ownerOf(id: string): Promise<string | null> {
    const result = await this.#db.query<{ user_id: string }>('SELECT user_id::text AS user_id FROM personal_access_tokens WHERE id = $1', [id])
    return result.rows[0]?.user_id ?? null
  }

  /** Revokes one of the user's unrevoked tokens and audits it; false when there is none such. */
  revoke(userId: string, id: string, at: Date, context: AuditContext): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const result = await tx.query<{ name: string; mask: string; email: string }>(
        `UPDATE personal_access_tokens AS p SET revoked_at = $3 FROM users AS u
          WHERE p.id = $1 AND p.user_id = $2 AND p.revoked_at IS NULL AND u.id = p.user_id
          RETURNING p.name, p.mask, u.email`,
        [id, userId, at],
      )
      const row = result.rows[0]
      if (row === undefined) return false
      const details = withActor({ token_id: id, name: row.name, mask: row.mask }, context)
      await this.#audit.record('token.revoked', { userId, email: row.email, ip: context.ip, details }, tx)
      return true
    })
  }

  /** The token with this hash and its owner, revoked or not; undefined when unknown. */
  async lookup(tokenHash: string): Promise<PatLookupRow | undefined> {
    const result = await this.#db.query<PatLookupRow>(LOOKUP, [tokenHash])
    return result.rows[0]
  }

  /** Records last-used times (epoch ms by token id) in one statement, never moving one backwards. */
  async writeLastUsed(batch: ReadonlyMap<string, number>): Promise<void> {
    await this.#db.query(WRITE_LAST_USED, [[...batch.keys()], [...batch.values()].map((time) => new Date(time).toISOString())])
  }
}

function withActor(details: Record<string, unknown>, context: AuditContext): Record<string, unknown> {
  return context.actorId ? { ...details, actor_id: context.actorId } : details
}
