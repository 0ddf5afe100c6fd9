/**
 * The `webauthn_credentials` table: every SQL statement about passkeys. No WebAuthn here:
 * PasskeyService verifies the ceremonies and calls these.
 */
import type { Queryable } from '../storage/database.js'

/** A stored credential, as verification needs it. */
export interface StoredPasskey {
  id: string
  userId: string
  /** The authenticator's credential id, base64url. */
  credentialId: string
  /** The COSE public key, base64url. */
  publicKey: string
  counter: number
  transports: string[]
  name: string
  backedUp: boolean
  createdAt: Date
  lastUsedAt: Date | null
}

export interface NewPasskey {
  userId: string
  credentialId: string
  publicKey: string
  counter: number
  transports: readonly string[]
  name: string
  backedUp: boolean
  createdAt: Date
}

interface Row {
  id: string
  user_id: string
  credential_id: string
  public_key: string
  counter: number
  transports: string[]
  name: string
  backed_up: boolean
  created_at: Date
  last_used_at: Date | null
}

const COLUMNS =
  'id::text AS id, user_id::text AS user_id, credential_id, public_key, counter, transports, name, backed_up, created_at, last_used_at'

const fromRow = (row: Row): StoredPasskey => ({
  id: row.id,
  userId: row.user_id,
  credentialId: row.credential_id,
  publicKey: row.public_key,
  counter: row.counter,
  transports: row.transports,
  name: row.name,
  backedUp: row.backed_up,
  createdAt: row.created_at,
  lastUsedAt: row.last_used_at,
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export class PasskeyCredentials {
  readonly #db: Queryable

  constructor(db: Queryable) {
    this.#db = db
  }

  /** The user's passkeys, oldest first. */
  async list(userId: string, q: Queryable = this.#db): Promise<StoredPasskey[]> {
    const { rows } = await q.query<Row>(`SELECT ${COLUMNS} FROM webauthn_credentials WHERE user_id = $1 ORDER BY created_at, id`, [userId])
    return rows.map(fromRow)
  }

  async count(userId: string, q: Queryable = this.#db): Promise<number> {
    const { rows } = await q.query<{ n: number }>('SELECT count(*)::int AS n FROM webauthn_credentials WHERE user_id = $1', [userId])
    return rows[0]?.n ?? 0
  }

  /** The credential with this authenticator id, whoever owns it. */
  async findByCredentialId(credentialId: string): Promise<StoredPasskey | null> {
    const { rows } = await this.#db.query<Row>(`SELECT ${COLUMNS} FROM webauthn_credentials WHERE credential_id = $1`, [credentialId])
    return rows[0] ? fromRow(rows[0]) : null
  }

  /** Rejects with a unique violation (23505) when the credential id is registered already. */
  async insert(passkey: NewPasskey, q: Queryable = this.#db): Promise<StoredPasskey> {
    const { rows } = await q.query<Row>(
      `INSERT INTO webauthn_credentials (user_id, credential_id, public_key, counter, transports, name, backed_up, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${COLUMNS}`,
      [passkey.userId, passkey.credentialId, passkey.publicKey, passkey.counter, [...passkey.transports], passkey.name, passkey.backedUp, passkey.createdAt],
    )
    return fromRow(rows[0] as Row)
  }

  /**
   * Records a successful use. The counter only moves forward (a concurrent use that wrote a
   * higher one wins); resolves false when the row is gone or already past `counter`.
   */
  async recordUse(id: string, counter: number, usedAt: Date): Promise<boolean> {
    const { rowCount } = await this.#db.query(
      `UPDATE webauthn_credentials SET counter = $2, last_used_at = $3
        WHERE id = $1 AND (counter < $2 OR (counter = 0 AND $2 = 0))`,
      [id, counter, usedAt],
    )
    return rowCount === 1
  }

  /** Deletes the user's passkey `id`; null when the user has no such passkey (another user's included). */
  async delete(userId: string, id: string, q: Queryable = this.#db): Promise<StoredPasskey | null> {
    if (!UUID.test(id)) return null
    const { rows } = await q.query<Row>(`DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2 RETURNING ${COLUMNS}`, [id, userId])
    return rows[0] ? fromRow(rows[0]) : null
  }

  /** Deletes every passkey of the user (an administrator's MFA reset); resolves how many. */
  async deleteAll(userId: string, q: Queryable = this.#db): Promise<number> {
    const { rowCount } = await q.query('DELETE FROM webauthn_credentials WHERE user_id = $1', [userId])
    return rowCount
  }
}
