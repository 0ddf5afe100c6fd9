/**
 * Password reset by email (SPEC §5): a request answers the same, at once, for any address
 * (the lookup and the email happen in the outbox, after the answer); a link is single-use,
 * 30 minutes, stored hashed; a reset replaces the password, ends every session of the user,
 * clears the lockout and tells the user by email.
 */
import { GatehouseError } from '../errors.js'
import { passwordChangedEmail, resetEmail } from './account-emails.js'
import type { AccountTokens } from './account-tokens.js'
import type { AuditLog } from './audit.js'
import { normalizeEmail } from './email.js'
import type { EmailOutbox } from './email-outbox.js'
import type { SessionService } from './sessions.js'
import type { AuditContext, User, UserService } from './users.js'

export interface PasswordResetsOptions {
  users: UserService
  sessions: SessionService
  tokens: AccountTokens
  audit: AuditLog
  /** Null when no `email` is configured: requests are answered, nothing is sent. */
  outbox: EmailOutbox | null
  publicUrl: string
}

export class PasswordResets {
  readonly #options: PasswordResetsOptions

  constructor(options: PasswordResetsOptions) {
    this.#options = options
  }

  /** Whether links can be mailed at all (the pages offer "forgot password" only then). */
  get enabled(): boolean {
    return this.#options.outbox !== null
  }

  /**
   * Queues a reset link for the address, if it belongs to an enabled user. Throws only for
   * an address that is not one (GH_VALIDATION), which says nothing about any account.
   */
  request(email: string, context: AuditContext = {}): void {
    const address = normalizeEmail(email)
    const { outbox, users, tokens, audit, publicUrl } = this.#options
    outbox?.enqueue('reset', async () => {
      const user = await users.getByEmail(address)
      if (user === null || user.disabled) return null
      const token = await tokens.issue(user.id, 'password_reset')
      if (token === null) return null
      await audit.record('password.reset_requested', { userId: user.id, email: user.email, ip: context.ip })
      return resetEmail(publicUrl, user.email, token)
    })
  }

  /** Whether the link is still good (the reset page shows the form only then). */
  async isLive(token: string): Promise<boolean> {
    return (await this.#options.tokens.peek(token, 'password_reset')) !== null
  }

  /**
   * Sets the new password with a live link: GH_TOKEN_INVALID for a link that is malformed,
   * unknown, spent or expired; GH_VALIDATION for a password the policy refuses (the link
   * stays good). Every session of the user ends and their lockout is cleared.
   */
  async reset(token: string, newPassword: string, context: AuditContext = {}): Promise<User> {
    const { tokens, users, sessions, outbox, publicUrl } = this.#options
    const userId = await tokens.peek(token, 'password_reset')
    if (userId === null) throw new GatehouseError('GH_TOKEN_INVALID')
    const user = await users.resetPassword(userId, newPassword, tokens.claimer(token, 'password_reset', userId), context)
    await sessions.revokeAll(user.id)
    outbox?.enqueue('password_changed', async () => passwordChangedEmail(publicUrl, user.email))
    return user
  }
}
