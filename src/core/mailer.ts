/** What the core needs of outgoing email: one message at a time, to one recipient. */

/** The messages the gateway sends (the `kind` label of gatehouse_emails_total). */
export type EmailKind = 'reset' | 'verification' | 'password_changed'
export const EMAIL_KINDS: readonly EmailKind[] = ['reset', 'verification', 'password_changed']

export interface MailMessage {
  kind: EmailKind
  to: string
  subject: string
  /** The plain-text part; every link in it is absolute. */
  text: string
  /** The HTML part, saying the same as the text. */
  html: string
}

export interface Mailer {
  /** Resolves once the server accepted the message; rejects when it could not be handed over. */
  send(message: MailMessage): Promise<void>
}
