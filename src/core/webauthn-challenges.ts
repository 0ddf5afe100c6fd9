/**
 * WebAuthn challenges in flight, kept server-side in the session store: each is issued for one
 * purpose (registering a passkey, a second factor, a passkey-only sign-in) and, except for the
 * passkey-only sign-in, one user. A challenge is good once and for a short time: taking it
 * deletes it, so a replayed response finds nothing, and two racing requests cannot both win.
 */
import type { KeyValueStore } from '../kv/store.js'
import type { Clock } from './clock.js'
import { sha256 } from './crypto.js'
import { SingleUseRecords } from './single-use-records.js'

/** What a challenge was issued for; a response is accepted only for the same purpose. */
export type ChallengePurpose = 'register' | 'second-factor' | 'passkey-login'

export interface IssuedChallenge {
  purpose: ChallengePurpose
  /** The user it was issued to; null for a passkey-only sign-in (the credential names the user). */
  userId: string | null
  /** A second-factor challenge is bound to that login's `mfa_token` (its hash), else null. */
  binding: string | null
}

/** How long a browser has to answer a challenge (the ceremony's timeout is the same). */
export const CHALLENGE_TTL_MS = 5 * 60_000

/** base64url of 16 to 64 bytes: what a challenge of ours looks like. */
const CHALLENGE_SHAPE = /^[A-Za-z0-9_-]{22,86}$/

export class WebAuthnChallenges {
  readonly #records: SingleUseRecords<IssuedChallenge>

  constructor(options: { store: KeyValueStore; clock: Clock; ttlMs?: number }) {
    this.#records = new SingleUseRecords<IssuedChallenge>({
      store: options.store,
      clock: options.clock,
      ttlMs: options.ttlMs ?? CHALLENGE_TTL_MS,
      // Only the hash of a challenge is a key: reading the store gives no challenges.
      prefix: 'webauthn-challenge',
      isRecord: (v) =>
        typeof v.purpose === 'string' && (v.userId === null || typeof v.userId === 'string') && (v.binding === null || typeof v.binding === 'string'),
    })
  }

  get ttlMs(): number {
    return this.#records.ttlMs
  }

  /** Remembers a challenge the library generated, for this purpose and user. */
  async remember(challenge: string, issued: IssuedChallenge): Promise<void> {
    if (!CHALLENGE_SHAPE.test(challenge)) throw new TypeError('a WebAuthn challenge must be 16 to 64 bytes of base64url')
    await this.#records.put(sha256(challenge), issued)
  }

  /**
   * Takes the challenge (deleting it) and resolves true when it was issued for exactly this
   * purpose, user and binding and has not expired. Whatever the answer, the challenge is spent:
   * a response sent with another user's challenge burns it rather than leaving it to retry.
   */
  async take(challenge: string, expected: IssuedChallenge): Promise<boolean> {
    if (!CHALLENGE_SHAPE.test(challenge)) return false
    const stored = await this.#records.take(sha256(challenge))
    return stored !== null && stored.purpose === expected.purpose && stored.userId === expected.userId && stored.binding === expected.binding
  }
}
