/**
 * Emails are prepared and sent in the background, after the client has its answer: the
 * answer to "reset my password" must not take longer when the address has an account
 * (looking it up, issuing a link and talking to the mail server all happen here, not in the
 * request). Jobs run a few at a time; when too many wait, new ones are dropped and counted
 * as failed rather than held in memory without bound.
 */
import type { EmailKind, MailMessage, Mailer } from './mailer.js'

export const DEFAULT_EMAIL_CONCURRENCY = 4
export const DEFAULT_EMAIL_QUEUE = 200

export type EmailResult = 'sent' | 'failed'

export interface EmailOutboxOptions {
  mailer: Mailer
  /** Called once per message that was to be sent (`error` when it failed). */
  onResult: (kind: EmailKind, result: EmailResult, error?: unknown) => void
  concurrency?: number
  maxQueued?: number
}

/**
 * A job decides whether there is anything to send (null: nothing, e.g. an unknown address)
 * and builds the message; the outbox sends it.
 */
export type EmailJob = () => Promise<MailMessage | null>

export class EmailOutbox {
  readonly #mailer: Mailer
  readonly #onResult: EmailOutboxOptions['onResult']
  readonly #concurrency: number
  readonly #maxQueued: number
  readonly #queue: { kind: EmailKind; job: EmailJob }[] = []
  #running = 0
  #idle: (() => void)[] = []

  constructor(options: EmailOutboxOptions) {
    this.#mailer = options.mailer
    this.#onResult = options.onResult
    this.#concurrency = options.concurrency ?? DEFAULT_EMAIL_CONCURRENCY
    this.#maxQueued = options.maxQueued ?? DEFAULT_EMAIL_QUEUE
  }

  /** Queues the job and returns at once; its outcome is reported through `onResult`. */
  enqueue(kind: EmailKind, job: EmailJob): void {
    if (this.#queue.length >= this.#maxQueued) {
      this.#onResult(kind, 'failed', new Error('the email queue is full'))
      return
    }
    this.#queue.push({ kind, job })
    this.#next()
  }

  /** Resolves when nothing is queued or running (tests, and closing the app). */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #next(): void {
    while (this.#running < this.#concurrency) {
      const item = this.#queue.shift()
      if (item === undefined) break
      this.#running++
      void this.#run(item.kind, item.job).finally(() => {
        this.#running--
        this.#next()
        if (this.#running === 0 && this.#queue.length === 0) {
          for (const resolve of this.#idle.splice(0)) resolve()
        }
      })
    }
  }

  async #run(kind: EmailKind, job: EmailJob): Promise<void> {
    let message: MailMessage | null
    try {
      message = await job()
      if (message === null) return
      await this.#mailer.send(message)
    } catch (err) {
      this.#report(kind, 'failed', err)
      return
    }
    this.#report(message.kind, 'sent')
  }

  #report(kind: EmailKind, result: EmailResult, error?: unknown): void {
    try {
      this.#onResult(kind, result, error)
    } catch {
      // A reporting problem must not take the queue down.
    }
  }
}
