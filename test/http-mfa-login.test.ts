/**
 * Second factors at login (SPEC §3, §5): TOTP enrolment (QR code, confirmation, recovery codes),
 * the two-step login for JSON and forms (mfa_token single-use, 5 minutes), TOTP's drift window
 * and single use (across replicas: the step is kept in the database), recovery codes used once,
 * failed second factors counted toward the lockout, amr in sessions and GET /auth/me, other
 * sessions ended by enrolment and removal, refresh tokens from POST /auth/login/mfa. On
 * PostgreSQL and Redis when TEST_DATABASE_URL and TEST_REDIS_URL are set (PGlite and memory
 * otherwise; edge-mfa.test.ts uses those). The gateway's clock is a ManualClock: no sleeping.
 */
import t from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { totpCode } from '../src/core/mfa/index.js'
import { assertError, bearer, login, meStatus, PASSWORD, register, setCookies, uniqueEmail } from './helpers/auth-client.js'
import { databaseBackends, sessionStoreBackends } from './helpers/backends.js'
import { startTestGateway } from './helpers/gateway.js'
import { enrolledUser, mfaLogin, passwordStep, secondStep } from './helpers/mfa-client.js'

const STEP = 30_000
const MINUTE = 60_000

interface Me {
  mfa: { totp: boolean; passkeys: number }
  auth: { amr: string[] }
}

t.test('second factors at login', async (t) => {
  // In the middle of a TOTP step, so that ±1 step is exactly one code either way.
  const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP + STEP / 2)
  // PostgreSQL and Redis when they are there (CI): the single-use rules must hold on the shared stores.
  const store = await sessionStoreBackends().at(-1)!.open(t, { clock })
  const db = await databaseBackends().at(-1)!.open(t)
  const gw = await startTestGateway(t, {
    clock,
    store,
    db,
    configure: (raw) => {
      raw.sessions = { refresh_tokens: true, refresh_ttl: '2h' }
    },
  })
  const me = async (token: string) => (await gw.call('GET', '/auth/me', { headers: bearer(token) })).json<Me>()

  await t.test('enrolment: a QR code as SVG, confirmed by a code, ten recovery codes; other sessions end', async (t) => {
    const email = uniqueEmail('enrol')
    await register(gw, email)
    const { token } = await login(gw, email)
    const other = await login(gw, email)
    t.same((await me(token)).mfa, { totp: false, passkeys: 0 })
    const started = await gw.call('POST', '/auth/mfa/totp', { headers: bearer(token) })
    t.equal(started.status, 200)
    const enrolment = started.json<{ secret: string; otpauth_url: string; qr_svg: string }>()
    t.match(enrolment.secret, /^[A-Z2-7]{32}$/, '160 bits, base32')
    t.match(enrolment.otpauth_url, /^otpauth:\/\/totp\/Gatehouse:.*secret=[A-Z2-7]+.*/)
    t.match(enrolment.otpauth_url, /algorithm=SHA1/)
    t.match(enrolment.otpauth_url, /digits=6/)
    t.match(enrolment.otpauth_url, /period=30/)
    t.match(enrolment.qr_svg, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    t.equal((await meStatus(gw, other.token)), 200, 'a pending enrolment changes nothing yet')
    t.same((await me(token)).mfa, { totp: false, passkeys: 0 }, 'not enabled before confirmation')

    const wrong = await gw.call('POST', '/auth/mfa/totp/confirm', { headers: bearer(token), json: { code: totpCode(enrolment.secret, clock.now() + 5 * STEP) } })
    assertError(t, wrong, 400, 'GH_VALIDATION', 'a wrong code does not confirm')
    const confirmed = await gw.call('POST', '/auth/mfa/totp/confirm', { headers: bearer(token), json: { code: totpCode(enrolment.secret, clock.now()) } })
    t.equal(confirmed.status, 200)
    const codes = confirmed.json<{ recovery_codes: string[] }>().recovery_codes
    t.equal(codes.length, 10)
    t.equal(new Set(codes).size, 10)
    for (const code of codes) t.match(code, /^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/)
    t.same((await me(token)).mfa, { totp: true, passkeys: 0 })
    t.equal(await meStatus(gw, token), 200, 'the enrolling session stays')
    t.equal(await meStatus(gw, other.token), 401, 'the other session has ended')

    const again = await gw.call('POST', '/auth/mfa/totp', { headers: bearer(token) })
    assertError(t, again, 400, 'GH_VALIDATION', 'a second enrolment needs the first removed')

    const rows = await gw.runtime.db.query<{ secret_sealed: string; key_id: string }>('SELECT secret_sealed, key_id FROM user_totp WHERE secret_sealed LIKE $1', ['gh1.%'])
    t.ok(rows.rows.every((row) => !row.secret_sealed.includes(enrolment.secret)), 'the secret is stored sealed')
    t.ok(rows.rows.every((row) => row.secret_sealed.split('.')[1] === row.key_id), 'with its key id')
    const hashes = await gw.runtime.db.query<{ code_hash: string }>('SELECT code_hash FROM recovery_codes')
    t.notOk(hashes.rows.some((row) => codes.includes(row.code_hash)), 'recovery codes are stored hashed')
  })

  await t.test('JSON login: the password alone gives no session, the second step does (amr pwd, otp)', async (t) => {
    const user = await enrolledUser(gw, 'json', clock.now())
    clock.advance(STEP)
    const first = await passwordStep(gw, user.email)
    t.same(first.methods, ['totp', 'recovery'])
    t.same(setCookies(first.response), [], 'no cookie after the password step')
    t.notOk('token' in first.response.json(), 'no token')
    t.match(first.mfa_token, /^[A-Za-z0-9_-]{43}$/)
    t.equal(await gw.runtime.store.get(`mfa-login:${first.mfa_token}`), null, 'the token itself is not a key')

    const answer = await secondStep(gw, first.mfa_token, { code: totpCode(user.secret, clock.now()) })
    t.equal(answer.status, 200)
    const body = answer.json<{ token: string; refresh_token?: string; user: { id: string } }>()
    t.equal(body.user.id, user.id)
    t.type(body.refresh_token, 'string', 'a refresh token, like /auth/login')
    t.equal(setCookies(answer).length, 1, 'the session cookie')
    t.same((await me(body.token)).auth.amr, ['pwd', 'otp'])
    const refreshed = await gw.call('POST', '/auth/refresh', { json: { refresh_token: body.refresh_token } })
    t.equal(refreshed.status, 200)
    t.same((await me(refreshed.json<{ token: string }>().token)).auth.amr, ['pwd', 'otp'], 'a refreshed session keeps its amr')

    const reused = await secondStep(gw, first.mfa_token, { code: totpCode(user.secret, clock.now() + STEP) })
    assertError(t, reused, 401, 'GH_INVALID_CREDENTIALS', 'an mfa_token finishes one login')
  })

  await t.test('TOTP: one step of drift either way, never two; each code once', async (t) => {
    const user = await enrolledUser(gw, 'drift', clock.now())
    clock.advance(10 * STEP)
    const now = clock.now()
    const tryCode = async (at: number) => secondStep(gw, (await passwordStep(gw, user.email)).mfa_token, { code: totpCode(user.secret, at) })
    assertError(t, await tryCode(now - 2 * STEP), 401, 'GH_INVALID_CREDENTIALS', 'two steps behind')
    assertError(t, await tryCode(now + 2 * STEP), 401, 'GH_INVALID_CREDENTIALS', 'two steps ahead')
    t.equal((await tryCode(now - STEP)).status, 200, 'one step behind')
    assertError(t, await tryCode(now - STEP), 401, 'GH_INVALID_CREDENTIALS', 'the same code again')
    t.equal((await tryCode(now)).status, 200, 'the current step')
    assertError(t, await tryCode(now), 401, 'GH_INVALID_CREDENTIALS', 'replayed')
    assertError(t, await tryCode(now - STEP), 401, 'GH_INVALID_CREDENTIALS', 'an older step after a newer one')
    t.equal((await tryCode(now + STEP)).status, 200, 'one step ahead')
    // A second replica on the same database: the used step is in the database, not in memory.
    const replica = await startTestGateway(t, { clock, db: gw.runtime.db, store })
    const { mfa_token } = await passwordStep(replica, user.email)
    assertError(t, await secondStep(replica, mfa_token, { code: totpCode(user.secret, now + STEP) }), 401, 'GH_INVALID_CREDENTIALS', 'replayed on another replica')
  })

  await t.test('mfa_token: 5 minutes, exactly one factor, unknown tokens refused', async (t) => {
    const user = await enrolledUser(gw, 'token', clock.now())
    clock.advance(STEP)
    const { mfa_token } = await passwordStep(gw, user.email)
    assertError(t, await secondStep(gw, mfa_token, {}), 400, 'GH_VALIDATION', 'no factor')
    assertError(t, await secondStep(gw, mfa_token, { code: '123456', recovery_code: user.recoveryCodes[0] }), 400, 'GH_VALIDATION', 'two factors')
    assertError(t, await secondStep(gw, 'A'.repeat(43), { code: totpCode(user.secret, clock.now()) }), 401, 'GH_INVALID_CREDENTIALS', 'unknown token')
    clock.advance(5 * MINUTE)
    assertError(t, await secondStep(gw, mfa_token, { code: totpCode(user.secret, clock.now()) }), 401, 'GH_INVALID_CREDENTIALS', 'expired')
  })

  await t.test('recovery codes: each works once (amr pwd, rcv); regenerated with the password', async (t) => {
    const user = await enrolledUser(gw, 'recovery', clock.now())
    const [code] = user.recoveryCodes as [string]
    const first = await secondStep(gw, (await passwordStep(gw, user.email)).mfa_token, { recovery_code: code.toUpperCase() })
    t.equal(first.status, 200, 'typed in capitals, still the code')
    t.same((await me(first.json<{ token: string }>().token)).auth.amr, ['pwd', 'rcv'])
    assertError(t, await secondStep(gw, (await passwordStep(gw, user.email)).mfa_token, { recovery_code: code }), 401, 'GH_INVALID_CREDENTIALS', 'spent')

    assertError(t, await gw.call('POST', '/auth/mfa/recovery-codes', { headers: bearer(user.token), json: { password: 'not the password at all' } }), 401, 'GH_INVALID_CREDENTIALS')
    const renewed = await gw.call('POST', '/auth/mfa/recovery-codes', { headers: bearer(user.token), json: { password: PASSWORD } })
    t.equal(renewed.status, 200)
    t.equal(renewed.json<{ recovery_codes: string[] }>().recovery_codes.length, 10)
    const old = user.recoveryCodes[1] as string
    assertError(t, await secondStep(gw, (await passwordStep(gw, user.email)).mfa_token, { recovery_code: old }), 401, 'GH_INVALID_CREDENTIALS', 'the old codes are void')
  })

  await t.test('failed second factors count toward the lockout, and a right password does not clear them', async (t) => {
    const user = await enrolledUser(gw, 'lockout', clock.now())
    clock.advance(STEP)
    for (let i = 0; i < 3; i++) {
      const { mfa_token } = await passwordStep(gw, user.email)
      assertError(t, await secondStep(gw, mfa_token, { code: '000000' }), 401, 'GH_INVALID_CREDENTIALS')
    }
    const { mfa_token } = await passwordStep(gw, user.email)
    assertError(t, await secondStep(gw, mfa_token, { code: '000001' }), 401, 'GH_INVALID_CREDENTIALS')
    assertError(t, await secondStep(gw, mfa_token, { recovery_code: 'aaaa-aaaa-aaaa-aaaa' }), 401, 'GH_INVALID_CREDENTIALS', 'the fifth failure locks')
    assertError(t, await secondStep(gw, mfa_token, { code: totpCode(user.secret, clock.now()) }), 429, 'GH_RATE_LIMITED', 'even the right code, once locked')
    assertError(t, await gw.call('POST', '/auth/login', { json: { email: user.email, password: PASSWORD } }), 429, 'GH_RATE_LIMITED', 'and the password step')
    const metrics = await gw.metrics.registry.getSingleMetricAsString('gatehouse_mfa_attempts_total')
    t.match(metrics, /gatehouse_mfa_attempts_total\{method="totp",result="failure"\} [1-9]/)
    t.match(metrics, /gatehouse_mfa_attempts_total\{method="webauthn",result="success"\} 0/, 'every series from the start')
    // (When the lockout ends is the login throttle's rule, tested in core-login-throttle: Redis
    // counts that window on its own clock, which this test's ManualClock does not move.)
  })

  await t.test('removing TOTP needs the password, ends other sessions, and the login is one step again', async (t) => {
    const user = await enrolledUser(gw, 'remove', clock.now())
    clock.advance(STEP)
    const other = await mfaLogin(gw, user.email, user.secret, clock.now())
    assertError(t, await gw.call('DELETE', '/auth/mfa/totp', { headers: bearer(user.token), json: { password: 'not the password at all' } }), 401, 'GH_INVALID_CREDENTIALS')
    t.equal(await meStatus(gw, other), 200)
    const removed = await gw.call('DELETE', '/auth/mfa/totp', { headers: bearer(user.token), json: { password: PASSWORD } })
    t.equal(removed.status, 204)
    t.equal(await meStatus(gw, other), 401, 'the other session has ended')
    t.same((await me(user.token)).mfa, { totp: false, passkeys: 0 })
    const { token } = await login(gw, user.email)
    t.same((await me(token)).auth.amr, ['pwd'])
    const count = await gw.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM recovery_codes WHERE user_id = $1', [user.id])
    t.equal(count.rows[0]?.n, 0, 'recovery codes go with the last factor')
    const audit = await gw.runtime.audit.list({ limit: 20, userId: user.id })
    t.ok(audit.some((e) => e.type === 'mfa.totp_enrolled') && audit.some((e) => e.type === 'mfa.totp_removed'), 'audited')
  })

  await t.test('form login: a second page with the mfa_token, then 303 to next with the cookie', async (t) => {
    const user = await enrolledUser(gw, 'form', clock.now())
    clock.advance(STEP)
    const form = (body: Record<string, string>) => ({
      body: new URLSearchParams(body).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://gatehouse.test' },
    })
    const page = await gw.call('POST', '/auth/login', form({ email: user.email, password: PASSWORD, next: '/app/x' }))
    t.equal(page.status, 200)
    t.same(setCookies(page), [], 'no session yet')
    const token = /name="mfa_token" value="([A-Za-z0-9_-]{43})"/.exec(page.text)?.[1]
    t.ok(token, 'the mfa_token in a hidden field')
    t.match(page.text, /name="code"/)
    const wrong = await gw.call('POST', '/auth/login/mfa', form({ mfa_token: token!, code: '000000', next: '/app/x' }))
    t.equal(wrong.status, 401)
    t.match(wrong.text, /name="mfa_token"/, 'the second page again')
    const done = await gw.call('POST', '/auth/login/mfa', form({ mfa_token: token!, code: totpCode(user.secret, clock.now()), next: '//evil.example' }))
    t.equal(done.status, 303)
    t.equal(done.headers.location, '/app/x', 'next from the login, not from the second post')
    t.equal(setCookies(done).length, 1)
  })
})
