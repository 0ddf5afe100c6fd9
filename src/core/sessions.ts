import type { KeyValueStore } from '../kv/store.js'
import { readSessionAmr, type SessionAmr } from './amr.js'
import type { Clock } from './clock.js'
import { randomToken, sha256 } from './crypto.js'

/** The factors a session was started with (core/amr.ts), in the order they were used. */
export type AuthMethod = readonly SessionAmr[]

/** A browser or API session, as stored (JSON) under `session:<id>`. Timestamps are epoch milliseconds. */
export interface Session {
  /** The public id: the SHA-256 of the token, which is not itself a credential. */
  id: string
  user_id: string
  amr: AuthMethod
  created_at: number
  last_seen_at: number
  ip: string | null
  user_agent: string | null
  /** The refresh token chain this session belongs to (sessions.refresh_tokens), if any. */
  chain?: string
}

export interface ActiveSession {
  session: Session
  /** When the session ends unless used again: min(last seen + idle, created + absolute). */
  expiresAt: number
}

export interface CreatedSession extends ActiveSession {
  /** The bearer token; shown once, stored nowhere. */
  token: string
}

export interface SessionServiceOptions {
  store: KeyValueStore
  clock: Clock
  /** `sessions.idle_timeout`, milliseconds. */
  idleTimeoutMs: number
  /** `sessions.absolute_timeout`, milliseconds. */
  absoluteTimeoutMs: number
  /** Keys of records kept beside a session (e.g. its OIDC link), deleted with it. */
  companionKeys?: readonly ((sessionId: string) => string)[]
  /**
   * Told after sessions end (revoked, logged out, found expired); `sessionId` null: every
   * session of the user. Open WebSockets of those sessions are closed from here (on every
   * replica, through the invalidation bus). A rejection is ignored: the session has ended anyway.
   */
  onEnded?: (userId: string, sessionId: string | null) => Promise<void> | void
}

/** Longest user agent kept with a session. */
export const MAX_USER_AGENT_LENGTH = 256
/** `last_seen_at` is written at most this often per session (and at most every idle/10). */
export const MAX_REFRESH_INTERVAL_MS = 60_000

/** 32 random bytes in base64url, and also the shape of a SHA-256 id. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/

const sessionKey = (id: string): string => `session:${id}`
/** A refresh token chain (core/refresh-tokens.ts); revoking one of its sessions deletes it. */
export const refreshChainKey = (chainId: string): string => `refresh-chain:${chainId}`
const userIndexKey = (userId: string): string => `user-sessions:${userId}`

/**
 * Sessions on top of a KeyValueStore. A token is 32 random bytes; the store holds only its
 * SHA-256, which doubles as the public session id. Each user has an index set of their
 * session ids, so that their sessions can be listed and ended together.
 *
 * Expiry is decided here, on the injected clock, never by store TTLs (those only collect
 * garbage). The index is authoritative: a refresh that races a revocation checks the index
 * after writing and deletes the session again if it is no longer listed there, so a
 * revoked session cannot be resurrected by a concurrent request.
 */
export class SessionService {
  readonly #store: KeyValueStore
  readonly #clock: Clock
  readonly #idle: number
  readonly #absolute: number
  readonly #refreshInterval: number
  readonly #companions: readonly ((sessionId: string) => string)[]
  readonly #onEnded: NonNullable<SessionServiceOptions['onEnded']>

  constructor(options: SessionServiceOptions) {
    if (!(options.idleTimeoutMs > 0) || !(options.absoluteTimeoutMs > 0)) {
      throw new TypeError('session timeouts must be positive')
    }
    this.#store = options.store
    this.#clock = options.clock
    this.#idle = options.idleTimeoutMs
    this.#absolute = options.absoluteTimeoutMs
    this.#refreshInterval = Math.min(MAX_REFRESH_INTERVAL_MS, Math.floor(options.idleTimeoutMs / 10))
    this.#companions = options.companionKeys ?? []
    this.#onEnded = options.onEnded ?? (() => {})
  }

  /** Starts a session with a brand-new token (never reusing one, so no fixation). */
  async create(
    userId: string,
    // One method alone may be given as a string (`'pwd'`).
    options: { amr: AuthMethod | SessionAmr; ip?: string | null; userAgent?: string | null; chain?: string },
  ): Promise<CreatedSession> {
    const token = randomToken(32)
    const now = this.#clock.now()
    const session: Session = {
      id: sha256(token),
      user_id: userId,
      amr: typeof options.amr === 'string' ? [options.amr] : [...options.amr],
      created_at: now,
      last_seen_at: now,
      ip: options.ip ?? null,
      user_agent: options.userAgent?.slice(0, MAX_USER_AGENT_LENGTH) ?? null,
      ...(options.chain === undefined ? {} : { chain: options.chain }),
    }
    // Index first: a session that fails to be written leaves only a dead index member,
    // which list() prunes; the reverse would leave a live session that revokeAll misses.
    await this.#store.setAdd(userIndexKey(userId), session.id, this.#absolute)
    await this.#store.set(sessionKey(session.id), JSON.stringify(session), Math.min(this.#idle, this.#absolute))
    return { token, session, expiresAt: this.#expiresAt(session) }
  }

  /**
   * The live session for a token, or null when the token is malformed, unknown, or its
   * session has passed its idle or absolute timeout (which also deletes it). Refreshes
   * `last_seen_at` when it is older than the refresh interval.
   */
  async resolve(token: string): Promise<ActiveSession | null> {
    if (!TOKEN_SHAPE.test(token)) return null
    const id = sha256(token)
    const session = await this.#read(id)
    if (session === null) return null
    const now = this.#clock.now()
    if (this.#isExpired(session, now)) {
      await this.#remove(session, 'expired')
      return null
    }
    if (now - session.last_seen_at >= this.#refreshInterval) {
      const refreshed: Session = { ...session, last_seen_at: now }
      await this.#store.set(sessionKey(id), JSON.stringify(refreshed), this.#ttl(refreshed, now))
      const members = await this.#store.setMembers(userIndexKey(session.user_id))
      if (!members.includes(id)) {
        await this.#store.delete(sessionKey(id))
        return null
      }
      return { session: refreshed, expiresAt: this.#expiresAt(refreshed) }
    }
    return { session, expiresAt: this.#expiresAt(session) }
  }

  /** The user's live sessions, newest first; index members whose session is gone or expired are pruned. */
  async list(userId: string): Promise<ActiveSession[]> {
    const indexKey = userIndexKey(userId)
    const ids = await this.#store.setMembers(indexKey)
    const now = this.#clock.now()
    const live: ActiveSession[] = []
    await Promise.all(
      ids.map(async (id) => {
        const session = await this.#read(id)
        if (session === null || session.user_id !== userId) {
          await this.#store.setRemove(indexKey, id)
        } else if (this.#isExpired(session, now)) {
          await this.#remove(session, 'expired')
        } else {
          live.push({ session, expiresAt: this.#expiresAt(session) })
        }
      }),
    )
    return live.sort((a, b) => b.session.created_at - a.session.created_at || compare(a.session.id, b.session.id))
  }

  /**
   * Sessions held in the store, for the active-sessions gauge. Store TTLs follow each
   * session's expiry, so this counts live sessions, give or take those past their idle
   * timeout that nobody has used since (a Redis TTL lags by at most the refresh interval).
   */
  countActive(): Promise<number> {
    return this.#store.countKeys(sessionKey(''))
  }

  /** Ends one of the user's own sessions; false when it does not exist or belongs to someone else. */
  async revoke(userId: string, sessionId: string): Promise<boolean> {
    if (!TOKEN_SHAPE.test(sessionId)) return false
    const session = await this.#read(sessionId)
    if (session === null || session.user_id !== userId) return false
    return this.#remove(session, 'revoked')
  }

  /** Ends the session a token belongs to (logout); false when there is none. */
  async revokeToken(token: string): Promise<boolean> {
    if (!TOKEN_SHAPE.test(token)) return false
    const session = await this.#read(sha256(token))
    if (session === null) return false
    return this.#remove(session, 'revoked')
  }

  /**
   * Ends a session by its id, whoever it belongs to (back-channel logout), and its refresh
   * chain unless `keepChain` (a refresh replacing the session by the chain's next one);
   * resolves the ended session, or null.
   */
  async end(sessionId: string, options: { keepChain?: boolean } = {}): Promise<Session | null> {
    if (!TOKEN_SHAPE.test(sessionId)) return null
    const session = await this.#read(sessionId)
    if (session === null) return null
    return (await this.#remove(session, options.keepChain ? 'expired' : 'revoked')) ? session : null
  }

  /** A live session by its id (not refreshed), or null. */
  async get(sessionId: string): Promise<ActiveSession | null> {
    if (!TOKEN_SHAPE.test(sessionId)) return null
    const session = await this.#read(sessionId)
    if (session === null || this.#isExpired(session, this.#clock.now())) return null
    return { session, expiresAt: this.#expiresAt(session) }
  }

  /** Ends all of the user's sessions, except `except` (a session id) when given; resolves how many ended. */
  async revokeAll(userId: string, options: { except?: string } = {}): Promise<number> {
    const indexKey = userIndexKey(userId)
    const ids = (await this.#store.setMembers(indexKey)).filter((id) => id !== options.except)
    if (ids.length === 0) return 0
    // Members are removed one by one rather than deleting the set, so that a session
    // created meanwhile stays indexed. Index before record: see resolve().
    await Promise.all(ids.map((id) => this.#store.setRemove(indexKey, id)))
    // Read before deleting, for their refresh chains: ending a session ends its chain.
    const chains = (await Promise.all(ids.map((id) => this.#read(id)))).flatMap((session) => (session?.chain ? [refreshChainKey(session.chain)] : []))
    const ended = await this.#store.deleteMany(ids.map(sessionKey))
    await this.#deleteCompanions(ids)
    if (chains.length > 0) await this.#store.deleteMany(chains)
    await this.#tell(userId, options.except === undefined ? null : ids)
    return ended
  }

  async #read(id: string): Promise<Session | null> {
    const raw = await this.#store.get(sessionKey(id))
    if (raw === null) return null
    try {
      const parsed: unknown = JSON.parse(raw)
      if (!isSession(parsed) || parsed.id !== id) return null
      // Sessions stored before second factors hold `amr` as one string.
      return { ...parsed, amr: readSessionAmr(parsed.amr) ?? [] }
    } catch {
      return null
    }
  }

  /**
   * Index member first, then the record: the order resolve()'s refresh check relies on. A
   * revoked session takes its refresh chain with it; an expired one leaves it (renewing an
   * expired session is what refresh tokens are for).
   */
  async #remove(session: Session, how: 'revoked' | 'expired'): Promise<boolean> {
    await this.#store.setRemove(userIndexKey(session.user_id), session.id)
    const ended = await this.#store.delete(sessionKey(session.id))
    await this.#deleteCompanions([session.id])
    if (how === 'revoked' && session.chain !== undefined) await this.#store.delete(refreshChainKey(session.chain))
    await this.#tell(session.user_id, [session.id])
    return ended
  }

  async #deleteCompanions(ids: readonly string[]): Promise<void> {
    if (this.#companions.length === 0 || ids.length === 0) return
    await this.#store.deleteMany(ids.flatMap((id) => this.#companions.map((key) => key(id))))
  }

  async #tell(userId: string, sessionIds: readonly string[] | null): Promise<void> {
    const ids = sessionIds ?? [null]
    await Promise.all(ids.map((id) => Promise.resolve().then(() => this.#onEnded(userId, id)).catch(() => undefined)))
  }

  #isExpired(session: Session, now: number): boolean {
    return now >= session.created_at + this.#absolute || now - session.last_seen_at >= this.#idle
  }

  #expiresAt(session: Session): number {
    return Math.min(session.last_seen_at + this.#idle, session.created_at + this.#absolute)
  }

  #ttl(session: Session, now: number): number {
    return Math.max(1, this.#expiresAt(session) - now)
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function isSession(value: unknown): value is Session {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    typeof v.id === 'string' &&
    typeof v.user_id === 'string' &&
    readSessionAmr(v.amr) !== null &&
    typeof v.created_at === 'number' &&
    typeof v.last_seen_at === 'number' &&
    (v.ip === null || typeof v.ip === 'string') &&
    (v.user_agent === null || typeof v.user_agent === 'string')
  )
}
