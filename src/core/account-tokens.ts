/**
 * Single-use links for password reset and email verification, over the `account_tokens`
 * table. A token is 32 random bytes (base64url); only its SHA-256 is stored. Whether a token
 * is still good is decided on the injected clock, and spending it is one conditional UPDATE,
 * so that two requests racing with one link cannot both succeed.
 */
import type { Database, Queryable } from '../storage/database.js'
import type { Clock } from './clock.js'
import { randomToken, sha256 } from './crypto.js'

export type AccountTokenPurpose = 'password_reset' | 'email_verification'

/** SPEC §5: a reset link is good for 30 minutes, a verification link for 24 hours. */
export const ACCOUNT_TOKEN_TTL_MS: Readonly<Record<AccountTokenPurpose, number>> = {
  password_reset: 30 * 60_000,
  email_verification: 24 * 60 * 60_000,
}

/**
 * Live links of one purpose a user may hold at once; further requests send nothing until
 * one is used or expires, so that nobody can fill a mailbox (or the table) through the form.
 */
export const MAX_LIVE_TOKENS = 3

/** 32 random bytes in base64url; anything else is refused without a lookup. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/

export class AccountTokens {
  readonly #db: Database
  readonly #clock: Clock

  constructor(options: { db: Database; clock: Clock }) {
    this.#db = options.db
    this.#clock = options.clock
  }

  /**
   * A new link for the user, or null when they already hold MAX_LIVE_TOKENS live ones.
   * Spent and expired links of theirs are removed on the way.
   */
  async issue(userId: string, purpose: AccountTokenPurpose): Promise<string | null> {
    const now = new Date(this.#clock.now())
    return this.#db.transaction(async (tx) => {
      // Serialises concurrent requests for one user, so that the cap holds.
      await tx.query('SELECT 1 FROM users WHERE id = $1 FOR UPDATE', [userId])
      await tx.query('DELETE FROM account_tokens WHERE user_id = $1 AND (used_at IS NOT NULL OR expires_at <= $2)', [userId, now])
      const live = await tx.query<{ count: number }>(
        'SELECT count(*)::int AS count FROM account_tokens WHERE user_id = $1 AND purpose = $2',
        [userId, purpose],
      )
      if (Number(live.rows[0]?.count ?? 0) >= MAX_LIVE_TOKENS) return null
      const token = randomToken(32)
      await tx.query('INSERT INTO account_tokens (token_hash, user_id, purpose, expires_at) VALUES ($1, $2, $3, $4)', [
        sha256(token),
        userId,
        purpose,
        new Date(now.getTime() + ACCOUNT_TOKEN_TTL_MS[purpose]),
      ])
      return token
    })
  }

  /** The user a live (unused, unexpired) token of this purpose belongs to, without spending it; else null. */
  async peek(token: string, purpose: AccountTokenPurpose): Promise<string | null> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return null
    const result = await this.#db.query<{ user_id: string }>(
      `SELECT user_id::text AS user_id FROM account_tokens
        WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3`,
      [sha256(token), purpose, new Date(this.#clock.now())],
    )
    return result.rows[0]?.user_id ?? null
  }

  /**
   * A function that spends the token inside the caller's transaction: true when this call
   * spent it (live, of this purpose and user); the user's other live links of the purpose
   * are spent with it, since one reset or one verification settles them all.
   */
  claimer(token: string, purpose: AccountTokenPurpose, userId: string): (tx: Queryable) => Promise<boolean> {
    return async (tx) => {
      if (!TOKEN_SHAPE.test(token)) return false
      const now = new Date(this.#clock.now())
      const spent = await tx.query(
        `UPDATE account_tokens SET used_at = $4
          WHERE token_hash = $1 AND purpose = $2 AND user_id = $3 AND used_at IS NULL AND expires_at > $4`,
        [sha256(token), purpose, userId, now],
      )
      if (spent.rowCount !== 1) return false
      await tx.query('UPDATE account_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL', [
        userId,
        purpose,
        now,
      ])
      return true
    }
  }
}
