/** The `user_secrets` table (migration 5): UserSecretStore on the Database interface. */
import { GatehouseError } from '../../errors.js'
import type { Database } from '../../storage/database.js'
import type { AuditLog } from '../audit.js'
import type { AuditContext } from '../users.js'
import type { SealedSecret, SecretInfo, StoredSecret, UserSecretStore } from './store.js'

interface Row {
  route: string
  upstream_fingerprint: string
  ciphertext: string
  key_id: string
  created_at: Date
  updated_at: Date
}

const INFO = 'route, upstream_fingerprint, created_at, updated_at'

export class DatabaseUserSecretStore implements UserSecretStore {
  readonly #db: Database
  readonly #audit: AuditLog

  constructor(db: Database, audit: AuditLog) {
    this.#db = db
    this.#audit = audit
  }

  async list(userId: string): Promise<SecretInfo[]> {
    const { rows } = await this.#db.query<Row>(`SELECT ${INFO} FROM user_secrets WHERE user_id = $1 ORDER BY route`, [userId])
    return rows.map(toInfo)
  }

  async get(userId: string, route: string): Promise<StoredSecret | null> {
    const { rows } = await this.#db.query<Row>(
      `SELECT ${INFO}, ciphertext, key_id FROM user_secrets WHERE user_id = $1 AND route = $2`,
      [userId, route],
    )
    const row = rows[0]
    return row === undefined ? null : { ...toInfo(row), ciphertext: row.ciphertext, keyId: row.key_id }
  }

  put(userId: string, route: string, sealed: SealedSecret, context: AuditContext): Promise<'created' | 'replaced'> {
    return this.#db.transaction(async (tx) => {
      // Locks the owner: a deletion of the account cannot interleave and leave an orphan.
      const owner = await tx.query<{ email: string }>('SELECT email FROM users WHERE id = $1 FOR UPDATE', [userId])
      const email = owner.rows[0]?.email
      if (email === undefined) throw new GatehouseError('GH_NOT_FOUND', 'No such user')
      const replaced = await tx.query(
        `UPDATE user_secrets SET upstream_fingerprint = $3, ciphertext = $4, key_id = $5, updated_at = now()
          WHERE user_id = $1 AND route = $2`,
        [userId, route, sealed.upstreamFingerprint, sealed.ciphertext, sealed.keyId],
      )
      if (replaced.rowCount === 0) {
        await tx.query(
          'INSERT INTO user_secrets (user_id, route, upstream_fingerprint, ciphertext, key_id) VALUES ($1, $2, $3, $4, $5)',
          [userId, route, sealed.upstreamFingerprint, sealed.ciphertext, sealed.keyId],
        )
      }
      const outcome = replaced.rowCount === 0 ? 'created' : 'replaced'
      await this.#audit.record('user_secret.set', auditEvent(userId, email, route, context, { replaced: outcome === 'replaced' }), tx)
      return outcome
    })
  }

  delete(userId: string, route: string, context: AuditContext): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const { rows } = await tx.query<{ email: string }>(
        'DELETE FROM user_secrets s USING users u WHERE s.user_id = $1 AND s.route = $2 AND u.id = s.user_id RETURNING u.email',
        [userId, route],
      )
      const email = rows[0]?.email
      if (email === undefined) return false
      await this.#audit.record('user_secret.removed', auditEvent(userId, email, route, context), tx)
      return true
    })
  }

  async reseal(userId: string, route: string, previous: string, next: Pick<SealedSecret, 'ciphertext' | 'keyId'>): Promise<boolean> {
    const { rowCount } = await this.#db.query(
      'UPDATE user_secrets SET ciphertext = $4, key_id = $5 WHERE user_id = $1 AND route = $2 AND ciphertext = $3',
      [userId, route, previous, next.ciphertext, next.keyId],
    )
    return rowCount > 0
  }
}

function toInfo(row: Row): SecretInfo {
  return { route: row.route, upstreamFingerprint: row.upstream_fingerprint, createdAt: row.created_at, updatedAt: row.updated_at }
}

/** Never the value: the route is all an auditor needs. */
function auditEvent(userId: string, email: string, route: string, context: AuditContext, extra: Record<string, unknown> = {}) {
  return { userId, email, ip: context.ip ?? null, details: { route, ...extra, ...(context.actorId ? { actor_id: context.actorId } : {}) } }
}
