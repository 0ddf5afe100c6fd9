/**
 * Refresh tokens for JSON logins (SPEC §3, `sessions.refresh_tokens`): a login starts a
 * chain; each refresh spends the chain's current token, ends its session and starts the next
 * one (same user, same `amr`) with a new token. A token works once: presenting a spent one
 * ends the chain and its session (reuse detection: the token leaked, and either the thief or
 * the client is using a copy). A chain lives at most `refresh_ttl` from its login; revoking
 * any of its sessions (logout, logout-all, password change, back-channel logout, …) deletes
 * it (sessions.ts), a session merely expiring does not.
 *
 * Session store records (tokens only as SHA-256):
 * - `refresh-chain:<id>`: { user_id, amr, created_at, session_id, token_hash }, until the chain ends;
 * - `refresh-token:<hash>`: the chain id, for every token of the chain, spent ones included,
 *   as long as the chain lives (so that reuse is recognised);
 * - `refresh-live:<hash>`: present while the token is unspent; deleting it is the atomic claim.
 */
import { GatehouseError } from '../errors.js'
import type { KeyValueStore } from '../kv/store.js'
import { readSessionAmr } from './amr.js'
import type { Clock } from './clock.js'
import { randomToken, sha256 } from './crypto.js'
import { refreshChainKey, type AuthMethod, type CreatedSession, type Session, type SessionService } from './sessions.js'

interface Chain {
  user_id: string
  amr: AuthMethod
  created_at: number
  session_id: string
  token_hash: string
}

export interface RefreshedSession {
  session: CreatedSession
  refreshToken: string
}

export interface RefreshTokenOptions {
  store: KeyValueStore
  sessions: SessionService
  clock: Clock
  /** `sessions.refresh_ttl`, milliseconds. */
  ttlMs: number
  /** Whether the user may still sign in (exists, not disabled). */
  isActive: (userId: string) => Promise<boolean>
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/
const tokenKey = (hash: string): string => `refresh-token:${hash}`
const liveKey = (hash: string): string => `refresh-live:${hash}`
/** Set when reuse ends a chain, so that a refresh racing with it cannot leave its new session alive. */
const revokedKey = (chainId: string): string => `refresh-revoked:${chainId}`

const invalid = (): GatehouseError => new GatehouseError('GH_INVALID_CREDENTIALS', 'The refresh token is unknown, spent or expired')

export class RefreshTokens {
  readonly #options: RefreshTokenOptions

  constructor(options: RefreshTokenOptions) {
    if (!(options.ttlMs > 0)) throw new TypeError('refresh_ttl must be positive')
    this.#options = options
  }

  /** Starts a chain for a session a JSON login has just created; resolves its first refresh token. */
  async start(session: Session): Promise<string> {
    const chainId = session.chain
    if (chainId === undefined) throw new TypeError('the session was not created with a chain id')
    const chain: Chain = { user_id: session.user_id, amr: session.amr, created_at: this.#options.clock.now(), session_id: session.id, token_hash: '' }
    return this.#issue(chainId, chain, session.id)
  }

  /**
   * Spends `token`: resolves the chain's next session and refresh token, the previous session
   * ended. Refuses (401 GH_INVALID_CREDENTIALS) an unknown, spent or expired token, a chain
   * that has ended, or a user who may no longer sign in; a spent token also ends its chain.
   */
  async refresh(token: string, context: { ip?: string | null; userAgent?: string | null } = {}): Promise<RefreshedSession> {
    const { store, sessions, clock } = this.#options
    if (!TOKEN_SHAPE.test(token)) throw invalid()
    const hash = sha256(token)
    const chainId = await store.get(tokenKey(hash))
    if (chainId === null) throw invalid()
    const chain = await this.#read(chainId)
    if (chain === null) throw invalid()
    if (clock.now() >= chain.created_at + this.#options.ttlMs) {
      await this.#endChain(chainId, chain)
      throw invalid()
    }
    // Whoever deletes the live marker spends the token; a second presentation finds it gone.
    if (chain.token_hash !== hash || !(await store.delete(liveKey(hash)))) {
      await this.#endChain(chainId, chain)
      throw invalid()
    }
    if (!(await this.#options.isActive(chain.user_id))) {
      await this.#endChain(chainId, chain)
      throw invalid()
    }
    const session = await sessions.create(chain.user_id, { amr: chain.amr, ip: context.ip, userAgent: context.userAgent, chain: chainId })
    const refreshToken = await this.#issue(chainId, chain, session.session.id)
    await sessions.end(chain.session_id, { keepChain: true })
    // Checked after writing, like sessions.ts: a reuse detected meanwhile ends what was just made.
    if ((await store.get(revokedKey(chainId))) !== null) {
      await sessions.end(session.session.id)
      throw invalid()
    }
    return { session, refreshToken }
  }

  /** Writes the chain with a new current token (and remembers the token for reuse detection). */
  async #issue(chainId: string, chain: Chain, sessionId: string): Promise<string> {
    const { store, clock } = this.#options
    const ttl = Math.max(1, chain.created_at + this.#options.ttlMs - clock.now())
    const token = randomToken(32)
    const hash = sha256(token)
    await store.set(tokenKey(hash), chainId, ttl)
    await store.set(liveKey(hash), '1', ttl)
    await store.set(refreshChainKey(chainId), JSON.stringify({ ...chain, session_id: sessionId, token_hash: hash }), ttl)
    return token
  }

  /**
   * Ends the chain and its current session. The marker comes first and the chain is read
   * again after it: a refresh that won the token meanwhile either sees the marker or has
   * already written its new session into the chain, where this finds and ends it.
   */
  async #endChain(chainId: string, chain: Chain): Promise<void> {
    const { store, sessions, clock } = this.#options
    await store.set(revokedKey(chainId), '1', Math.max(1, chain.created_at + this.#options.ttlMs - clock.now()))
    const latest = await this.#read(chainId)
    await store.delete(refreshChainKey(chainId))
    await sessions.end(chain.session_id)
    if (latest !== null && latest.session_id !== chain.session_id) await sessions.end(latest.session_id)
  }

  async #read(chainId: string): Promise<Chain | null> {
    const raw = await this.#options.store.get(refreshChainKey(chainId))
    if (raw === null) return null
    try {
      const parsed = JSON.parse(raw) as Partial<Chain>
      const amr = readSessionAmr(parsed.amr)
      if (typeof parsed.user_id !== 'string' || typeof parsed.session_id !== 'string' || typeof parsed.token_hash !== 'string' ||
        typeof parsed.created_at !== 'number' || amr === null) return null
      return { ...(parsed as Chain), amr }
    } catch {
      return null
    }
  }
}

/** A new chain id, for SessionService.create's `chain` option at a JSON login. */
export function newChainId(): string {
  return randomToken(16)
}
