/**
 * Email verification (SPEC §5): a single-use link, good for 24 hours, mailed at sign-up and
 * on request (the same answer for any address); following it marks the user verified. With
 * `auth.email_verification: required`, UserService refuses a password sign-in until then.
 */
import { verificationEmail } from './account-emails.js'
import type { AccountTokens } from './account-tokens.js'
import type { AuditLog } from './audit.js'
import { normalizeEmail } from './email.js'
import type { EmailOutbox } from './email-outbox.js'
import type { AuditContext, UserService } from './users.js'

export interface EmailVerificationsOptions {
  users: UserService
  tokens: AccountTokens
  audit: AuditLog
  /** Null when no `email` is configured: nothing is sent. */
  outbox: EmailOutbox | null
  publicUrl: string
}

export class EmailVerifications {
  readonly #options: EmailVerificationsOptions

  constructor(options: EmailVerificationsOptions) {
    this.#options = options
  }

  get enabled(): boolean {
    return this.#options.outbox !== null
  }

  /** Queues a link for a user who just registered (nothing when already verified). */
  sendFor(user: { id: string; email: string; email_verified: boolean }, context: AuditContext = {}): void {
    if (user.email_verified) return
    this.#queue(user.email, context)
  }

  /** Queues a new link when the address belongs to an enabled, unverified user; GH_VALIDATION only for a malformed address. */
  resend(email: string, context: AuditContext = {}): void {
    this.#queue(normalizeEmail(email), context)
  }

  /** Spends the link and marks its user verified; false for a malformed, unknown, spent or expired link. */
  async verify(token: string, context: AuditContext = {}): Promise<boolean> {
    const { tokens, users } = this.#options
    const userId = await tokens.peek(token, 'email_verification')
    if (userId === null) return false
    return users.markEmailVerified(userId, tokens.claimer(token, 'email_verification', userId), context)
  }

  #queue(address: string, context: AuditContext): void {
    const { outbox, users, tokens, audit, publicUrl } = this.#options
    outbox?.enqueue('verification', async () => {
      const user = await users.getByEmail(address)
      if (user === null || user.disabled || user.email_verified) return null
      const token = await tokens.issue(user.id, 'email_verification')
      if (token === null) return null
      await audit.record('email.verification_sent', { userId: user.id, email: user.email, ip: context.ip })
      return verificationEmail(publicUrl, user.email, token)
    })
  }
}
