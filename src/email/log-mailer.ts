/**
 * `email.smtp: log`: each message, its link included, is written to the log instead of
 * being sent. This is the one place a reset or verification token may reach a log, and only
 * because the operator asked for it (development); it never runs with an SMTP server.
 */
import type { MailMessage, Mailer } from '../core/mailer.js'

export interface MailLog {
  info(object: Record<string, unknown>, message: string): void
}

export class LogMailer implements Mailer {
  readonly #log: MailLog

  constructor(log: MailLog) {
    this.#log = log
  }

  async send(message: MailMessage): Promise<void> {
    this.#log.info(
      { email: { kind: message.kind, to: message.to, subject: message.subject, text: message.text } },
      `email (email.smtp: log, not sent): ${message.subject}`,
    )
  }
}
