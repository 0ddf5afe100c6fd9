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
  | 'session.revoked'
  | 'user.updated'
  | 'user.roles_changed'
  | 'user.disabled'
  | 'user.enabled'
  | 'user.deleted'
  | 'identity.linked'
  | 'token.created'
  | 'token.revoked'

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

  /** The newest events first, optionally only those about one user. */
  async list(options: { userId?: string; limit: number }): Promise<AuditEntry[]> {
    const params: unknown[] = [options.limit]
    let where = ''
    if (options.userId !== undefined) {
      params.push(options.userId)
      where = 'WHERE user_id = $2'
    }
    const result = await this.#db.query<AuditRow>(
      `SELECT id::text AS id, type, user_id::text AS user_id, email, ip, details,
              to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at
         FROM audit_events ${where} ORDER BY audit_events.id DESC LIMIT $1`,
      params,
    )
    return result.rows.map((row) => ({ ...row, details: row.details ?? {} }))
  }
}
