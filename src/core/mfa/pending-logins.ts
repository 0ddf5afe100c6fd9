/**
 * Logins waiting for their second factor (SPEC §3): after the password step a user with a
 * second factor gets an `mfa_token` instead of a session. The token is 32 random bytes; the
 * session store keeps only its SHA-256, with the login it belongs to (user, email for the
 * lockout, whether it starts a refresh chain, where a browser goes next). It lives 5 minutes
 * and finishes one login: the delete that finishes it is the claim, so two requests racing
 * with one token cannot both get a session. A wrong factor leaves it pending (the lockout
 * bounds the guesses).
 */
import type { KeyValueStore } from '../../kv/store.js'
import type { SessionAmr } from '../amr.js'
import type { Clock } from '../clock.js'
import { randomToken, sha256 } from '../crypto.js'

export const MFA_TOKEN_TTL_MS = 5 * 60_000

export interface MfaLogin {
  user_id: string
  /** The normalised email: the account the lockout counts failures for. */
  email: string
  /** The factors proven so far (`pwd`). */
  amr: SessionAmr[]
  /** A JSON login with sessions.refresh_tokens: the finished login starts a refresh chain. */
  refreshable: boolean
  /** A form login: where to go once signed in (already made safe). */
  next: string | null
}

interface StoredMfaLogin extends MfaLogin {
  created_at: number
}

export interface PendingMfaLogin extends MfaLogin {
  /** The SHA-256 of the token: names the login (a passkey challenge is issued for it). */
  id: string
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/
const keyOf = (id: string): string => `mfa-login:${id}`

export class PendingMfaLogins {
  readonly #store: KeyValueStore
  readonly #clock: Clock
  readonly #ttl: number

  constructor(options: { store: KeyValueStore; clock: Clock; ttlMs?: number }) {
    this.#store = options.store
    this.#clock = options.clock
    this.#ttl = options.ttlMs ?? MFA_TOKEN_TTL_MS
  }

  /** Stores a login waiting for its second factor; resolves its `mfa_token`. */
  async begin(login: MfaLogin): Promise<string> {
    const token = randomToken(32)
    const stored: StoredMfaLogin = { ...login, created_at: this.#clock.now() }
    await this.#store.set(keyOf(sha256(token)), JSON.stringify(stored), this.#ttl)
    return token
  }

  /** The pending login of a token, left pending; null when malformed, unknown, finished or expired. */
  async peek(token: string): Promise<PendingMfaLogin | null> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return null
    const id = sha256(token)
    const raw = await this.#store.get(keyOf(id))
    if (raw === null) return null
    let stored: StoredMfaLogin
    try {
      stored = JSON.parse(raw) as StoredMfaLogin
    } catch {
      return null
    }
    if (typeof stored.user_id !== 'string' || typeof stored.created_at !== 'number') return null
    // Expiry is decided on the gateway's clock, not by the store's TTL (which only collects garbage).
    if (this.#clock.now() - stored.created_at >= this.#ttl) {
      await this.#store.delete(keyOf(id))
      return null
    }
    const { created_at: _created, ...login } = stored
    return { ...login, id }
  }

  /** Finishes the login: resolves true for the one caller whose delete removed it. */
  async finish(login: PendingMfaLogin): Promise<boolean> {
    return this.#store.delete(keyOf(login.id))
  }
}
