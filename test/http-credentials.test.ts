/**
 * How /auth reads credentials (SPEC §3), through the real server: a bearer or the session
 * cookie; a malformed or unknown Authorization header is a 401 that never falls back to the
 * cookie; several Authorization headers, several session cookies, or a cookie and a header
 * of different users are 400 GH_AMBIGUOUS_CREDENTIALS.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { assertError, bearer, browser, cookieName, meStatus, sessionCookie, signUp } from './helpers/auth-client.js'
import { startTestGateway } from './helpers/gateway.js'

t.test('credentials on /auth', async (t) => {
  const gw = await startTestGateway(t)
  const alice = await signUp(gw, 'alice')
  const alice2 = await signUp(gw, 'alice-other-user')
  const bob = await signUp(gw, 'bob')
  const name = cookieName(gw)
  const unknownToken = randomBytes(32).toString('base64url')

  await t.test('a bearer or the cookie', async (t) => {
    t.equal((await gw.call('GET', '/auth/me', { headers: bearer(alice.token) })).status, 200, 'bearer')
    t.equal((await gw.call('GET', '/auth/me', { headers: sessionCookie(gw, alice.token) })).status, 200, 'cookie')
    t.equal((await gw.call('GET', '/auth/me', { headers: { authorization: `bearer ${alice.token}` } })).status, 200, 'the scheme is case-insensitive')
    const withOthers = await gw.call('GET', '/auth/me', { headers: { cookie: `theme=dark; ${name}=${alice.token}; lang=en` } })
    t.equal(withOthers.status, 200, 'among other cookies')
    t.equal(withOthers.json().id, alice.user.id)
  })

  await t.test('a malformed or unknown Authorization header is 401 and never falls back to the cookie', async (t) => {
    const headers: Record<string, string> = {
      Basic: `Basic ${Buffer.from(`${alice.user.email}:password`).toString('base64')}`,
      'Bearer without a token': 'Bearer',
      'Bearer with junk': 'Bearer junk',
      'Bearer with a 43-character unknown token': `Bearer ${unknownToken}`,
      'Bearer with a 42-character token': `Bearer ${alice.token.slice(0, 42)}`,
      'Bearer with a 44-character token': `Bearer ${alice.token}A`,
      'Bearer with two tokens': `Bearer ${alice.token} ${alice.token}`,
      'Token scheme': `Token ${alice.token}`,
      'the bare token': alice.token,
      'a PAT-shaped bearer': `Bearer pat_${randomBytes(36).toString('base64url')}`,
      'a short PAT-shaped bearer': 'Bearer pat_x',
      'Bearer with a comma': `Bearer ${alice.token},`,
    }
    for (const [what, authorization] of Object.entries(headers)) {
      const response = await gw.call('GET', '/auth/me', { headers: { authorization, ...sessionCookie(gw, alice.token) } })
      assertError(t, response, 401, 'GH_UNAUTHENTICATED', `${what}, with a valid cookie alongside`)
      t.equal(response.headers['www-authenticate'], 'Bearer realm="gatehouse"', `${what}: WWW-Authenticate`)
    }
    const unsafe = await gw.call('POST', '/auth/logout', { headers: { authorization: 'Bearer junk', ...browser(gw, alice.token) } })
    assertError(t, unsafe, 401, 'GH_UNAUTHENTICATED', 'an unsafe request too')
    t.equal(await meStatus(gw, alice.token), 200, 'and the cookie session was not logged out')
  })

  await t.test('a PAT-shaped bearer alone is 401 (PATs are not issued yet)', async (t) => {
    for (const path of ['/auth/me', '/auth/sessions']) {
      const response = await gw.call('GET', path, { headers: bearer(`pat_${randomBytes(36).toString('base64url')}`) })
      assertError(t, response, 401, 'GH_UNAUTHENTICATED', path)
    }
  })

  await t.test('two Authorization headers are 400, never "last one wins"', async (t) => {
    const cases: Record<string, string[]> = {
      'the same valid token twice': [`Bearer ${alice.token}`, `Bearer ${alice.token}`],
      'junk then valid': ['Bearer junk', `Bearer ${alice.token}`],
      'valid then junk': [`Bearer ${alice.token}`, 'Bearer junk'],
      'two users': [`Bearer ${alice.token}`, `Bearer ${bob.token}`],
    }
    for (const [what, authorization] of Object.entries(cases)) {
      const response = await gw.call('GET', '/auth/me', { headers: { authorization } })
      assertError(t, response, 400, 'GH_AMBIGUOUS_CREDENTIALS', what)
    }
  })

  await t.test('a cookie of one user and a bearer of another are 400', async (t) => {
    const response = await gw.call('GET', '/auth/me', { headers: { ...sessionCookie(gw, alice.token), ...bearer(bob.token) } })
    assertError(t, response, 400, 'GH_AMBIGUOUS_CREDENTIALS', 'GET')
    const unsafe = await gw.call('POST', '/auth/logout', { headers: { ...browser(gw, alice.token), ...bearer(bob.token) } })
    assertError(t, unsafe, 400, 'GH_AMBIGUOUS_CREDENTIALS', 'POST /auth/logout')
    t.equal(await meStatus(gw, alice.token), 200, 'neither session was ended')
    t.equal(await meStatus(gw, bob.token), 200)
    const other = await gw.call('GET', '/auth/me', { headers: { ...sessionCookie(gw, alice2.token), ...bearer(alice.token) } })
    assertError(t, other, 400, 'GH_AMBIGUOUS_CREDENTIALS', 'another user, whatever the email looks like')
  })

  await t.test('a cookie and a bearer of the same user, or a stale cookie, are fine: the bearer decides', async (t) => {
    const same = await gw.call('GET', '/auth/me', { headers: { ...sessionCookie(gw, alice.token), ...bearer(alice.token) } })
    t.equal(same.status, 200, 'the same token twice')
    const stale = await gw.call('GET', '/auth/me', { headers: { ...sessionCookie(gw, unknownToken), ...bearer(bob.token) } })
    t.equal(stale.status, 200, 'a stale cookie names nobody')
    t.equal(stale.json().id, bob.user.id)
  })

  await t.test('two session cookies are 400', async (t) => {
    const cases: Record<string, string | string[]> = {
      'two users in one Cookie header': `${name}=${alice.token}; ${name}=${bob.token}`,
      'a valid and an unknown token': `${name}=${alice.token}; ${name}=${unknownToken}`,
      'two Cookie headers': [`${name}=${alice.token}`, `${name}=${bob.token}`],
    }
    for (const [what, cookie] of Object.entries(cases)) {
      const response = await gw.call('GET', '/auth/me', { headers: { cookie } })
      assertError(t, response, 400, 'GH_AMBIGUOUS_CREDENTIALS', what)
    }
    const repeated = await gw.call('GET', '/auth/me', { headers: { cookie: `${name}=${alice.token}; ${name}=${alice.token}` } })
    t.equal(repeated.status, 200, 'the same value twice is one credential')
  })

  await t.test('cookies that are not the session cookie authenticate nothing', async (t) => {
    for (const cookie of [`gh_session=${alice.token}`, `__host-gh_session=${alice.token}`, `x${name}=${alice.token}`, `${name}=`, `${name}=junk`, `${name}=${unknownToken}`]) {
      const response = await gw.call('GET', '/auth/me', { headers: { cookie } })
      assertError(t, response, 401, 'GH_UNAUTHENTICATED', cookie.replace(alice.token, '<token>'))
    }
  })
})
