/**
 * Sessions through the real server: logout and logout-all, listing and revoking sessions by
 * id (never another user's), and expiry driven by an injected clock: the idle timeout, the
 * activity that defers it, the absolute timeout that nothing defers, and the lockout window.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { databaseBackends } from './helpers/backends.js'
import {
  assertError,
  bearer,
  browser,
  cookieName,
  isCleared,
  login,
  meStatus,
  PASSWORD,
  register,
  sessionCookie,
  setCookies,
  signUp,
  uniqueEmail,
} from './helpers/auth-client.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'

interface SessionItem {
  id: string
  method: string
  created_at: string
  last_seen_at: string
  expires_at: string
  ip: string | null
  user_agent: string | null
  current: boolean
}

async function listSessions(gw: TestGateway, token: string): Promise<SessionItem[]> {
  const response = await gw.call('GET', '/auth/sessions', { headers: bearer(token) })
  if (response.status !== 200) throw new Error(`GET /auth/sessions: ${response.status} ${response.text}`)
  return response.json<{ items: SessionItem[] }>().items
}

const MINUTE = 60_000

t.test('sessions', async (t) => {
  const db = await databaseBackends()[0]!.open(t)
  const gw = await startTestGateway(t, { db })

  await t.test('POST /auth/logout: 204, the cookie cleared, the token refused', async (t) => {
    const email = uniqueEmail('logout')
    await register(gw, email)
    const leaving = await login(gw, email)
    const staying = await login(gw, email)
    const response = await gw.call('POST', '/auth/logout', { headers: browser(gw, leaving.token) })
    t.equal(response.status, 204, response.text)
    t.equal(response.text, '')
    const [cleared] = setCookies(response)
    t.equal(cleared?.name, cookieName(gw))
    t.equal(cleared?.value, '')
    t.ok(cleared && isCleared(cleared), 'Max-Age=0 or an expiry in the past')
    t.equal(cleared?.attributes.path, '/', 'the same Path, or the browser keeps the cookie')
    t.equal(await meStatus(gw, leaving.token), 401, 'the old token is refused as a bearer')
    assertError(t, await gw.call('GET', '/auth/me', { headers: sessionCookie(gw, leaving.token) }), 401, 'GH_UNAUTHENTICATED', 'and as a cookie')
    t.equal(await meStatus(gw, staying.token), 200, "the user's other session is untouched")
    assertError(t, await gw.call('POST', '/auth/logout', { headers: bearer(leaving.token) }), 401, 'GH_UNAUTHENTICATED', 'a second logout')

    const byBearer = await gw.call('POST', '/auth/logout', { headers: bearer(staying.token) })
    t.equal(byBearer.status, 204, 'logout by bearer needs no Origin')
    t.equal(await meStatus(gw, staying.token), 401)
    assertError(t, await gw.call('POST', '/auth/logout'), 401, 'GH_UNAUTHENTICATED', 'logout without a session')
  })

  await t.test('POST /auth/logout as a plain form (a "Sign out" button): 303 to the login page; another origin refused', async (t) => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' }
    const email = uniqueEmail('logout-form')
    await register(gw, email)
    const leaving = await login(gw, email)
    const crossSite = await gw.call('POST', '/auth/logout', {
      body: '',
      headers: { ...sessionCookie(gw, leaving.token), ...form, origin: 'https://evil.example' },
    })
    assertError(t, crossSite, 403, 'GH_CSRF', 'a form on another origin cannot sign the user out')
    t.equal(await meStatus(gw, leaving.token), 200, 'the session survived the cross-site post')

    const response = await gw.call('POST', '/auth/logout', { body: 'anything=ignored', headers: { ...browser(gw, leaving.token), ...form } })
    t.equal(response.status, 303, response.text)
    t.equal(response.headers.location, '/auth/login')
    t.ok(setCookies(response).some((c) => c.name === cookieName(gw) && isCleared(c)), 'the cookie is cleared')
    t.equal(await meStatus(gw, leaving.token), 401, 'the session has ended')

    const other = await login(gw, email)
    const all = await gw.call('POST', '/auth/logout-all', { body: '', headers: { ...browser(gw, other.token), ...form } })
    t.equal(all.status, 303)
    t.equal(await meStatus(gw, other.token), 401)
    assertError(t, await gw.call('POST', '/auth/logout', { body: 'x=1', headers: { ...bearer(other.token), 'content-type': 'text/plain' } }), 401, 'GH_UNAUTHENTICATED', 'an ended session, whatever the body')
  })

  await t.test('POST /auth/logout-all: every session of the user, no one else', async (t) => {
    const email = uniqueEmail('all')
    await register(gw, email)
    const tokens = [(await login(gw, email)).token, (await login(gw, email)).token, (await login(gw, email)).token]
    const bystander = await signUp(gw, 'all-bystander')
    const response = await gw.call('POST', '/auth/logout-all', { headers: browser(gw, tokens[0]!) })
    t.equal(response.status, 204, response.text)
    t.ok(setCookies(response).some(isCleared), 'the cookie is cleared')
    for (const [i, token] of tokens.entries()) t.equal(await meStatus(gw, token), 401, `session ${i + 1} refused`)
    t.equal(await meStatus(gw, bystander.token), 200, "another user's session is untouched")
    t.ok(await login(gw, email), 'the user can log in again')
  })

  await t.test('GET /auth/sessions: the caller’s sessions, the current one marked', async (t) => {
    const email = uniqueEmail('list')
    await register(gw, email)
    const a = await login(gw, email, PASSWORD, { 'user-agent': 'Browser A' })
    const b = await login(gw, email, PASSWORD, { 'user-agent': 'Browser B' })
    const other = await signUp(gw, 'list-other')
    const response = await gw.call('GET', '/auth/sessions', { headers: { ...bearer(b.token), 'user-agent': 'Browser B' } })
    t.equal(response.status, 200, response.text)
    const body = response.json<{ items: SessionItem[]; next_cursor: string | null }>()
    t.same(Object.keys(body).sort(), ['items', 'next_cursor'], 'a list is {items, next_cursor}')
    t.equal(body.items.length, 2, 'both of mine, nobody else’s')
    const current = body.items.filter((s) => s.current)
    t.equal(current.length, 1, 'exactly one is current')
    t.equal(current[0]?.user_agent, 'Browser B', 'the calling one')
    const first = body.items.find((s) => !s.current)
    t.equal(first?.user_agent, 'Browser A')
    for (const item of body.items) {
      t.same(Object.keys(item).sort(), ['amr', 'created_at', 'current', 'expires_at', 'id', 'ip', 'last_seen_at', 'method', 'user_agent'])
      t.equal(item.method, 'pwd')
      t.equal(item.ip, '127.0.0.1')
      t.ok(item.id !== a.token && item.id !== b.token, 'the id is not the token')
      t.ok(Date.parse(item.expires_at) > Date.now())
    }
    t.notMatch(response.text, new RegExp(`${a.token}|${b.token}`), 'no token is ever listed')
    const otherIds = (await listSessions(gw, other.token)).map((s) => s.id)
    t.equal(otherIds.length, 1)
    t.notOk(body.items.some((s) => otherIds.includes(s.id)), "another user's session never appears")
    const byCookie = await gw.call('GET', '/auth/sessions', { headers: sessionCookie(gw, a.token) })
    t.equal(byCookie.status, 200, 'by cookie')
    t.equal(byCookie.json<{ items: SessionItem[] }>().items.find((s) => s.current)?.user_agent, 'Browser A')
    assertError(t, await gw.call('GET', '/auth/sessions'), 401, 'GH_UNAUTHENTICATED', 'anonymous')
  })

  await t.test('DELETE /auth/sessions/:id', async (t) => {
    const email = uniqueEmail('revoke')
    await register(gw, email)
    const keep = await login(gw, email)
    const drop = await login(gw, email)
    const other = await signUp(gw, 'revoke-other')
    const [otherSession] = await listSessions(gw, other.token)
    const dropId = (await listSessions(gw, keep.token)).find((s) => !s.current)?.id ?? ''

    const response = await gw.call('DELETE', `/auth/sessions/${dropId}`, { headers: browser(gw, keep.token) })
    t.equal(response.status, 204, response.text)
    t.equal(await meStatus(gw, drop.token), 401, 'that token is refused')
    t.equal(await meStatus(gw, keep.token), 200, 'the caller’s session is not')
    t.equal(setCookies(response).length, 0, 'revoking another session leaves the caller’s cookie alone')
    t.same((await listSessions(gw, keep.token)).map((s) => s.current), [true], 'and it is no longer listed')
    assertError(t, await gw.call('DELETE', `/auth/sessions/${dropId}`, { headers: bearer(keep.token) }), 404, 'GH_NOT_FOUND', 'twice')

    const foreign = await gw.call('DELETE', `/auth/sessions/${otherSession?.id}`, { headers: bearer(keep.token) })
    assertError(t, foreign, 404, 'GH_NOT_FOUND', "another user's session")
    t.equal(await meStatus(gw, other.token), 200, 'which still works')

    const unknown = randomBytes(32).toString('base64url')
    assertError(t, await gw.call('DELETE', `/auth/sessions/${unknown}`, { headers: bearer(keep.token) }), 404, 'GH_NOT_FOUND', 'an unknown id')
    assertError(t, await gw.call('DELETE', '/auth/sessions/abc', { headers: bearer(keep.token) }), 404, 'GH_NOT_FOUND', 'a malformed id')
    assertError(t, await gw.call('DELETE', `/auth/sessions/${keep.token}`, { headers: bearer(keep.token) }), 404, 'GH_NOT_FOUND', 'a token is not an id')
    const overlong = await gw.call('DELETE', `/auth/sessions/${'a'.repeat(200)}`, { headers: bearer(keep.token) })
    assertError(t, overlong, overlong.status, overlong.status === 400 ? 'GH_VALIDATION' : 'GH_NOT_FOUND', 'an overlong id')
    t.ok(overlong.status === 400 || overlong.status === 404, `an overlong id is 400 or 404 (${overlong.status})`)
    t.equal(await meStatus(gw, keep.token), 200, 'none of that ended the caller’s session')
    assertError(t, await gw.call('DELETE', `/auth/sessions/${dropId}`), 401, 'GH_UNAUTHENTICATED', 'anonymous')

    const [self] = await listSessions(gw, keep.token)
    const own = await gw.call('DELETE', `/auth/sessions/${self?.id}`, { headers: browser(gw, keep.token) })
    t.equal(own.status, 204, 'revoking the current session')
    t.ok(setCookies(own).some(isCleared), 'clears the cookie')
    t.equal(await meStatus(gw, keep.token), 401)
  })

  await t.test('expiry on an injected clock', async (t) => {
    const clock = new ManualClock(Date.now())
    const timed = await startTestGateway(t, {
      db,
      clock,
      configure: (raw) => (raw.sessions = { idle_timeout: '10m', absolute_timeout: '1h' }),
    })
    const email = uniqueEmail('clock')
    await register(timed, email)
    const expiresAt = async (token: string) =>
      Date.parse((await timed.call('GET', '/auth/me', { headers: bearer(token) })).json<{ auth: { expires_at: string } }>().auth.expires_at)

    await t.test('idle timeout', async (t) => {
      const idle = await login(timed, email)
      const viaCookie = await login(timed, email)
      t.equal(Date.parse(idle.expires_at), clock.now() + 10 * MINUTE, 'login expires_at = now + idle')
      clock.advance(10 * MINUTE - 1)
      t.equal(await meStatus(timed, viaCookie.token), 200, 'alive 1 ms before the idle timeout')
      clock.advance(1)
      assertError(t, await timed.call('GET', '/auth/me', { headers: bearer(idle.token) }), 401, 'GH_UNAUTHENTICATED', 'refused at the idle timeout')
      clock.advance(10 * MINUTE)
      assertError(t, await timed.call('GET', '/auth/me', { headers: sessionCookie(timed, viaCookie.token) }), 401, 'GH_UNAUTHENTICATED', 'by cookie too')
    })

    await t.test('activity defers the idle timeout; the absolute timeout does not move', async (t) => {
      const session = await login(timed, email)
      const loggedInAt = clock.now()
      const other = await login(timed, email)
      let previous = Date.parse(session.expires_at)
      for (let elapsed = 9; elapsed < 60; elapsed += 9) {
        clock.advance(9 * MINUTE)
        const response = await timed.call('GET', '/auth/me', { headers: bearer(session.token) })
        t.equal(response.status, 200, `alive after ${elapsed} minutes of activity`)
        const expires = Date.parse(response.json<{ auth: { expires_at: string } }>().auth.expires_at)
        t.equal(expires, Math.min(clock.now() + 10 * MINUTE, loggedInAt + 60 * MINUTE), `expires_at at ${elapsed} min`)
        t.ok(expires > previous, 'expires_at moves with activity')
        previous = expires
      }
      t.equal(await meStatus(timed, other.token), 401, 'the idle session beside it ended long ago')
      t.same((await listSessions(timed, session.token)).length, 1, 'and is not listed')
      t.equal(await expiresAt(session.token), loggedInAt + 60 * MINUTE, 'capped at the absolute timeout')
      clock.advance(60 * MINUTE - (clock.now() - loggedInAt) - 1)
      t.equal(await meStatus(timed, session.token), 200, '1 ms before the absolute timeout')
      clock.advance(1)
      assertError(t, await timed.call('GET', '/auth/me', { headers: bearer(session.token) }), 401, 'GH_UNAUTHENTICATED', 'refused at the absolute timeout, despite constant activity')
    })

    await t.test('the lockout ends with its window', async (t) => {
      const locked = uniqueEmail('window')
      await register(timed, locked)
      for (let i = 0; i < 5; i++) await timed.call('POST', '/auth/login', { json: { email: locked, password: 'wrong guess for the lock' } })
      const refused = await timed.call('POST', '/auth/login', { json: { email: locked, password: PASSWORD } })
      assertError(t, refused, 429, 'GH_RATE_LIMITED', 'locked')
      t.equal(Number(refused.headers['retry-after']), 15 * 60, 'Retry-After is the whole window on the frozen clock')
      clock.advance(5 * MINUTE)
      t.equal(Number((await timed.call('POST', '/auth/login', { json: { email: locked, password: PASSWORD } })).headers['retry-after']), 10 * 60, 'and counts down')
      clock.advance(10 * MINUTE)
      t.ok(await login(timed, locked), 'after the window the right password works')
    })
  })
})
