/**
 * Signing in with a passkey alone (SPEC §3, `auth.mfa.passkey_login`): the credential names
 * the user, user verification is required, and the result counts as having a second factor
 * (amr ["hwk","user"]). The same account rules as a password login apply around it: the
 * per-IP login limit, the account lockout, a disabled user refused like an unknown one, and
 * `email_verification: required`.
 */
import { GatehouseError, isGatehouseError } from '../errors.js'
import type { AuditLog } from './audit.js'
import type { LoginThrottle } from './login-throttle.js'
import type { PasskeyService } from './passkeys.js'
import type { User, UserService } from './users.js'

/** The `amr` of a passkey-only sign-in: the passkey, and the user verification it carried. */
export const PASSKEY_SIGN_IN_AMR = ['hwk', 'user'] as const

export interface PasskeySignInOptions {
  passkeys: PasskeyService
  users: Pick<UserService, 'isActive'>
  throttle: Pick<LoginThrottle, 'hitIp' | 'checkAccount'>
  audit: AuditLog
  emailVerification: 'off' | 'required'
}

export class PasskeySignIn {
  readonly #options: PasskeySignInOptions

  constructor(options: PasskeySignInOptions) {
    this.#options = options
  }

  /** Options for navigator.credentials.get(); counted against the per-IP login limit. */
  async options(ip: string) {
    await this.#options.throttle.hitIp(ip)
    return this.#options.passkeys.loginOptions()
  }

  /**
   * The user the assertion proves, or GH_INVALID_CREDENTIALS (an unknown or foreign passkey, a
   * bad signature, a spent challenge, a disabled or deleted user: one answer, the reason in the
   * audit trail), GH_RATE_LIMITED, GH_EMAIL_UNVERIFIED.
   */
  async verify(response: unknown, ip: string): Promise<User> {
    const { passkeys, users, throttle, audit } = this.#options
    await throttle.hitIp(ip)
    let userId: string
    try {
      userId = (await passkeys.verifyLogin(response)).userId
    } catch (err) {
      if (isGatehouseError(err) && err.code === 'GH_INVALID_CREDENTIALS') {
        await audit.record('login.failed', { ip, details: { reason: err.reason ?? 'passkey', method: 'passkey' } })
      }
      throw err
    }
    const user = await users.isActive(userId)
    if (user === null) {
      await audit.record('login.failed', { userId, ip, details: { reason: 'disabled', method: 'passkey' } })
      throw new GatehouseError('GH_INVALID_CREDENTIALS', 'The passkey was not accepted', { reason: 'disabled' })
    }
    await throttle.checkAccount(user.email)
    if (this.#options.emailVerification === 'required' && !user.email_verified) {
      await audit.record('login.failed', { userId, email: user.email, ip, details: { reason: 'email_unverified', method: 'passkey' } })
      throw new GatehouseError('GH_EMAIL_UNVERIFIED', 'Confirm your email address first: follow the link we sent you, or ask for a new one.')
    }
    await audit.record('login.succeeded', { userId, email: user.email, ip, details: { amr: [...PASSKEY_SIGN_IN_AMR] } })
    return user
  }
}
