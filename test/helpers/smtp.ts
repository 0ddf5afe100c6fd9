/**
 * A real SMTP server on a loopback port (the smtp-server package) for the email tests: every
 * message it accepts is parsed with mailparser and kept. It can be told to refuse messages
 * (a 550 after DATA, as a server rejecting the sender would) or to hold them (to show that an
 * answer does not wait for the mail server). Closed at the test's teardown.
 */
import type { AddressInfo } from 'node:net'
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import type { Test } from 'tap'

export interface ReceivedMail {
  to: string
  from: string
  subject: string
  text: string
  html: string
  /** The absolute links in the plain-text part. */
  links: string[]
}

export interface TestSmtpServer {
  /** smtp://127.0.0.1:<port> */
  url: string
  port: number
  received: ReceivedMail[]
  /** Messages for one address, in arrival order. */
  to(address: string): ReceivedMail[]
  /** Resolves with the next message for the address (already received ones count), or rejects after `timeoutMs`. */
  next(address: string, timeoutMs?: number): Promise<ReceivedMail>
  /** 'accept' (default), 'refuse' (550 after DATA) or 'hold' (accept only when released). */
  mode: 'accept' | 'refuse' | 'hold'
  /** Accepts the messages held so far. */
  release(): void
  /** Connections that tried to deliver (accepted or not). */
  attempts: number
  close(): Promise<void>
}

function toMail(parsed: ParsedMail): ReceivedMail {
  const address = (value: ParsedMail['to'] | ParsedMail['from']): string => {
    const first = Array.isArray(value) ? value[0] : value
    return first?.value[0]?.address ?? ''
  }
  const text = parsed.text ?? ''
  return {
    to: address(parsed.to),
    from: address(parsed.from),
    subject: parsed.subject ?? '',
    text,
    html: typeof parsed.html === 'string' ? parsed.html : '',
    links: [...text.matchAll(/https?:\/\/\S+/g)].map((m) => m[0]),
  }
}

export async function startSmtpServer(t: Test): Promise<TestSmtpServer> {
  const held: (() => void)[] = []
  const waiters: { address: string; seen: number; resolve: (mail: ReceivedMail) => void }[] = []
  const state: TestSmtpServer = {
    url: '',
    port: 0,
    received: [],
    mode: 'accept',
    attempts: 0,
    to: (address) => state.received.filter((mail) => mail.to === address),
    next(address, timeoutMs = 10_000) {
      const seen = state.to(address).length
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no email for ${address} within ${timeoutMs} ms`)), timeoutMs)
        waiters.push({ address, seen, resolve: (mail) => (clearTimeout(timer), resolve(mail)) })
      })
    },
    release() {
      for (const accept of held.splice(0)) accept()
    },
    close: async () => {},
  }
  const server = new SMTPServer({
    authOptional: true,
    // Plain SMTP on loopback: the gateway's smtp:// would otherwise upgrade to STARTTLS with
    // a certificate it cannot verify.
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      state.attempts++
      const mode = state.mode
      simpleParser(stream).then(
        (parsed) => {
          if (mode === 'refuse') {
            const err = Object.assign(new Error('Message refused by the test server'), { responseCode: 550 })
            callback(err)
            return
          }
          const deliver = () => {
            const mail = toMail(parsed)
            state.received.push(mail)
            callback(null)
            for (const waiter of [...waiters]) {
              if (waiter.address === mail.to && state.to(waiter.address).length > waiter.seen) {
                waiters.splice(waiters.indexOf(waiter), 1)
                waiter.resolve(mail)
              }
            }
          }
          if (mode === 'hold') held.push(deliver)
          else deliver()
        },
        (err: Error) => callback(err),
      )
    },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.port = (server.server.address() as AddressInfo).port
  state.url = `smtp://127.0.0.1:${state.port}`
  let closed: Promise<void> | undefined
  state.close = () => {
    closed ??= new Promise<void>((resolve) => {
      state.release()
      server.close(() => resolve())
    })
    return closed
  }
  t.teardown(() => state.close())
  return state
}
