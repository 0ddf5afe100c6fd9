/**
 * Authorization requests in flight: the `state`, `nonce` and PKCE verifier of one browser's
 * sign-in, kept in the session store under a random handle that only that browser holds (in
 * a short-lived cookie). A handle is good once: taking it deletes it, so a replayed callback
 * finds nothing.
 */
import type { KeyValueStore } from '../kv/store.js'
import type { Clock } from './clock.js'
import { randomToken, sha256 } from './crypto.js'

export interface PendingLogin {
  /** The provider's name in gateway.yml. */
  provider: string
  state: string
  nonce: string
  codeVerifier: string
  /** Where to go after signing in; already made safe. */
  next: string
}

interface StoredPendingLogin extends PendingLogin {
  created_at: number
}

/** How long a browser has to come back from the provider. */
export const PENDING_LOGIN_TTL_MS = 10 * 60_000

const HANDLE_SHAPE = /^[A-Za-z0-9_-]{43}$/
/** Only the hash of a handle is a key, as for session tokens: reading the store gives no handles. */
const keyOf = (handle: string): string => `oidc-pending:${sha256(handle)}`

export class PendingLogins {
  readonly #store: KeyValueStore
  readonly #clock: Clock
  readonly #ttl: number

  constructor(options: { store: KeyValueStore; clock: Clock; ttlMs?: number }) {
    this.#store = options.store
    this.#clock = options.clock
    this.#ttl = options.ttlMs ?? PENDING_LOGIN_TTL_MS
  }

  get ttlMs(): number {
    return this.#ttl
  }

  /** Stores a new pending login; resolves the handle for the browser's cookie. */
  async begin(login: PendingLogin): Promise<string> {
    const handle = randomToken(32)
    const stored: StoredPendingLogin = { ...login, created_at: this.#clock.now() }
    await this.#store.set(keyOf(handle), JSON.stringify(stored), this.#ttl)
    return handle
  }

  /**
   * The pending login of this handle, removed so that it cannot be used again; null when the
   * handle is malformed, unknown, already taken or expired. When two requests race with the
   * same handle only the one whose delete removed it gets it.
   */
  async take(handle: string): Promise<PendingLogin | null> {
    if (!HANDLE_SHAPE.test(handle)) return null
    const key = keyOf(handle)
    const raw = await this.#store.get(key)
    if (raw === null) return null
    if (!(await this.#store.delete(key))) return null
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      return null
    }
    if (!isStored(parsed) || this.#clock.now() - parsed.created_at >= this.#ttl) return null
    const { created_at: _created, ...login } = parsed
    return login
  }
}

function isStored(value: unknown): value is StoredPendingLogin {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    typeof v.provider === 'string' &&
    typeof v.state === 'string' &&
    typeof v.nonce === 'string' &&
    typeof v.codeVerifier === 'string' &&
    typeof v.next === 'string' &&
    typeof v.created_at === 'number'
  )
}
