/**
 * Where sealed user secrets are kept: the narrow interface the UserSecrets service needs, so
 * that it never sees SQL. `database-store.ts` implements it on the Database interface (PGlite
 * and PostgreSQL alike, one contract suite: test/contracts/user-secret-store.ts).
 */
import type { AuditContext } from '../users.js'

/** A secret as stored: sealed, never the value. */
export interface SealedSecret {
  /** SHA-256 of the route's upstream when it was stored (see upstream-fingerprint.ts). */
  upstreamFingerprint: string
  /** `gh1.<kid>.<iv>.<ciphertext>` from the data key ring. */
  ciphertext: string
  /** The data key that sealed it. */
  keyId: string
}

/** What may be shown about a stored secret: its route and times. */
export interface SecretInfo {
  route: string
  upstreamFingerprint: string
  createdAt: Date
  updatedAt: Date
}

export interface StoredSecret extends SealedSecret, SecretInfo {}

export interface UserSecretStore {
  /** The user's secrets, by route name; never their ciphertexts. */
  list(userId: string): Promise<SecretInfo[]>
  get(userId: string, route: string): Promise<StoredSecret | null>
  /**
   * Stores the secret, replacing one the user had for the route (`created_at` kept), and audits
   * `user_secret.set` in the same transaction. GH_NOT_FOUND when the user is gone.
   */
  put(userId: string, route: string, sealed: SealedSecret, context: AuditContext): Promise<'created' | 'replaced'>
  /** Removes it and audits `user_secret.removed` together; false (nothing audited) when there was none. */
  delete(userId: string, route: string, context: AuditContext): Promise<boolean>
  /**
   * Replaces the ciphertext only while it is still `previous` (a re-encryption under the
   * current data key must not undo a change made meanwhile); `updated_at` is kept: the user
   * changed nothing.
   */
  reseal(userId: string, route: string, previous: string, next: Pick<SealedSecret, 'ciphertext' | 'keyId'>): Promise<boolean>
}
