/**
 * The origin checks of SPEC §3 through the real server: cookie-authenticated unsafe /auth
 * requests need the gateway's own Origin (or Referer), Sec-Fetch-Site: cross-site is refused,
 * bearer requests are exempt, and a login posted from another origin is refused (login CSRF).
 * And CORS for the operator's listed origins: preflights, credentials, and the CSRF check.
 */
import t, { type Test } from 'tap'
import type { Dispatcher } from 'undici'
import { databaseBackends } from './helpers/backends.js'
import {
  assertError,
  bearer,
  countRows,
  login,
  meStatus,
  PASSWORD,
  register,
  sessionCookie,
  setCookies,
  signUp,
  uniqueEmail,
  type LoggedIn,
} from './helpers/auth-client.js'
import { PUBLIC_URL, startTestGateway, type CallOptions, type TestGateway } from './helpers/gateway.js'

const APP_ORIGIN = 'https://app.example.com'
const EVIL = 'https://evil.example'

interface Unsafe {
  method: Dispatcher.HttpMethod
  path: (gw: TestGateway, session: LoggedIn) => Promise<string>
  json?: Record<string, unknown>
}

/** Every cookie-authenticated unsafe /auth endpoint, with a body that would succeed. */
const unsafeEndpoints: Record<string, Unsafe> = {
  'POST /auth/logout': { method: 'POST', path: async () => '/auth/logout' },
  'POST /auth/logout-all': { method: 'POST', path: async () => '/auth/logout-all' },
  'PATCH /auth/me': { method: 'PATCH', path: async () => '/auth/me', json: { name: 'Changed' } },
  'DELETE /auth/me': { method: 'DELETE', path: async () => '/auth/me', json: { password: PASSWORD } },
  'POST /auth/password': {
    method: 'POST',
    path: async () => '/auth/password',
    json: { current_password: PASSWORD, new_password: 'a brand new long passphrase' },
  },
  'DELETE /auth/sessions/:id': {
    method: 'DELETE',
    path: async (gw, session) => {
      const list = await gw.call('GET', '/auth/sessions', { headers: bearer(session.token) })
      return `/auth/sessions/${list.json<{ items: { id: string }[] }>().items[0]?.id}`
    },
  },
}

/** Headers a cross-site attacker's page could make a browser send, or that fail to prove the origin. */
const refusedHeaders: Record<string, Record<string, string>> = {
  'no Origin and no Referer': {},
  'Origin of another site': { origin: EVIL },
  'Origin: null (sandboxed or file:)': { origin: 'null' },
  'Origin of a look-alike host': { origin: 'https://gatehouse.test.evil.example' },
  'Origin over http instead of https': { origin: 'http://gatehouse.test' },
  'Origin with another port': { origin: 'https://gatehouse.test:8443' },
  'Origin with a trailing slash': { origin: `${PUBLIC_URL}/` },
  'Referer of another site': { referer: `${EVIL}/page` },
  'Referer that is not a URL': { referer: 'gatehouse.test' },
  'evil Origin with a good Referer': { origin: EVIL, referer: `${PUBLIC_URL}/page` },
  'Sec-Fetch-Site: cross-site with the right Origin': { origin: PUBLIC_URL, 'sec-fetch-site': 'cross-site' },
  'Sec-Fetch-Site: Cross-Site (any case)': { origin: PUBLIC_URL, 'sec-fetch-site': 'Cross-Site' },
  'Origin: null with Sec-Fetch-Site: same-site': { origin: 'null', 'sec-fetch-site': 'same-site' },
  'Origin: null with Sec-Fetch-Site: none': { origin: 'null', 'sec-fetch-site': 'none' },
  'Origin: null with Sec-Fetch-Site: cross-site': { origin: 'null', 'sec-fetch-site': 'cross-site' },
  'Origin of another site with Sec-Fetch-Site: same-origin': { origin: EVIL, 'sec-fetch-site': 'same-origin' },
}

t.test('CSRF and CORS', async (t) => {
  const db = await databaseBackends()[0]!.open(t)
  const gw = await startTestGateway(t, { db })

  await t.test('cookie-authenticated unsafe requests without a same-origin proof are 403 GH_CSRF', async (t) => {
    const session = await signUp(gw, 'csrf')
    for (const [endpointName, endpoint] of Object.entries(unsafeEndpoints)) {
      const path = await endpoint.path(gw, session)
      const before = await countRows(gw)
      for (const [what, headers] of Object.entries(refusedHeaders)) {
        const options: CallOptions = { headers: { ...sessionCookie(gw, session.token), ...headers } }
        if (endpoint.json) options.json = endpoint.json
        const response = await gw.call(endpoint.method, path, options)
        assertError(t, response, 403, 'GH_CSRF', `${endpointName}, ${what}`)
      }
      t.same(await countRows(gw), before, `${endpointName}: nothing written by any of the refused requests`)
    }
    t.equal(await meStatus(gw, session.token), 200, 'the session survived every attempt')
    const me = await gw.call('GET', '/auth/me', { headers: bearer(session.token) })
    t.equal(me.json().name, null, 'the name was never changed')
    t.ok(await login(gw, session.user.email), 'the password was never changed')
  })

  await t.test('the right Origin, or a same-origin Referer, is allowed', async (t) => {
    const session = await signUp(gw, 'allowed')
    const allowed: Record<string, Record<string, string>> = {
      'Origin of the gateway': { origin: PUBLIC_URL },
      'Referer of a gateway page, no Origin': { referer: `${PUBLIC_URL}/some/page?x=1` },
      'Origin with Sec-Fetch-Site: same-origin': { origin: PUBLIC_URL, 'sec-fetch-site': 'same-origin' },
      'Origin with Sec-Fetch-Site: same-site': { origin: PUBLIC_URL, 'sec-fetch-site': 'same-site' },
      'Origin with Sec-Fetch-Site: none': { origin: PUBLIC_URL, 'sec-fetch-site': 'none' },
      // Chromium's same-origin form posts under some referrer policies: the fetch metadata decides.
      'Origin: null with Sec-Fetch-Site: same-origin': { origin: 'null', 'sec-fetch-site': 'same-origin' },
      'no Origin, Sec-Fetch-Site: same-origin': { 'sec-fetch-site': 'same-origin' },
    }
    for (const [what, headers] of Object.entries(allowed)) {
      const response = await gw.call('PATCH', '/auth/me', { json: { name: what.slice(0, 50) }, headers: { ...sessionCookie(gw, session.token), ...headers } })
      t.equal(response.status, 200, `${what}: ${response.text.slice(0, 200)}`)
    }
    const logout = await gw.call('POST', '/auth/logout', { headers: { ...sessionCookie(gw, session.token), referer: `${PUBLIC_URL}/` } })
    t.equal(logout.status, 204, 'logout with a same-origin Referer')
  })

  await t.test('bearer-authenticated unsafe requests need no Origin', async (t) => {
    const session = await signUp(gw, 'bearer')
    let response = await gw.call('PATCH', '/auth/me', { json: { name: 'Bearer' }, headers: bearer(session.token) })
    t.equal(response.status, 200, 'no Origin')
    response = await gw.call('PATCH', '/auth/me', { json: { name: 'Bearer 2' }, headers: { ...bearer(session.token), origin: EVIL, 'sec-fetch-site': 'cross-site' } })
    t.equal(response.status, 200, 'whatever the Origin says: a browser never attaches a bearer on its own')
    response = await gw.call('POST', '/auth/logout', { headers: bearer(session.token) })
    t.equal(response.status, 204)
  })

  await t.test('safe methods with a cookie need no Origin', async (t) => {
    const session = await signUp(gw, 'safe')
    const response = await gw.call('GET', '/auth/me', { headers: { ...sessionCookie(gw, session.token), origin: EVIL } })
    t.equal(response.status, 200, 'GET /auth/me from another origin (CORS keeps its answer from that page)')
    t.equal(response.headers['access-control-allow-origin'], undefined, 'and nothing lets that page read it')
  })

  await t.test('login CSRF: a login or registration posted from another origin is 403', async (t) => {
    const email = uniqueEmail('login-csrf')
    await register(gw, email)
    const refused = async (t: Test, path: string, json: Record<string, unknown>, headers: Record<string, string>, what: string) => {
      const before = await countRows(gw)
      const response = await gw.call('POST', path, { json, headers })
      assertError(t, response, 403, 'GH_CSRF', what)
      t.same(setCookies(response), [], `${what}: no cookie`)
      t.same(await countRows(gw), before, `${what}: nothing written (not even a failed-login event)`)
    }
    await refused(t, '/auth/login', { email, password: PASSWORD }, { origin: EVIL }, 'login from another origin')
    await refused(t, '/auth/login', { email, password: PASSWORD }, { origin: 'null' }, 'login from an opaque origin')
    await refused(t, '/auth/login', { email, password: PASSWORD }, { 'sec-fetch-site': 'cross-site' }, 'login with Sec-Fetch-Site: cross-site')
    await refused(t, '/auth/login', { email, password: PASSWORD }, { origin: 'null', 'sec-fetch-site': 'cross-site' }, 'login from a sandboxed frame elsewhere')
    await refused(t, '/auth/register', { email: uniqueEmail('csrf-reg'), password: PASSWORD }, { origin: EVIL }, 'register from another origin')

    t.equal((await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })).status, 200, 'a login without Origin (curl) works')
    t.equal((await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD }, headers: { origin: PUBLIC_URL } })).status, 200, 'a login from the login page works')
    t.equal(
      (await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD }, headers: { origin: 'null', 'sec-fetch-site': 'same-origin' } })).status,
      200,
      'a same-origin form post whose Origin the browser sent as null works',
    )
  })

  await t.test('CORS for the listed origins', async (t) => {
    const cors = await startTestGateway(t, { db, configure: (raw) => (raw.server.cors = { origins: [APP_ORIGIN] }) })
    const email = uniqueEmail('cors')
    await register(cors, email)
    const session = await login(cors, email)

    const preflight = await cors.call('OPTIONS', '/auth/me', {
      headers: { origin: APP_ORIGIN, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'content-type' },
    })
    t.equal(preflight.status, 204, 'a preflight from the listed origin')
    t.equal(preflight.headers['access-control-allow-origin'], APP_ORIGIN, 'the exact origin, never *')
    t.equal(preflight.headers['access-control-allow-credentials'], 'true')
    t.match(String(preflight.headers['access-control-allow-methods']), /PATCH/)
    t.match(String(preflight.headers['access-control-allow-headers']).toLowerCase(), /content-type/)

    const evilPreflight = await cors.call('OPTIONS', '/auth/me', { headers: { origin: EVIL, 'access-control-request-method': 'PATCH' } })
    t.equal(evilPreflight.headers['access-control-allow-origin'], undefined, 'a preflight from another origin gets no allow-origin')
    t.equal(evilPreflight.headers['access-control-allow-credentials'], undefined, 'nor allow-credentials')
    t.equal(evilPreflight.headers['access-control-allow-methods'], undefined, 'nor allow-methods')
    assertError(t, evilPreflight, 404, 'GH_NOT_FOUND', 'a preflight from another origin is refused')

    const bare = await cors.call('OPTIONS', '/auth/me', { headers: { origin: APP_ORIGIN } })
    t.ok(bare.status < 500, `an OPTIONS without Access-Control-Request-Method (${bare.status})`)
    if (bare.status >= 400) t.match(String(bare.headers['content-type']), /^application\/json/, 'refused in JSON')

    const read = await cors.call('GET', '/auth/me', { headers: { ...sessionCookie(cors, session.token), origin: APP_ORIGIN } })
    t.equal(read.status, 200)
    t.equal(read.headers['access-control-allow-origin'], APP_ORIGIN, 'an actual request from the listed origin')
    t.equal(read.headers['access-control-allow-credentials'], 'true')
    t.match(String(read.headers.vary), /Origin/i, 'Vary: Origin')

    const evilRead = await cors.call('GET', '/auth/me', { headers: { ...sessionCookie(cors, session.token), origin: EVIL } })
    t.equal(evilRead.headers['access-control-allow-origin'], undefined, 'a request from another origin gets no allow-origin')
    t.equal(evilRead.headers['access-control-allow-credentials'], undefined)

    const patch = await cors.call('PATCH', '/auth/me', { json: { name: 'From the app' }, headers: { ...sessionCookie(cors, session.token), origin: APP_ORIGIN } })
    t.equal(patch.status, 200, `a cookie-authenticated PATCH from the listed origin passes the CSRF check: ${patch.text}`)
    t.equal(patch.headers['access-control-allow-origin'], APP_ORIGIN)
    const evilPatch = await cors.call('PATCH', '/auth/me', { json: { name: 'Evil' }, headers: { ...sessionCookie(cors, session.token), origin: EVIL } })
    assertError(t, evilPatch, 403, 'GH_CSRF', 'from another origin')
    t.equal(evilPatch.headers['access-control-allow-origin'], undefined)
    const appLogin = await cors.call('POST', '/auth/login', { json: { email, password: PASSWORD }, headers: { origin: APP_ORIGIN } })
    t.equal(appLogin.status, 200, 'a login from the listed origin')
    t.equal(appLogin.headers['access-control-allow-origin'], APP_ORIGIN)
    const gatewayOrigin = await cors.call('PATCH', '/auth/me', { json: { name: 'Own origin' }, headers: { ...sessionCookie(cors, session.token), origin: PUBLIC_URL } })
    t.equal(gatewayOrigin.status, 200, 'the gateway’s own origin still passes')

    const noCors = await gw.call('OPTIONS', '/auth/me', { headers: { origin: APP_ORIGIN, 'access-control-request-method': 'PATCH' } })
    t.equal(noCors.headers['access-control-allow-origin'], undefined, 'without server.cors no origin is allowed')
    const noCorsPatch = await gw.call('PATCH', '/auth/me', { json: { name: 'x' }, headers: { ...sessionCookie(gw, (await signUp(gw, 'nocors')).token), origin: APP_ORIGIN } })
    assertError(t, noCorsPatch, 403, 'GH_CSRF', 'and an origin CORS does not list fails the CSRF check')
  })
})
