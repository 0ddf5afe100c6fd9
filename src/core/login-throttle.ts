import { GatehouseError } from '../errors.js'
import type { CounterState, KeyValueStore } from '../kv/store.js'
import { sha256 } from './crypto.js'

export interface LoginThrottleOptions {
  store: KeyValueStore
  /** `auth.lockout`: failures per account within `window` milliseconds. */
  lockout: { max_failures: number; window: number }
  /** `auth.login_rate_limit`: login, register and OIDC attempts per IP within `window` milliseconds. */
  loginRateLimit: { max: number; window: number }
  /**
   * Where the per-IP attempts are counted. Default: `store`. The runtime passes a counter that
   * keeps counting in the process while the store is down, since registering needs only the
   * database (an account lockout, like a session, needs the store).
   */
  ipCounter?: { increment(key: string, windowMs: number): Promise<CounterState> }
  /** Called once each time an account becomes locked (for `gatehouse_login_lockouts_total`). */
  onLockout?: () => void
}

function rateLimited(resetInMs: number, reason: 'locked' | 'ip_rate_limited'): GatehouseError {
  return new GatehouseError('GH_RATE_LIMITED', undefined, {
    retryAfter: Math.max(1, Math.ceil(resetInMs / 1000)),
    reason,
  })
}

/**
 * Login protection counted in the session store (so replicas share it): an account lockout
 * after `max_failures` failures in a fixed window, for accounts that exist and those that do
 * not alike (so a lockout reveals nothing), and a per-IP attempt limit.
 *
 * Account keys hold the SHA-256 of the email, so the store never holds addresses.
 */
export class LoginThrottle {
  readonly #store: KeyValueStore
  readonly #lockout: { max_failures: number; window: number }
  readonly #loginRateLimit: { max: number; window: number }
  readonly #onLockout: (() => void) | undefined
  readonly #ipCounter: NonNullable<LoginThrottleOptions['ipCounter']>

  constructor(options: LoginThrottleOptions) {
    this.#store = options.store
    this.#ipCounter = options.ipCounter ?? options.store
    this.#lockout = options.lockout
    this.#loginRateLimit = options.loginRateLimit
    this.#onLockout = options.onLockout
  }

  /** Throws GH_RATE_LIMITED (with `retryAfter`) while the account is locked out. */
  async checkAccount(email: string): Promise<void> {
    const state = await this.#store.peek(accountKey(email))
    if (state.count >= this.#lockout.max_failures) throw rateLimited(state.resetInMs, 'locked')
  }

  /** Counts a failed attempt; resolves true when this failure locked the account. */
  async recordFailure(email: string): Promise<boolean> {
    const state = await this.#store.increment(accountKey(email), this.#lockout.window)
    const locked = state.count === this.#lockout.max_failures
    if (locked) this.#onLockout?.()
    return locked
  }

  /** Forgets the account's failures (after a successful login). */
  async clear(email: string): Promise<void> {
    await this.#store.delete(accountKey(email))
  }

  /**
   * Counts one login, register or OIDC attempt from `ip`, and throws GH_RATE_LIMITED once
   * there are more than `login_rate_limit.max` in the window. The HTTP layer calls it before
   * any hashing is done for the request.
   */
  async hitIp(ip: string): Promise<void> {
    const state = await this.#ipCounter.increment(`login-ip:${ip}`, this.#loginRateLimit.window)
    if (state.count > this.#loginRateLimit.max) throw rateLimited(state.resetInMs, 'ip_rate_limited')
  }
}

function accountKey(email: string): string {
  return `lockout:${sha256(email)}`
}
