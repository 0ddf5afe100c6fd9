/**
 * Password reset and email verification through a real gateway and a real SMTP server on a
 * loopback port, whose messages are parsed with mailparser (SPEC §5, §7, §9): links are
 * absolute, work once, expire on the injected clock, and never go to an address without an
 * account; the client's answer is the same whatever the address and whatever the mail
 * server does (refusing, down, or slow), and failures are counted. Run on PGlite and
 * PostgreSQL.
 */
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { GatewayMetrics } from '../src/metrics/gateway-metrics.js'
import { assertCode } from './helpers/assert-code.js'
import { bearer, login, OTHER_PASSWORD, PASSWORD, register, uniqueEmail } from './helpers/auth-client.js'
import { databaseBackends, type DatabaseBackend } from './helpers/backends.js'
import { PUBLIC_URL, startTestGateway, type RawConfig, type TestGateway } from './helpers/gateway.js'
import { parsePrometheus } from './helpers/prometheus.js'
import { startSmtpServer, type ReceivedMail, type TestSmtpServer } from './helpers/smtp.js'

const MINUTE = 60_000
const FROM = 'Gatehouse Test <gatehouse@example.test>'

class LogLines extends Writable {
  readonly lines: string[] = []
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
    done()
  }
  text(): string {
    return this.lines.join('\n')
  }
}

interface Setup {
  gw: TestGateway
  smtp: TestSmtpServer
  clock: ManualClock
  logs: LogLines
  metrics: GatewayMetrics
}

async function setUp(t: Test, database: DatabaseBackend, configure?: (raw: RawConfig) => void): Promise<Setup> {
  const smtp = await startSmtpServer(t)
  const clock = new ManualClock(Date.now())
  const logs = new LogLines()
  const metrics = new GatewayMetrics()
  const gw = await startTestGateway(t, {
    database,
    clock,
    metrics,
    logStream: logs,
    configure: (raw) => {
      raw.logging = { level: 'info' }
      raw.auth.email_verification = 'required'
      raw.email = { smtp: smtp.url, from: FROM }
      configure?.(raw)
    },
  })
  return { gw, smtp, clock, logs, metrics }
}

/** The token of a mailed link to `path`, checking that the link is absolute and on public_url. */
function linkToken(t: Test, mail: ReceivedMail, path: string): string {
  t.equal(mail.links.length, 1, `one link in "${mail.subject}"`)
  const url = new URL(mail.links[0] ?? '')
  t.equal(url.origin + url.pathname, PUBLIC_URL + path, 'an absolute link on public_url')
  t.ok(mail.html.includes(`href="${mail.links[0]?.replace(/&/g, '&amp;')}"`), 'the HTML part has the same link')
  return url.searchParams.get('token') ?? ''
}

const localPath = (location: unknown): string => String(location)

async function emailsCounted(metrics: GatewayMetrics, kind: string, result: string): Promise<number> {
  return parsePrometheus(await metrics.exposition()).value('gatehouse_emails_total', { kind, result }) ?? NaN
}

/** A user whose address is verified (registered by the test, link followed). */
async function verifiedUser(t: Test, s: Setup, tag: string): Promise<string> {
  const email = uniqueEmail(tag)
  const mail = s.smtp.next(email)
  await register(s.gw, email)
  const token = linkToken(t, await mail, '/auth/email/verify')
  const verified = await s.gw.call('GET', `/auth/email/verify?token=${token}`)
  t.equal(verified.headers.location, '/auth/login?notice=email_verified', 'verified')
  return email
}

t.test('gatehouse_emails_total starts at 0 for every kind and result', async (t) => {
  const exposition = parsePrometheus(await new GatewayMetrics().exposition())
  for (const kind of ['reset', 'verification', 'password_changed']) {
    for (const result of ['sent', 'failed']) t.equal(exposition.value('gatehouse_emails_total', { kind, result }), 0, `${kind} ${result}: 0`)
  }
  t.equal(exposition.family('gatehouse_emails_total')?.type, 'counter')
})

for (const database of databaseBackends()) {
  t.test(`email verification (${database.name})`, async (t) => {
    const s = await setUp(t, database)
    const { gw, smtp, clock } = s

    await t.test('a link at sign-up; sign-in waits for it; it works once', async (t) => {
      const email = uniqueEmail('verify')
      const arriving = smtp.next(email)
      const user = await register(gw, email)
      t.equal(user.email_verified, false, 'a self-registered user starts unverified')
      const mail = await arriving
      t.equal(mail.from, 'gatehouse@example.test', 'from email.from')
      t.match(mail.subject, /confirm/i)
      const token = linkToken(t, mail, '/auth/email/verify')
      t.match(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes')

      const wrong = await gw.call('POST', '/auth/login', { json: { email, password: OTHER_PASSWORD } })
      assertCode(t, wrong, 401, 'GH_INVALID_CREDENTIALS', 'a wrong password stays 401')
      const unverified = await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
      assertCode(t, unverified, 403, 'GH_EMAIL_UNVERIFIED', 'the right password of an unverified user')
      t.notOk(unverified.headers['set-cookie'], 'and no session')
      const form = await gw.call('POST', '/auth/login', {
        body: new URLSearchParams({ email, password: PASSWORD, next: '/' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_URL },
      })
      t.equal(form.status, 403, 'the form login: 403')
      t.match(form.text, 'action="/auth/email/verify/resend"', 'with a way to ask for a new link')

      const tampered = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`
      const forged = await gw.call('GET', `/auth/email/verify?token=${tampered}`)
      t.equal(forged.status, 303)
      t.equal(localPath(forged.headers.location), '/auth/login?notice=verify_failed', 'a tampered link is refused')

      const followed = await gw.call('GET', `/auth/email/verify?token=${token}`)
      t.equal(followed.status, 303, 'the link: 303')
      t.equal(localPath(followed.headers.location), '/auth/login?notice=email_verified', 'to the login page, saying so')
      const session = await login(gw, email)
      const me = (await gw.call('GET', '/auth/me', { headers: bearer(session.token) })).json()
      t.equal(me.email_verified, true, '/auth/me says verified')

      const replayed = await gw.call('GET', `/auth/email/verify?token=${token}`)
      t.equal(localPath(replayed.headers.location), '/auth/login?notice=verify_failed', 'the link works once')
    })

    await t.test('a link expires after 24 hours; a new one can be asked for', async (t) => {
      const email = uniqueEmail('expire')
      const first = smtp.next(email)
      await register(gw, email)
      const old = linkToken(t, await first, '/auth/email/verify')
      clock.advance(24 * 60 * MINUTE)
      const late = await gw.call('GET', `/auth/email/verify?token=${old}`)
      t.equal(localPath(late.headers.location), '/auth/login?notice=verify_failed', 'expired at 24 h')
      assertCode(t, await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } }), 403, 'GH_EMAIL_UNVERIFIED', 'still unverified')

      const second = smtp.next(email)
      const resend = await gw.call('POST', '/auth/email/verify/resend', { json: { email } })
      t.equal(resend.status, 202, 'resend: 202')
      const fresh = linkToken(t, await second, '/auth/email/verify')
      t.not(fresh, old, 'a new link')
      clock.advance(24 * 60 * MINUTE - 1)
      const inTime = await gw.call('GET', `/auth/email/verify?token=${fresh}`)
      t.equal(localPath(inTime.headers.location), '/auth/login?notice=email_verified', 'good until its 24 hours are up')
      await login(gw, email)
    })

    await t.test('resend answers the same for any address, and mails only an unverified account', async (t) => {
      const verified = await verifiedUser(t, s, 'done')
      const unknown = uniqueEmail('nobody')
      const before = smtp.received.length
      const answers = []
      for (const email of [unknown, verified]) {
        const response = await gw.call('POST', '/auth/email/verify/resend', { json: { email } })
        answers.push({ status: response.status, body: response.text, type: response.headers['content-type'] ?? null })
      }
      t.same(answers[0], { status: 202, body: '', type: null }, 'unknown: 202, no body')
      t.same(answers[1], answers[0], 'verified: the same answer')
      await gw.emailsSettled()
      t.equal(smtp.received.length, before, 'nothing was mailed')
      t.same(smtp.to(unknown), [], 'never to an address without an account')
    })
  })

  t.test(`password reset (${database.name})`, async (t) => {
    const s = await setUp(t, database, (raw) => {
      raw.auth.lockout = { max_failures: 3, window: '15m' }
    })
    const { gw, smtp, clock, metrics } = s

    await t.test('a link that works once, ends every session, clears the lockout and says so by email', async (t) => {
      const email = await verifiedUser(t, s, 'reset')
      const phone = await login(gw, email)
      const laptop = await login(gw, email)
      for (let i = 0; i < 3; i++) await gw.call('POST', '/auth/login', { json: { email, password: 'wrong guess number ' + i } })
      assertCode(t, await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } }), 429, 'GH_RATE_LIMITED', 'locked out')

      const sentBefore = await emailsCounted(metrics, 'reset', 'sent')
      const arriving = smtp.next(email)
      const forgot = await gw.call('POST', '/auth/password/forgot', { json: { email } })
      t.equal(forgot.status, 202, 'forgot: 202')
      const mail = await arriving
      t.match(mail.subject, /reset/i)
      t.match(mail.text, '30 minutes', 'says how long the link works')
      const token = linkToken(t, mail, '/auth/password/reset')
      await gw.emailsSettled()
      t.equal(await emailsCounted(metrics, 'reset', 'sent'), sentBefore + 1, 'counted as sent')

      const page = await gw.call('GET', `/auth/password/reset?token=${token}`)
      t.equal(page.status, 200, 'the reset page')
      t.match(page.text, `name="token" value="${token}"`, 'keeps the token in the form')

      const changed = smtp.next(email)
      const reset = await gw.call('POST', '/auth/password/reset', { json: { token, new_password: OTHER_PASSWORD } })
      t.equal(reset.status, 204, 'reset: 204')
      for (const [name, session] of [['phone', phone], ['laptop', laptop]] as const) {
        assertCode(t, await gw.call('GET', '/auth/me', { headers: bearer(session.token) }), 401, 'GH_UNAUTHENTICATED', `the ${name} session ended`)
      }
      assertCode(t, await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } }), 401, 'GH_INVALID_CREDENTIALS', 'the old password')
      await login(gw, email, OTHER_PASSWORD)
      t.pass('the new password signs in: the lockout is cleared')
      const notice = await changed
      t.match(notice.subject, /changed/i, 'a password_changed email')
      t.same(notice.links.map((link) => new URL(link).pathname), ['/auth/login'], 'with an absolute link to sign in')

      const replay = await gw.call('POST', '/auth/password/reset', { json: { token, new_password: 'yet another long passphrase here' } })
      assertCode(t, replay, 400, 'GH_TOKEN_INVALID', 'a replayed link')
      const replayPage = await gw.call('GET', `/auth/password/reset?token=${token}`)
      t.equal(replayPage.status, 400, 'the page of a spent link says it no longer works')
      t.match(replayPage.text, 'no longer works')
      await login(gw, email, OTHER_PASSWORD)
    })

    await t.test('a link expires after 30 minutes', async (t) => {
      const email = await verifiedUser(t, s, 'late')
      const first = smtp.next(email)
      await gw.call('POST', '/auth/password/forgot', { json: { email } })
      const token = linkToken(t, await first, '/auth/password/reset')
      clock.advance(30 * MINUTE)
      assertCode(t, await gw.call('POST', '/auth/password/reset', { json: { token, new_password: OTHER_PASSWORD } }), 400, 'GH_TOKEN_INVALID', 'at 30 minutes')
      await login(gw, email)

      const second = smtp.next(email)
      await gw.call('POST', '/auth/password/forgot', { json: { email } })
      const fresh = linkToken(t, await second, '/auth/password/reset')
      clock.advance(30 * MINUTE - 1)
      t.equal((await gw.call('POST', '/auth/password/reset', { json: { token: fresh, new_password: OTHER_PASSWORD } })).status, 204, 'in time')
    })

    await t.test('bad input: a clear error and nothing half-done', async (t) => {
      const email = await verifiedUser(t, s, 'bad')
      const arriving = smtp.next(email)
      await gw.call('POST', '/auth/password/forgot', { json: { email } })
      const token = linkToken(t, await arriving, '/auth/password/reset')

      assertCode(t, await gw.call('POST', '/auth/password/forgot', { json: {} }), 400, 'GH_VALIDATION', 'forgot without an email')
      assertCode(t, await gw.call('POST', '/auth/password/forgot', { json: { email: '' } }), 400, 'GH_VALIDATION', 'an empty email')
      assertCode(t, await gw.call('POST', '/auth/password/forgot', { json: { email: 'not-an-address' } }), 400, 'GH_VALIDATION', 'not an address')
      assertCode(t, await gw.call('POST', '/auth/password/forgot', { json: { email: `${'a'.repeat(1100)}@example.com` } }), 400, 'GH_VALIDATION', 'too long')
      assertCode(t, await gw.call('POST', '/auth/email/verify/resend', { json: { email: 'x' } }), 400, 'GH_VALIDATION', 'resend: not an address')
      const cases: [string, unknown, string][] = [
        ['no token', { new_password: OTHER_PASSWORD }, 'GH_VALIDATION'],
        ['an empty token', { token: '', new_password: OTHER_PASSWORD }, 'GH_VALIDATION'],
        ['a malformed token', { token: 'abc', new_password: OTHER_PASSWORD }, 'GH_TOKEN_INVALID'],
        ['a tampered token', { token: token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA'), new_password: OTHER_PASSWORD }, 'GH_TOKEN_INVALID'],
        ['a short password', { token, new_password: 'short' }, 'GH_VALIDATION'],
        ['a password of 129 characters', { token, new_password: 'x'.repeat(64) + 'y'.repeat(65) }, 'GH_VALIDATION'],
        ['the email as the password', { token, new_password: email }, 'GH_VALIDATION'],
        ['mismatched confirmation', { token, new_password: OTHER_PASSWORD, new_password_confirm: `${OTHER_PASSWORD}!` }, 'GH_VALIDATION'],
        ['an unknown field', { token, new_password: OTHER_PASSWORD, email }, 'GH_VALIDATION'],
      ]
      for (const [what, json, code] of cases) {
        const response = await gw.call('POST', '/auth/password/reset', { json })
        assertCode(t, response, 400, code, what)
      }
      await login(gw, email)
      t.pass('the password is unchanged after every refusal')
      t.equal((await gw.call('POST', '/auth/password/reset', { json: { token, new_password: OTHER_PASSWORD } })).status, 204, 'and the link still works')
    })

    await t.test('forgot answers the same for any address, and mails only an account', async (t) => {
      const known = await verifiedUser(t, s, 'known')
      const unknown = uniqueEmail('unknown')
      const before = smtp.received.length
      const answer = async (email: string) => {
        const response = await gw.call('POST', '/auth/password/forgot', { json: { email } })
        return { status: response.status, body: response.text, type: response.headers['content-type'] ?? null, cookie: response.headers['set-cookie'] ?? null }
      }
      const forUnknown = await answer(unknown)
      const forKnown = await answer(known)
      t.same(forUnknown, { status: 202, body: '', type: null, cookie: null }, 'unknown: 202')
      t.same(forKnown, forUnknown, 'known: exactly the same answer')
      await gw.emailsSettled()
      t.equal(smtp.received.length, before + 1, 'one email, for the account')
      t.same(smtp.to(unknown), [], 'never to an address without an account')
    })

    await t.test('no token reaches the log in SMTP mode', async (t) => {
      const email = await verifiedUser(t, s, 'logs')
      const arriving = smtp.next(email)
      await gw.call('POST', '/auth/password/forgot', { json: { email } })
      const token = linkToken(t, await arriving, '/auth/password/reset')
      await gw.call('GET', `/auth/password/reset?token=${token}`)
      await gw.call('POST', '/auth/password/reset', { json: { token, new_password: OTHER_PASSWORD } })
      await gw.emailsSettled()
      t.ok(s.logs.lines.length > 0, 'there are log lines')
      t.notOk(s.logs.text().includes(token), 'the token is in no log line')
    })
  })
}

t.test('the mail server refusing, down or slow changes nothing the client sees (SPEC §7)', async (t) => {
  const s = await setUp(t, databaseBackends()[0]!)
  const { gw, smtp, metrics } = s
  const email = await verifiedUser(t, s, 'smtp')
  const baseline = await gw.call('POST', '/auth/password/forgot', { json: { email } })
  await gw.emailsSettled()
  t.equal(baseline.status, 202)

  await t.test('refusing: the same 202, the failure counted and logged without the link', async (t) => {
    smtp.mode = 'refuse'
    const failedBefore = await emailsCounted(metrics, 'reset', 'failed')
    const attempts = smtp.attempts
    const response = await gw.call('POST', '/auth/password/forgot', { json: { email } })
    t.same({ status: response.status, body: response.text }, { status: baseline.status, body: baseline.text }, 'the same answer')
    await gw.emailsSettled()
    t.ok(smtp.attempts > attempts, 'the server was asked, and refused')
    t.equal(await emailsCounted(metrics, 'reset', 'failed'), failedBefore + 1, 'counted as failed')
    const warning = s.logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === 'an email could not be sent')
    t.match(warning, { level: 'warn', email_kind: 'reset' }, 'logged as a warning')
    t.notMatch(JSON.stringify(warning), /token=/, 'without the link')
    smtp.mode = 'accept'
  })

  await t.test('slow: the answer does not wait for the mail server', async (t) => {
    smtp.mode = 'hold'
    const arriving = smtp.next(email)
    const delivered = smtp.to(email).length
    const response = await gw.call('POST', '/auth/password/forgot', { json: { email } })
    t.equal(response.status, 202, 'answered')
    t.equal(smtp.to(email).length, delivered, 'while the mail is not delivered yet')
    smtp.mode = 'accept'
    smtp.release()
    t.match((await arriving).subject, /reset/i, 'and it arrives once released')
  })

  await t.test('down: the same 202, verification too, and the failures counted', async (t) => {
    // A user with no live reset link yet: at most MAX_LIVE_TOKENS are mailed per user.
    const other = await verifiedUser(t, s, 'down')
    await smtp.close()
    const failedReset = await emailsCounted(metrics, 'reset', 'failed')
    const failedVerification = await emailsCounted(metrics, 'verification', 'failed')
    const forgot = await gw.call('POST', '/auth/password/forgot', { json: { email: other } })
    t.same({ status: forgot.status, body: forgot.text }, { status: baseline.status, body: baseline.text }, 'forgot: the same answer')
    const newcomer = uniqueEmail('down')
    const registered = await gw.call('POST', '/auth/register', { json: { email: newcomer, password: PASSWORD } })
    t.equal(registered.status, 201, 'registering still works')
    const resend = await gw.call('POST', '/auth/email/verify/resend', { json: { email: newcomer } })
    t.equal(resend.status, 202, 'resend: 202')
    await gw.emailsSettled()
    t.equal(await emailsCounted(metrics, 'reset', 'failed'), failedReset + 1, 'the reset counted as failed')
    t.equal(await emailsCounted(metrics, 'verification', 'failed'), failedVerification + 2, 'both verification emails counted as failed')
    await login(gw, email)
    t.pass('signing in is unaffected')
  })
})

t.test('login_rate_limit covers forgot, reset and resend (SPEC §5)', async (t) => {
  const s = await setUp(t, databaseBackends()[0]!, (raw) => {
    raw.auth.login_rate_limit = { max: 3, window: '1m' }
  })
  const email = uniqueEmail('limited')
  t.equal((await s.gw.call('POST', '/auth/password/forgot', { json: { email } })).status, 202, 'forgot: within the limit')
  t.equal((await s.gw.call('POST', '/auth/email/verify/resend', { json: { email } })).status, 202, 'resend: within the limit')
  assertCode(t, await s.gw.call('POST', '/auth/password/reset', { json: { token: 'x'.repeat(43), new_password: OTHER_PASSWORD } }), 400, 'GH_TOKEN_INVALID', 'reset: within the limit')
  for (const [path, json] of [
    ['/auth/password/forgot', { email }],
    ['/auth/email/verify/resend', { email }],
    ['/auth/password/reset', { token: 'x'.repeat(43), new_password: OTHER_PASSWORD }],
  ] as const) {
    const refused = await s.gw.call('POST', path, { json })
    assertCode(t, refused, 429, 'GH_RATE_LIMITED', `${path} over the limit`)
    t.ok(Number(refused.headers['retry-after']) >= 1, 'with Retry-After')
  }
  s.clock.advance(MINUTE)
  t.equal((await s.gw.call('POST', '/auth/password/forgot', { json: { email } })).status, 202, 'the next window')
})

t.test('email.smtp: log writes the message, link included, to the log instead', async (t) => {
  const logs = new LogLines()
  const gw = await startTestGateway(t, {
    logStream: logs,
    configure: (raw) => {
      raw.logging = { level: 'info' }
      raw.email = { smtp: 'log' }
    },
  })
  const email = uniqueEmail('logmode')
  await register(gw, email)
  await gw.emailsSettled()
  await gw.call('POST', '/auth/password/forgot', { json: { email } })
  await gw.emailsSettled()
  const messages = logs.lines
    .map((line) => JSON.parse(line) as { msg?: string; email?: { kind: string; to: string; text: string } })
    .filter((line) => line.email !== undefined)
  t.same(messages.map((line) => [line.email?.kind, line.email?.to]), [['verification', email], ['reset', email]], 'both messages are in the log')
  const link = /https:\/\/\S+/.exec(messages[1]?.email?.text ?? '')?.[0] ?? ''
  t.match(link, `${PUBLIC_URL}/auth/password/reset?token=`, 'with the absolute link')
  const token = new URL(link).searchParams.get('token') ?? ''
  t.equal((await gw.call('POST', '/auth/password/reset', { json: { token, new_password: OTHER_PASSWORD } })).status, 204, 'which works')
  const counted = parsePrometheus(await gw.metrics.exposition())
  t.equal(counted.value('gatehouse_emails_total', { kind: 'reset', result: 'sent' }), 1, 'counted as sent')
})
