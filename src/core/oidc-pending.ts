/**
 * Authorization requests in flight: the `state`, `nonce` and PKCE verifier of one browser's
 * sign-in, kept in the session store under a random handle that only that browser holds (in
 * a short-lived cookie). A handle is good once: taking it deletes it, so a replayed callback
 * finds nothing.
 */
import type { KeyValueStore } from '../kv/store.js'
import type { Clock } from './clock.js'
import { randomToken, sha256 } from './crypto.js'
import { SingleUseRecords } from './single-use-records.js'

export interface PendingLogin {
  /** The provider's name in gateway.yml. */
  provider: string
  state: string
  nonce: string
  codeVerifier: string
  /** Where to go after signing in; already made safe. */
  next: string
}

/** How long a browser has to come back from the provider. */
export const PENDING_LOGIN_TTL_MS = 10 * 60_000

const HANDLE_SHAPE = /^[A-Za-z0-9_-]{43}$/

export class PendingLogins {
  readonly #records: SingleUseRecords<PendingLogin>

  constructor(options: { store: KeyValueStore; clock: Clock; ttlMs?: number }) {
    this.#records = new SingleUseRecords<PendingLogin>({
      store: options.store,
      clock: options.clock,
      ttlMs: options.ttlMs ?? PENDING_LOGIN_TTL_MS,
      // Only the hash of a handle is a key, as for session tokens: reading the store gives no handles.
      prefix: 'oidc-pending',
      isRecord: (v) =>
        typeof v.provider === 'string' &&
        typeof v.state === 'string' &&
        typeof v.nonce === 'string' &&
        typeof v.codeVerifier === 'string' &&
        typeof v.next === 'string',
    })
  }

  get ttlMs(): number {
    return this.#records.ttlMs
  }

  /** Stores a new pending login; resolves the handle for the browser's cookie. */
  async begin(login: PendingLogin): Promise<string> {
    const handle = randomToken(32)
    await this.#records.put(sha256(handle), login)
    return handle
  }

  /**
   * The pending login of this handle, removed so that it cannot be used again; null when the
   * handle is malformed, unknown, already taken or expired. When two requests race with the
   * same handle only the one whose delete removed it gets it.
   */
  async take(handle: string): Promise<PendingLogin | null> {
    if (!HANDLE_SHAPE.test(handle)) return null
    return this.#records.take(sha256(handle))
  }
}
