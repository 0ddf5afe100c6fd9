/**
 * Outgoing email (`email` of gateway.yml): the core's Mailer over SMTP with nodemailer, or,
 * with `email.smtp: log`, into the log for development.
 */
import type { Mailer } from '../core/mailer.js'
import { LogMailer, type MailLog } from './log-mailer.js'
import { SmtpMailer } from './smtp-mailer.js'

export { LogMailer, type MailLog } from './log-mailer.js'
export { SmtpMailer } from './smtp-mailer.js'

/** The mailer `email` names; null when there is no `email` section. */
export function openMailer(email: { smtp: string; from: string } | null, log: MailLog): Mailer | null {
  if (email === null) return null
  return email.smtp === 'log' ? new LogMailer(log) : new SmtpMailer({ url: email.smtp, from: email.from })
}
