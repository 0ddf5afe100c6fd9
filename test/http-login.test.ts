/**
 * POST /auth/login through the real server: the token, the cookie and its attributes, a new
 * token at every login, identical refusals, the account lockout and the per-IP limit, and
 * the revocation of the session a browser logs in over.
 */
import t from 'tap'
import { databaseBackends } from './helpers/backends.js'
import {
  assertError,
  bearer,
  login,
  meStatus,
  PASSWORD,
  register,
  sessionCookie,
  setCookies,
  signUp,
  uniqueEmail,
} from './helpers/auth-client.js'
import { startTestGateway } from './helpers/gateway.js'

const TOKEN = /^[A-Za-z0-9_-]{43}$/

t.test('POST /auth/login', async (t) => {
  const db = await databaseBackends()[0]!.open(t)
  const gw = await startTestGateway(t, { db })

  await t.test('200 with token, expires_at and user, and the __Host- cookie', async (t) => {
    const email = uniqueEmail('login')
    const user = await register(gw, email, PASSWORD, 'Lou')
    const response = await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
    t.equal(response.status, 200, response.text)
    const body = response.json<{ token: string; expires_at: string; user: Record<string, unknown> }>()
    t.same(Object.keys(body).sort(), ['expires_at', 'token', 'user'])
    t.match(body.token, TOKEN, '32 random bytes, base64url')
    t.same(body.user, user, 'the user as registered, no extra fields')
    const expires = Date.parse(body.expires_at)
    t.ok(expires > Date.now() && expires <= Date.now() + gw.config.sessions.idle_timeout + 1000, 'expires_at is the idle timeout away')

    const cookies = setCookies(response)
    t.equal(cookies.length, 1, 'one Set-Cookie')
    const [cookie] = cookies
    t.equal(cookie?.name, '__Host-gh_session')
    t.equal(cookie?.value, body.token, 'the cookie carries the same token')
    t.equal(cookie?.attributes.path, '/')
    t.equal(cookie?.attributes.httponly, true, 'HttpOnly')
    t.equal(cookie?.attributes.secure, true, 'Secure')
    t.equal(String(cookie?.attributes.samesite).toLowerCase(), 'lax', 'SameSite=Lax')
    t.notOk('domain' in (cookie?.attributes ?? {}), 'no Domain attribute (required by __Host-)')
    t.equal(response.headers['cache-control'], 'no-store')

    t.equal(await meStatus(gw, body.token), 200, 'the token works as a bearer')
    const viaCookie = await gw.call('GET', '/auth/me', { headers: sessionCookie(gw, body.token) })
    t.equal(viaCookie.status, 200, 'and as the cookie')
  })

  await t.test('emails are matched trimmed and lowercased', async (t) => {
    const email = uniqueEmail('case')
    await register(gw, email)
    for (const variant of [email.toUpperCase(), `  ${email}\t`, `\u00A0${email}`]) {
      t.equal((await login(gw, variant)).user.email, email, JSON.stringify(variant))
    }
  })

  await t.test('a new token at every login; both stay valid', async (t) => {
    const email = uniqueEmail('twice')
    await register(gw, email)
    const first = await login(gw, email)
    const second = await login(gw, email)
    t.not(first.token, second.token)
    t.equal(await meStatus(gw, first.token), 200)
    t.equal(await meStatus(gw, second.token), 200)
  })

  await t.test('unknown email, wrong password, disabled user: the same 401', async (t) => {
    const email = uniqueEmail('known')
    const user = await register(gw, email)
    const disabledEmail = uniqueEmail('disabled')
    const disabled = await register(gw, disabledEmail)
    const disabledSession = await login(gw, disabledEmail)
    await gw.runtime.users.setDisabled(disabled.id, true)

    const attempts = {
      'unknown email': { email: uniqueEmail('nobody'), password: PASSWORD },
      'wrong password': { email, password: 'not the right password at all' },
      'wrong password, other case': { email, password: PASSWORD.toUpperCase() },
      'disabled user, right password': { email: disabledEmail, password: PASSWORD },
      'not an email at all': { email: 'not-an-email', password: PASSWORD },
      'an email with a zero-width space': { email: `x\u200B${email}`, password: PASSWORD },
      '129-character password': { email, password: 'p'.repeat(129) },
      '129 code points (emoji)': { email, password: '\u{1F511}'.repeat(129) },
    }
    const bodies = new Set<string>()
    for (const [what, json] of Object.entries(attempts)) {
      const response = await gw.call('POST', '/auth/login', { json })
      assertError(t, response, 401, 'GH_INVALID_CREDENTIALS', what)
      t.equal(response.headers['set-cookie'], undefined, `${what}: no cookie`)
      bodies.add(response.text)
    }
    t.equal(bodies.size, 1, 'every refusal has the very same body')
    t.equal(await meStatus(gw, disabledSession.token), 401, "a disabled user's existing session is refused")
    await gw.runtime.users.setDisabled(disabled.id, false)
    t.ok(await login(gw, disabledEmail), 're-enabled, they log in again')
    t.ok(await login(gw, email), 'the account that saw failures still logs in')
    t.equal(user.email, email)
  })

  await t.test('a 10 000-character password is refused at once', async (t) => {
    const email = uniqueEmail('huge')
    await register(gw, email)
    const started = performance.now()
    const response = await gw.call('POST', '/auth/login', { json: { email, password: 'x'.repeat(10_000) } })
    t.ok(performance.now() - started < 1000, 'fast: no hashing')
    t.ok(response.status === 400 || response.status === 401, `refused (${response.status})`)
    assertError(t, response, response.status, response.status === 400 ? 'GH_VALIDATION' : 'GH_INVALID_CREDENTIALS')
  })

  await t.test('lockout: after 5 failures the account answers 429 with Retry-After', async (t) => {
    const email = uniqueEmail('lock')
    await register(gw, email)
    const bystander = await signUp(gw, 'bystander')
    for (let i = 1; i <= 5; i++) {
      const response = await gw.call('POST', '/auth/login', { json: { email, password: `wrong password number ${i}` } })
      assertError(t, response, 401, 'GH_INVALID_CREDENTIALS', `failure ${i}`)
    }
    const locked = await gw.call('POST', '/auth/login', { json: { email, password: 'wrong password number 6' } })
    assertError(t, locked, 429, 'GH_RATE_LIMITED', 'sixth attempt')
    const retryAfter = Number(locked.headers['retry-after'])
    t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 15 * 60, `Retry-After in seconds, within the window (${retryAfter})`)

    const right = await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
    assertError(t, right, 429, 'GH_RATE_LIMITED', 'the right password while locked')
    t.ok(right.headers['retry-after'], 'with Retry-After')
    t.equal(right.headers['set-cookie'], undefined, 'and no session')
    const otherCase = await gw.call('POST', '/auth/login', { json: { email: ` ${email.toUpperCase()}`, password: PASSWORD } })
    assertError(t, otherCase, 429, 'GH_RATE_LIMITED', 'the same account spelled differently')
    t.ok(await login(gw, bystander.user.email), 'other accounts are not locked')
  })

  await t.test('lockout applies to unknown emails alike', async (t) => {
    const email = uniqueEmail('ghost')
    const answers: number[] = []
    for (let i = 0; i < 6; i++) {
      answers.push((await gw.call('POST', '/auth/login', { json: { email, password: 'some password guess' } })).status)
    }
    t.same(answers, [401, 401, 401, 401, 401, 429])
    const late = await gw.call('POST', '/auth/login', { json: { email, password: 'some password guess' } })
    assertError(t, late, 429, 'GH_RATE_LIMITED')
    t.ok(late.headers['retry-after'])
  })

  await t.test('a login over an older session cookie ends that session', async (t) => {
    const email = uniqueEmail('fixation')
    await register(gw, email)
    const old = await login(gw, email)
    const other = await login(gw, email)
    const fresh = await login(gw, email, PASSWORD, sessionCookie(gw, old.token))
    t.not(fresh.token, old.token, 'never the token the browser came with')
    t.equal(setCookies(fresh.response)[0]?.value, fresh.token, 'the cookie is replaced')
    t.equal(await meStatus(gw, old.token), 401, 'the older session is refused')
    t.equal(await meStatus(gw, fresh.token), 200)
    t.equal(await meStatus(gw, other.token), 200, 'sessions the browser did not carry are untouched')
  })

  await t.test('a plain-http public_url gives a gh_session cookie without Secure', async (t) => {
    const http = await startTestGateway(t, { db, configure: (raw) => (raw.server.public_url = 'http://gatehouse.test') })
    const email = uniqueEmail('plain')
    await register(http, email)
    const session = await login(http, email)
    const [cookie] = setCookies(session.response)
    t.equal(cookie?.name, 'gh_session')
    t.equal(cookie?.value, session.token)
    t.equal(cookie?.attributes.path, '/')
    t.equal(cookie?.attributes.httponly, true)
    t.notOk('secure' in (cookie?.attributes ?? {}), 'no Secure')
    t.equal(String(cookie?.attributes.samesite).toLowerCase(), 'lax')
    t.notOk('domain' in (cookie?.attributes ?? {}), 'no Domain')
    const me = await http.call('GET', '/auth/me', { headers: { cookie: `gh_session=${session.token}` } })
    t.equal(me.status, 200, 'the cookie authenticates')
    const wrongName = await http.call('GET', '/auth/me', { headers: { cookie: `__Host-gh_session=${session.token}` } })
    assertError(t, wrongName, 401, 'GH_UNAUTHENTICATED', 'the https cookie name means nothing here')
  })

  await t.test('per-IP limit: login_rate_limit max 3 → the 4th attempt is 429 with Retry-After', async (t) => {
    const limited = await startTestGateway(t, {
      db,
      configure: (raw) => (raw.auth.login_rate_limit = { max: 3, window: '1m' }),
    })
    const email = uniqueEmail('ip')
    await register(gw, email)
    const first = await limited.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
    const statuses: number[] = [first.status]
    statuses.push((await limited.call('POST', '/auth/login', { json: { email, password: 'wrong but long password' } })).status)
    statuses.push((await limited.call('POST', '/auth/login', { json: { email: uniqueEmail('x'), password: PASSWORD } })).status)
    t.same(statuses, [200, 401, 401], 'three attempts of any outcome')
    const fourth = await limited.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
    assertError(t, fourth, 429, 'GH_RATE_LIMITED', 'the fourth, even with the right password')
    const retryAfter = Number(fourth.headers['retry-after'])
    t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After within the window (${retryAfter})`)
    const register4 = await limited.call('POST', '/auth/register', { json: { email: uniqueEmail('r'), password: PASSWORD } })
    assertError(t, register4, 429, 'GH_RATE_LIMITED', 'register shares the per-IP limit')
    t.ok(register4.headers['retry-after'])
    t.equal((await limited.call('GET', '/health/live')).status, 200, 'other endpoints are not limited')
    const token = first.json<{ token: string }>().token
    t.equal((await limited.call('GET', '/auth/me', { headers: bearer(token) })).status, 200, 'nor is an authenticated /auth/me')
  })
})
