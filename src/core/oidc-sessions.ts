/**
 * What the gateway remembers about the provider behind each OIDC session, in the session
 * store next to the session: the provider's `sid` and `sub` (indexed, so that a back-channel
 * logout token finds every session it names), the ID token (the `id_token_hint` of an
 * RP-initiated logout), and the provider's refresh token, encrypted, with when to use it next.
 *
 * Kept apart from the session record on purpose: requests rewrite the session record to
 * refresh `last_seen_at`, and a rotated refresh token must never be overwritten by such a
 * write made from an older read.
 */
import type { KeyValueStore } from '../kv/store.js'
import { sha256 } from './crypto.js'

export interface ProviderRefresh {
  /** The provider's refresh token, encrypted with the data key ring (context: the session id). */
  token: string
  /** Epoch ms when the user is due to be re-checked with the provider. */
  next_check_at: number
}

export interface OidcSessionLink {
  /** The provider's name in gateway.yml. */
  provider: string
  issuer: string
  sub: string
  /** The provider's session id (`sid` claim), when it sent one. */
  sid: string | null
  id_token: string | null
  refresh: ProviderRefresh | null
}

/** Where a logout token's subject is looked up: by `sid`, by `sub`, or both (both must match). */
export interface LogoutSubject {
  issuer: string
  sid: string | null
  sub: string | null
}

/** Companion record of a session; SessionService deletes it when the session ends. */
export const oidcSessionKey = (sessionId: string): string => `oidc-session:${sessionId}`
const sidIndexKey = (issuer: string, sid: string): string => `oidc-sid:${sha256(`${issuer}\n${sid}`)}`
const subIndexKey = (issuer: string, sub: string): string => `oidc-sub:${sha256(`${issuer}\n${sub}`)}`
const logoutJtiKey = (issuer: string, jti: string): string => `oidc-logout-jti:${sha256(`${issuer}\n${jti}`)}`

export class OidcSessions {
  readonly #store: KeyValueStore
  /** How long a link and its indexes are kept: the sessions' absolute timeout. */
  readonly #ttl: number

  constructor(options: { store: KeyValueStore; ttlMs: number }) {
    this.#store = options.store
    this.#ttl = options.ttlMs
  }

  /** Links a new session to its provider session; indexes first, so that a logout never misses it. */
  async record(sessionId: string, link: OidcSessionLink): Promise<void> {
    if (link.sid !== null) await this.#store.setAdd(sidIndexKey(link.issuer, link.sid), sessionId, this.#ttl)
    await this.#store.setAdd(subIndexKey(link.issuer, link.sub), sessionId, this.#ttl)
    await this.#store.set(oidcSessionKey(sessionId), JSON.stringify(link), this.#ttl)
  }

  async get(sessionId: string): Promise<OidcSessionLink | null> {
    const raw = await this.#store.get(oidcSessionKey(sessionId))
    if (raw === null) return null
    try {
      const parsed: unknown = JSON.parse(raw)
      return isLink(parsed) ? parsed : null
    } catch {
      return null
    }
  }

  /** Replaces the refresh state of a link that still exists (resolves false when it is gone). */
  async updateRefresh(sessionId: string, refresh: ProviderRefresh | null): Promise<boolean> {
    const link = await this.get(sessionId)
    if (link === null) return false
    await this.#store.set(oidcSessionKey(sessionId), JSON.stringify({ ...link, refresh }), this.#ttl)
    return true
  }

  /**
   * The ids of the sessions a logout token names: with `sid`, the sessions of that provider
   * session (and, when `sub` is given too, only if they are that user's); with `sub` alone,
   * every session of that user at this issuer. Ids of ended sessions may be among them.
   */
  async sessionIdsFor(subject: LogoutSubject): Promise<string[]> {
    if (subject.sid !== null) {
      const ids = await this.#store.setMembers(sidIndexKey(subject.issuer, subject.sid))
      if (subject.sub === null) return ids
      const links = await Promise.all(ids.map(async (id) => [id, await this.get(id)] as const))
      // A session whose link is gone is matched by sid alone: ending it again is harmless.
      return links.filter(([, link]) => link === null || link.sub === subject.sub).map(([id]) => id)
    }
    if (subject.sub !== null) return this.#store.setMembers(subIndexKey(subject.issuer, subject.sub))
    return []
  }

  /** Drops ended sessions from the indexes of `subject`. */
  async forget(subject: LogoutSubject, sessionIds: readonly string[]): Promise<void> {
    await Promise.all(
      sessionIds.flatMap((id) => [
        ...(subject.sid !== null ? [this.#store.setRemove(sidIndexKey(subject.issuer, subject.sid), id)] : []),
        ...(subject.sub !== null ? [this.#store.setRemove(subIndexKey(subject.issuer, subject.sub), id)] : []),
      ]),
    )
  }

  /**
   * Claims a logout token's `jti`: true the first time (on any replica), false for a replay.
   * Remembered for `ttlMs`, the token's remaining lifetime, after which it is refused anyway.
   */
  async claimLogoutToken(issuer: string, jti: string, ttlMs: number): Promise<boolean> {
    const { count } = await this.#store.increment(logoutJtiKey(issuer, jti), Math.max(1, ttlMs))
    return count === 1
  }
}

function isLink(value: unknown): value is OidcSessionLink {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    typeof v.provider === 'string' &&
    typeof v.issuer === 'string' &&
    typeof v.sub === 'string' &&
    (v.sid === null || typeof v.sid === 'string') &&
    (v.id_token === null || typeof v.id_token === 'string') &&
    (v.refresh === null || isRefresh(v.refresh))
  )
}

function isRefresh(value: unknown): value is ProviderRefresh {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.token === 'string' && typeof v.next_check_at === 'number'
}
