/**
 * Refresh tokens for JSON logins (SPEC §3, §5 POST /auth/refresh) through a real gateway on
 * Redis: rotation (each token works once, the old session ends, the new one keeps its amr and
 * sets no cookie), reuse of a spent token ending the chain, the chain's lifetime (refresh_ttl,
 * not the session's timeouts), everything that ends a session ending its chain, concurrent
 * spending, login_rate_limit, and the endpoint being absent when the feature is off.
 */
import t, { type Test } from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { assertError, bearer, login, meStatus, OTHER_PASSWORD, PASSWORD, register, setCookies, signUp, uniqueEmail } from './helpers/auth-client.js'
import { sessionStoreBackends } from './helpers/backends.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'

const MINUTE = 60_000

interface Refreshed {
  token: string
  expires_at: string
  refresh_token: string
}

async function refresh(gw: TestGateway, refreshToken: string) {
  return gw.call('POST', '/auth/refresh', { json: { refresh_token: refreshToken } })
}

async function refreshed(t: Test, gw: TestGateway, refreshToken: string): Promise<Refreshed> {
  const answer = await refresh(gw, refreshToken)
  t.equal(answer.status, 200, 'refreshed', { body: answer.text })
  return answer.json<Refreshed>()
}

async function loginWithRefresh(gw: TestGateway, tag: string): Promise<{ token: string; refresh_token: string; email: string; id: string }> {
  const email = uniqueEmail(tag)
  const user = await register(gw, email)
  const logged = await login(gw, email)
  const refreshToken = (logged.response.json() as { refresh_token?: string }).refresh_token
  if (typeof refreshToken !== 'string') throw new Error('no refresh_token in the login answer')
  return { token: logged.token, refresh_token: refreshToken, email, id: user.id }
}

t.test('refresh tokens off (the default): no refresh_token, and /auth/refresh is 404', async (t) => {
  const gw = await startTestGateway(t)
  const logged = await signUp(gw, 'norefresh')
  t.notOk('refresh_token' in (logged.response.json() as object))
  assertError(t, await refresh(gw, 'A'.repeat(43)), 404, 'GH_NOT_FOUND')
})

t.test('refresh tokens on', async (t) => {
  const clock = new ManualClock(Date.now())
  const store = await sessionStoreBackends().at(-1)!.open(t, { clock })
  const gw = await startTestGateway(t, {
    clock,
    store,
    configure: (raw) => {
      raw.sessions = { refresh_tokens: true, refresh_ttl: '2h', idle_timeout: '30m', absolute_timeout: '1h' }
    },
  })

  await t.test('rotation: a new session and token; the old session ends; no cookie; amr kept', async (t) => {
    const first = await loginWithRefresh(gw, 'rotate')
    t.match(first.refresh_token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url')
    const answer = await refresh(gw, first.refresh_token)
    t.equal(answer.status, 200)
    t.same(setCookies(answer), [], 'no cookie')
    t.equal(answer.headers['cache-control'], 'no-store')
    const next = answer.json<Refreshed>()
    t.not(next.token, first.token)
    t.not(next.refresh_token, first.refresh_token)
    t.equal(await meStatus(gw, first.token), 401, 'the previous session has ended')
    const me = await gw.call('GET', '/auth/me', { headers: bearer(next.token) })
    t.equal(me.status, 200, 'the new session works')
    t.same(me.json<{ auth: { amr: string[] } }>().auth.amr, ['pwd'], 'amr kept')
    const raw = JSON.stringify(await gw.runtime.store.get(`refresh-token:${first.refresh_token}`))
    t.equal(raw, 'null', 'tokens are not stored as they are')
  })

  await t.test('reuse of a spent token ends the chain: 401, and the current session ends too', async (t) => {
    const first = await loginWithRefresh(gw, 'reuse')
    const second = await refreshed(t, gw, first.refresh_token)
    const third = await refreshed(t, gw, second.refresh_token)
    assertError(t, await refresh(gw, first.refresh_token), 401, 'GH_INVALID_CREDENTIALS', 'a spent token')
    t.equal(await meStatus(gw, third.token), 401, 'the chain\'s current session has ended')
    assertError(t, await refresh(gw, third.refresh_token), 401, 'GH_INVALID_CREDENTIALS', 'and its current refresh token is dead')
  })

  await t.test('two refreshes racing with one token: at most one wins, and the chain ends', async (t) => {
    const first = await loginWithRefresh(gw, 'race')
    const answers = await Promise.all([refresh(gw, first.refresh_token), refresh(gw, first.refresh_token)])
    const wins = answers.filter((a) => a.status === 200)
    t.ok(wins.length <= 1, 'never two sessions from one token')
    t.ok(answers.some((a) => a.status === 401), 'the other is refused')
    for (const win of wins) t.equal(await meStatus(gw, win.json<Refreshed>().token), 401, 'the winner\'s session ended by reuse detection')
  })

  await t.test('the chain outlives an expired session, but not refresh_ttl', async (t) => {
    const first = await loginWithRefresh(gw, 'ttl')
    clock.advance(45 * MINUTE)
    t.equal(await meStatus(gw, first.token), 401, 'the session is past its idle timeout')
    const second = await refreshed(t, gw, first.refresh_token)
    t.equal(await meStatus(gw, second.token), 200, 'renewed')
    clock.advance(50 * MINUTE)
    const third = await refreshed(t, gw, second.refresh_token)
    clock.advance(31 * MINUTE)
    t.equal(await meStatus(gw, third.token), 401, 'idle again')
    assertError(t, await refresh(gw, third.refresh_token), 401, 'GH_INVALID_CREDENTIALS', 'over 2 h since the login')
  })

  await t.test('whatever ends a session ends its chain', async (t) => {
    const logout = await loginWithRefresh(gw, 'logout')
    t.equal((await gw.call('POST', '/auth/logout', { headers: bearer(logout.token) })).status, 204)
    assertError(t, await refresh(gw, logout.refresh_token), 401, 'GH_INVALID_CREDENTIALS', 'after logout')

    const all = await loginWithRefresh(gw, 'logoutall')
    const other = await login(gw, all.email)
    t.equal((await gw.call('POST', '/auth/logout-all', { headers: bearer(other.token) })).status, 204)
    assertError(t, await refresh(gw, all.refresh_token), 401, 'GH_INVALID_CREDENTIALS', 'after logout-all')

    const revoked = await loginWithRefresh(gw, 'revoked')
    const sibling = await login(gw, revoked.email)
    const sessions = (await gw.call('GET', '/auth/sessions', { headers: bearer(sibling.token) })).json<{ items: { id: string; current: boolean }[] }>()
    const target = sessions.items.find((s) => !s.current)!
    t.equal((await gw.call('DELETE', `/auth/sessions/${target.id}`, { headers: bearer(sibling.token) })).status, 204)
    assertError(t, await refresh(gw, revoked.refresh_token), 401, 'GH_INVALID_CREDENTIALS', 'after the session was revoked')

    const password = await loginWithRefresh(gw, 'password')
    const changer = await login(gw, password.email)
    const change = await gw.call('POST', '/auth/password', { json: { current_password: PASSWORD, new_password: OTHER_PASSWORD }, headers: bearer(changer.token) })
    t.equal(change.status, 204)
    assertError(t, await refresh(gw, password.refresh_token), 401, 'GH_INVALID_CREDENTIALS', 'after a password change elsewhere')

    const disabled = await loginWithRefresh(gw, 'disabled')
    await gw.runtime.users.setDisabled(disabled.id, true)
    assertError(t, await refresh(gw, disabled.refresh_token), 401, 'GH_INVALID_CREDENTIALS', 'user disabled')
    await gw.runtime.users.setDisabled(disabled.id, false)
    assertError(t, await refresh(gw, disabled.refresh_token), 401, 'GH_INVALID_CREDENTIALS', 'and the chain stays ended')

    const deleted = await loginWithRefresh(gw, 'deleted')
    t.equal((await gw.call('DELETE', '/auth/me', { json: { password: PASSWORD }, headers: bearer(deleted.token) })).status, 204)
    assertError(t, await refresh(gw, deleted.refresh_token), 401, 'GH_INVALID_CREDENTIALS', 'user deleted')
  })

  await t.test('bad input', async (t) => {
    assertError(t, await gw.call('POST', '/auth/refresh', { json: {} }), 400, 'GH_VALIDATION', 'no refresh_token')
    assertError(t, await refresh(gw, 'not a token'), 401, 'GH_INVALID_CREDENTIALS', 'malformed')
    assertError(t, await refresh(gw, 'A'.repeat(43)), 401, 'GH_INVALID_CREDENTIALS', 'unknown')
    const session = await loginWithRefresh(gw, 'confused')
    assertError(t, await refresh(gw, session.token), 401, 'GH_INVALID_CREDENTIALS', 'a session token is no refresh token')
  })
})

t.test('login_rate_limit covers /auth/refresh', async (t) => {
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.sessions = { refresh_tokens: true }
      raw.auth.login_rate_limit = { max: 4, window: '1m' }
    },
  })
  const first = await loginWithRefresh(gw, 'limited') // register + login: 2
  const second = await refreshed(t, gw, first.refresh_token) // 3
  const third = await refreshed(t, gw, second.refresh_token) // 4
  assertError(t, await refresh(gw, third.refresh_token), 429, 'GH_RATE_LIMITED', 'over the per-IP limit')
})
