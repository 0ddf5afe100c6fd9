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
import { SingleUseRecords } from '../single-use-records.js'

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

export interface PendingMfaLogin extends MfaLogin {
  /** The SHA-256 of the token: names the login (a passkey challenge is issued for it). */
  id: string
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/

export class PendingMfaLogins {
  readonly #records: SingleUseRecords<MfaLogin>

  constructor(options: { store: KeyValueStore; clock: Clock; ttlMs?: number }) {
    this.#records = new SingleUseRecords<MfaLogin>({
      store: options.store,
      clock: options.clock,
      ttlMs: options.ttlMs ?? MFA_TOKEN_TTL_MS,
      prefix: 'mfa-login',
      isRecord: (v) => typeof v.user_id === 'string',
    })
  }

  /** Stores a login waiting for its second factor; resolves its `mfa_token`. */
  async begin(login: MfaLogin): Promise<string> {
    const token = randomToken(32)
    await this.#records.put(sha256(token), login)
    return token
  }

  /** The pending login of a token, left pending; null when malformed, unknown, finished or expired. */
  async peek(token: string): Promise<PendingMfaLogin | null> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return null
    const id = sha256(token)
    const login = await this.#records.peek(id)
    return login === null ? null : { ...login, id }
  }

  /** Finishes the login: resolves true for the one caller whose delete removed it. */
  async finish(login: PendingMfaLogin): Promise<boolean> {
    return this.#records.delete(login.id)
  }
}
