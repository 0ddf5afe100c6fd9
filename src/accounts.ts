/**
 * The services behind self-service accounts by email (password reset, email verification)
 * for one app: they need the app's log and metrics, which the runtime does not have.
 */
import { AccountTokens } from './core/account-tokens.js'
import { EmailOutbox } from './core/email-outbox.js'
import { EmailVerifications } from './core/email-verifications.js'
import { PasswordResets } from './core/password-resets.js'
import { openMailer } from './email/index.js'
import type { GatewayMetrics } from './metrics/gateway-metrics.js'
import type { Runtime } from './runtime.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's email outbox (null without `email`): tests wait for it to settle. */
    emailOutbox: EmailOutbox | null
  }
}

export interface AccountLog {
  info(object: Record<string, unknown>, message: string): void
  warn(object: Record<string, unknown>, message: string): void
}

export interface AccountServices {
  resets: PasswordResets
  verifications: EmailVerifications
  /** Null without an `email` section. */
  outbox: EmailOutbox | null
}

export function createAccountServices(runtime: Runtime, deps: { log: AccountLog; metrics: GatewayMetrics }): AccountServices {
  const { config, db, clock, users, sessions, audit } = runtime
  const mailer = openMailer(config.email, deps.log)
  const outbox =
    mailer === null
      ? null
      : new EmailOutbox({
          mailer,
          onResult(kind, result, error) {
            deps.metrics.email(kind, result)
            if (result === 'failed') {
              // The code and message only: never the message itself, which carries the link.
              const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown }
              deps.log.warn({ email_kind: kind, err: { code, message: String(message) } }, 'an email could not be sent')
            }
          },
        })
  const tokens = new AccountTokens({ db, clock })
  const publicUrl = config.server.public_url
  return {
    outbox,
    resets: new PasswordResets({ users, sessions, tokens, audit, outbox, publicUrl }),
    verifications: new EmailVerifications({ users, tokens, audit, outbox, publicUrl }),
  }
}
