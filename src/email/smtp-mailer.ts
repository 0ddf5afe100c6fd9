/**
 * Sending over SMTP with nodemailer: one connection per message (the gateway sends few, and
 * a pool would hold a connection to a server that may restart), STARTTLS when the server
 * offers it on smtp://, TLS from the start on smtps://, and timeouts so that a silent server
 * cannot hold an outbox slot for ever.
 */
import type { Transporter, TransportOptions } from 'nodemailer'
import type { MailMessage, Mailer } from '../core/mailer.js'

const CONNECTION_TIMEOUT_MS = 10_000
const GREETING_TIMEOUT_MS = 10_000
const SOCKET_TIMEOUT_MS = 30_000

/**
 * An SMTP failure as it may be logged: nodemailer's code and message, which name the host
 * and the server's reply but never the URL's password.
 */
export class SmtpError extends Error {
  readonly code: string | undefined
  constructor(message: string, code: string | undefined) {
    super(message)
    this.name = 'SmtpError'
    this.code = code
  }
}

export class SmtpMailer implements Mailer {
  readonly #options: TransportOptions & Record<string, unknown>
  readonly #from: string
  /** nodemailer is loaded with the first message: a gateway that sends none does not carry it. */
  #transport: Promise<Transporter> | null = null

  constructor(options: { url: string; from: string }) {
    const url = new URL(options.url)
    const secure = url.protocol === 'smtps:'
    this.#from = options.from
    this.#options = {
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port === '' ? (secure ? 465 : 587) : Number(url.port),
      secure,
      ...(url.username !== '' ? { auth: { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } } : {}),
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      greetingTimeout: GREETING_TIMEOUT_MS,
      socketTimeout: SOCKET_TIMEOUT_MS,
      // No logging of the SMTP dialogue: it would carry the messages, and so the links.
      logger: false,
      debug: false,
    }
  }

  async send(message: MailMessage): Promise<void> {
    try {
      this.#transport ??= import('nodemailer').then(({ default: nodemailer }) => nodemailer.createTransport(this.#options))
      await (await this.#transport).sendMail({ from: this.#from, to: message.to, subject: message.subject, text: message.text, html: message.html })
    } catch (err) {
      const { message: text, code } = err as { message?: string; code?: string }
      throw new SmtpError(String(text ?? 'sending failed'), code)
    }
  }
}
