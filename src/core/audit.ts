import { GatehouseError } from '../errors.js'
import type { Queryable } from '../storage/database.js'

export type AuditEventType =
  | 'user.registered'
  | 'login.succeeded'
  | 'login.failed'
  | 'login.locked'
  | 'logout'
  | 'logout.all'
  | 'logout.backchannel'
  | 'password.changed'
  | 'password.reset'
  | 'password.reset_requested'
  | 'email.verified'
  | 'email.verification_sent'
  | 'session.revoked'
  | 'user.updated'
  | 'user.roles_changed'
  | 'user.disabled'
  | 'user.enabled'
  | 'user.deleted'
  | 'identity.linked'
  | 'token.created'
  | 'token.revoked'
  | 'mfa.totp_enrolled'
  | 'mfa.totp_removed'
  | 'mfa.recovery_codes_generated'
  | 'mfa.recovery_code_used'
  | 'mfa.reset'
  | 'mfa.step_up'
  | 'user_secret.set'
  | 'user_secret.removed'
  | 'mfa.passkey_added'
  | 'mfa.passkey_removed'

export interface AuditEvent {
  /** The user the event is about (not necessarily who caused it: see `details.actor_id`). */
  userId?: string | null
  email?: string | null
  ip?: string | null
  details?: Record<string, unknown>
}

export interface AuditEntry {
  /** The bigserial, as a string. */
  id: string
  type: AuditEventType
  user_id: string | null
  email: string | null
  ip: string | null
  details: Record<string, unknown>
  created_at: string
}

/** Which events to read; every filter given must hold. */
export interface AuditFilter {
  /** Events about this user id. */
  userId?: string
  /** Events about this (normalised) email: recorded with it, or about the user who has it now. */
  email?: string
  /** An event type (`login.failed`) or a family of them (`login`: every `login.*`). */
  type?: string
}

export interface AuditPage {
  items: AuditEntry[]
  /** Pass as `cursor` for the next (older) page; null on the last page. */
  next_cursor: string | null
}

/** Events one page may hold; the HTTP API asks for at most 100, the CLI pages up to its --limit. */
export const MAX_AUDIT_PAGE = 1000
const TYPE_FILTER = /^[a-z][a-z_]*(\.[a-z][a-z_]*)?$/

interface AuditRow {
  id: string
  type: AuditEventType
  user_id: string | null
  email: string | null
  ip: string | null
  details: Record<string, unknown> | null
  created_at: string
}

/** The append-only trail in `audit_events`. */
export class AuditLog {
  readonly #db: Queryable

  constructor(db: Queryable) {
    this.#db = db
  }

  /**
   * Appends an event. Pass the transaction of the change it records as `q`, so that the
   * change and its record are written together or not at all.
   */
  async record(type: AuditEventType, event: AuditEvent = {}, q: Queryable = this.#db): Promise<void> {
    await q.query(
      'INSERT INTO audit_events (type, user_id, email, ip, details) VALUES ($1, $2, $3, $4, $5::jsonb)',
      [type, event.userId ?? null, event.email ?? null, event.ip ?? null, JSON.stringify(event.details ?? {})],
    )
  }

  /** The newest events first, optionally only those matching `filter` and older than `beforeId`. */
  async list(options: AuditFilter & { limit: number; beforeId?: string }): Promise<AuditEntry[]> {
    const params: unknown[] = [options.limit]
    const where: string[] = []
    const param = (value: unknown) => `$${params.push(value)}`
    if (options.userId !== undefined) where.push(`user_id = ${param(options.userId)}::uuid`)
    if (options.email !== undefined) {
      const email = param(options.email)
      where.push(`(email = ${email} OR user_id = (SELECT id FROM users WHERE email = ${email}))`)
    }
    if (options.type !== undefined) {
      where.push(options.type.includes('.') ? `type = ${param(options.type)}` : `split_part(type, '.', 1) = ${param(options.type)}`)
    }
    if (options.beforeId !== undefined) where.push(`id < ${param(options.beforeId)}::bigint`)
    const result = await this.#db.query<AuditRow>(
      `SELECT id::text AS id, type, user_id::text AS user_id, email, ip, details,
              to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at
         FROM audit_events ${where.length > 0 ? `WHERE ${where.map((w) => `(${w})`).join(' AND ')}` : ''}
        ORDER BY audit_events.id DESC LIMIT $1`,
      params,
    )
    return result.rows.map((row) => ({ ...row, details: row.details ?? {} }))
  }

  /**
   * One page of `list`, newest first, keyset-paginated on the event id: `cursor` is the
   * opaque `next_cursor` of the previous page. GH_VALIDATION (`details.field`: limit, cursor,
   * type, user) for a malformed argument.
   */
  async page(options: AuditFilter & { limit: number; cursor?: string | null }): Promise<AuditPage> {
    const { limit } = options
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_PAGE) {
      throw invalid('limit', `limit must be an integer from 1 to ${MAX_AUDIT_PAGE}`)
    }
    if (options.type !== undefined && !TYPE_FILTER.test(options.type)) {
      throw invalid('type', 'type must be an event type such as login.failed, or a family such as login')
    }
    if (options.userId !== undefined && !UUID.test(options.userId)) throw invalid('user', 'user must be a user id or an email')
    const beforeId = options.cursor ? decodeCursor(options.cursor) : undefined
    const rows = await this.list({ ...options, limit: limit + 1, beforeId })
    const items = rows.slice(0, limit)
    const last = items.at(-1)
    return { items, next_cursor: rows.length > limit && last !== undefined ? encodeCursor(last.id) : null }
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function invalid(field: string, message: string): GatehouseError {
  return new GatehouseError('GH_VALIDATION', message, { details: { field } })
}

function encodeCursor(id: string): string {
  return Buffer.from(`before:${id}`).toString('base64url')
}

function decodeCursor(cursor: string): string {
  const id = cursor.length <= 64 ? /^before:([1-9]\d{0,17})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))?.[1] : undefined
  if (id === undefined || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid('cursor', 'The cursor is not valid')
  return id
}
