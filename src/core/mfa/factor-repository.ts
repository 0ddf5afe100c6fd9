/**
 * The `user_totp` and `recovery_codes` tables: every SQL statement about second factors. The
 * single-use rules live here, as conditional UPDATEs, so that they hold across replicas: a
 * TOTP step or a recovery code is spent by whichever statement changes the row first.
 */
import type { Database, Queryable } from '../../storage/database.js'

export interface TotpRecord {
  /** Sealed with the data key ring (core/data-keys.ts), context `totpContext(user id)`. */
  secretSealed: string
  /** Null while enrolment is pending. */
  confirmedAt: Date | null
  lastUsedStep: number | null
}

interface TotpRow {
  secret_sealed: string
  confirmed_at: Date | null
  last_used_step: number | null
}

export class FactorRepository {
  readonly #db: Database

  constructor(db: Database) {
    this.#db = db
  }

  async totp(userId: string): Promise<TotpRecord | null> {
    const result = await this.#db.query<TotpRow>('SELECT secret_sealed, confirmed_at, last_used_step FROM user_totp WHERE user_id = $1', [userId])
    const row = result.rows[0]
    return row === undefined ? null : { secretSealed: row.secret_sealed, confirmedAt: row.confirmed_at, lastUsedStep: row.last_used_step }
  }

  /** Whether the user has a confirmed TOTP secret. */
  async hasTotp(userId: string): Promise<boolean> {
    const result = await this.#db.query('SELECT 1 FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL', [userId])
    return result.rows.length > 0
  }

  /**
   * Starts (or restarts) an enrolment with a new secret; resolves false, changing nothing, when
   * the user has a confirmed secret already (it must be removed first) or does not exist.
   */
  async savePendingTotp(userId: string, secretSealed: string, keyId: string): Promise<boolean> {
    const result = await this.#db.query(
      `INSERT INTO user_totp (user_id, secret_sealed, key_id) SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
       ON CONFLICT (user_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, key_id = EXCLUDED.key_id, created_at = now(), last_used_step = NULL
       WHERE user_totp.confirmed_at IS NULL`,
      [userId, secretSealed, keyId],
    )
    return result.rowCount === 1
  }

  /**
   * Confirms the pending secret `secretSealed` (the one the code was checked against, so that a
   * restart meanwhile is not confirmed unseen), spends `step`, and replaces the recovery codes,
   * in one transaction; resolves false when that pending secret is no longer there.
   */
  confirmTotp(userId: string, secretSealed: string, step: number, recoveryHashes: readonly string[]): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const confirmed = await tx.query(
        `UPDATE user_totp SET confirmed_at = now(), last_used_step = $3
          WHERE user_id = $1 AND secret_sealed = $2 AND confirmed_at IS NULL`,
        [userId, secretSealed, step],
      )
      if (confirmed.rowCount !== 1) return false
      await this.#replaceRecoveryCodes(tx, userId, recoveryHashes)
      return true
    })
  }

  /** Spends `step` of the user's confirmed secret: false when it (or a later one) was used already. */
  async claimTotpStep(userId: string, step: number): Promise<boolean> {
    const result = await this.#db.query(
      `UPDATE user_totp SET last_used_step = $2
        WHERE user_id = $1 AND confirmed_at IS NOT NULL AND (last_used_step IS NULL OR last_used_step < $2)`,
      [userId, step],
    )
    return result.rowCount === 1
  }

  /** Removes the TOTP secret, confirmed or pending; resolves whether a confirmed one was removed. */
  async deleteTotp(userId: string): Promise<boolean> {
    const result = await this.#db.query<{ confirmed: boolean }>(
      'DELETE FROM user_totp WHERE user_id = $1 RETURNING confirmed_at IS NOT NULL AS confirmed',
      [userId],
    )
    return result.rows.some((row) => row.confirmed)
  }

  async replaceRecoveryCodes(userId: string, hashes: readonly string[]): Promise<void> {
    await this.#db.transaction((tx) => this.#replaceRecoveryCodes(tx, userId, hashes))
  }

  /** Spends one unused recovery code: false when it is unknown or spent. */
  async claimRecoveryCode(userId: string, hash: string): Promise<boolean> {
    const result = await this.#db.query(
      'UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL',
      [userId, hash],
    )
    return result.rowCount === 1
  }

  async unusedRecoveryCodes(userId: string): Promise<number> {
    const result = await this.#db.query<{ count: number }>(
      'SELECT count(*)::int AS count FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL',
      [userId],
    )
    return result.rows[0]?.count ?? 0
  }

  async deleteRecoveryCodes(userId: string): Promise<number> {
    return (await this.#db.query('DELETE FROM recovery_codes WHERE user_id = $1', [userId])).rowCount
  }

  async #replaceRecoveryCodes(tx: Queryable, userId: string, hashes: readonly string[]): Promise<void> {
    await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [userId])
    if (hashes.length === 0) return
    await tx.query('INSERT INTO recovery_codes (user_id, code_hash) SELECT $1, unnest($2::text[])', [userId, hashes])
  }
}
