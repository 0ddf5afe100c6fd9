/**
 * GET /auth/verify (SPEC §4b) against a real gateway on a real TLS port: who may call it, how the
 * original request is read (forwarded and original header sets), the decision being the edge's
 * (routes, credentials, permissions, rate limits, origins, normalised paths), and the answers a
 * proxy in front can pass on. The real nginx and Caddy in front are in edge-forward-auth-proxies.test.ts.
 */
import https from 'node:https'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { createVerifier } from '../src/verify.js'
import { assertCode } from './helpers/assert-code.js'
import { bearer, browser, PASSWORD, register, sessionCookie, signUp, uniqueEmail } from './helpers/auth-client.js'
import { ConfigError } from '../src/config/index.js'
import { buildTestConfig, PUBLIC_URL, startTestGateway, testCertificate, type RawConfig, type Response, type TestGateway } from './helpers/gateway.js'
import { startUpstream } from './helpers/upstream.js'

const APP_HOST = 'app.gatehouse.test'

function forwardAuthConfig(headers: 'forwarded' | 'original', extra: (raw: RawConfig) => void = () => {}) {
  return (raw: RawConfig) => {
    raw.forward_auth = { trusted: ['127.0.0.1/32'], headers }
    raw.sessions = { cookie_domain: 'gatehouse.test' }
    raw.roles = { viewer: ['app:read'], operator: ['app:read', 'app:write'], admin: ['*'] }
    raw.rate_limits = { tight: { max: 2, window: '1m', key: 'ip' } }
    raw.routes = [
      { name: 'app', host: APP_HOST, match: '/', auth: 'required', permissions: ['app:read'] },
      { name: 'writes', host: APP_HOST, match: '/write', auth: 'required', permissions: ['app:write'] },
      { name: 'open', host: APP_HOST, match: '/open', auth: 'public' },
      { name: 'limited', host: APP_HOST, match: '/limited', auth: 'required', rate_limit: 'tight' },
    ]
    extra(raw)
  }
}

function forwarded(method: string, uri: string, host = APP_HOST, proto = 'https'): Record<string, string> {
  return { 'x-forwarded-method': method, 'x-forwarded-proto': proto, 'x-forwarded-host': host, 'x-forwarded-uri': uri }
}

function verify(gw: TestGateway, headers: Record<string, string | string[]>, query = ''): Promise<Response> {
  return gw.call('GET', `/auth/verify${query}`, { headers })
}

async function verifierFor(gw: TestGateway, audience: string) {
  const { cert } = await testCertificate()
  return createVerifier({ jwksUrl: `${gw.url}/.well-known/jwks.json`, issuer: PUBLIC_URL, audience, ca: cert, cooldownMs: 0 })
}

t.test('forward auth with X-Forwarded-* headers', async (t) => {
  const gw = await startTestGateway(t, { configure: forwardAuthConfig('forwarded') })
  const viewer = await signUp(gw, 'fa-viewer')

  await t.test('an allowed request: 200, empty, with the identity headers and an assertion for the original request', async (t) => {
    const answer = await verify(gw, { ...forwarded('GET', '/items?page=2'), ...browser(gw, viewer.token) })
    t.equal(answer.status, 200)
    t.equal(answer.text, '')
    t.equal(answer.headers['x-auth-user-id'], viewer.user.id)
    t.equal(answer.headers['x-auth-email'], viewer.user.email)
    t.equal(answer.headers['x-auth-method'], 'session')
    const identity = await (await verifierFor(gw, 'app'))({
      method: 'GET',
      url: '/items?page=2',
      headers: answer.headers as Record<string, string>,
    })
    t.equal(identity.id, viewer.user.id, 'the assertion verifies with htm GET and htu the original path and query')
    await t.rejects(
      (await verifierFor(gw, 'app'))({ method: 'GET', url: '/other', headers: answer.headers as Record<string, string> }),
      'and names that request only',
    )
  })

  await t.test('a PAT is the client credential here, not a call of the API', async (t) => {
    const created = await gw.call('POST', '/auth/tokens', { json: { name: 'fa' }, headers: bearer(viewer.token) })
    const pat = created.json<{ token: string; id: string }>()
    const answer = await verify(gw, { ...forwarded('GET', '/items'), ...bearer(pat.token) })
    t.equal(answer.status, 200)
    t.equal(answer.headers['x-auth-method'], 'pat')
    t.equal(answer.headers['x-auth-token-id'], pat.id)
  })

  await t.test('no credential: 401 with WWW-Authenticate; a browser navigation also gets the login URL', async (t) => {
    const api = await verify(gw, forwarded('GET', '/items'))
    assertCode(t, api, 401, 'GH_UNAUTHENTICATED')
    t.match(api.headers['www-authenticate'], /^Bearer realm="gatehouse"/)
    t.equal(api.headers.location, undefined, 'an API client gets no Location')

    const navigation = await verify(gw, { ...forwarded('GET', '/items?x=1'), accept: 'text/html' })
    assertCode(t, navigation, 401, 'GH_UNAUTHENTICATED')
    const next = `https://${APP_HOST}/items?x=1`
    t.equal(navigation.headers.location, `${PUBLIC_URL}/auth/login?next=${encodeURIComponent(next)}`)

    const redirected = await verify(gw, { ...forwarded('GET', '/items?x=1'), accept: 'text/html' }, '?redirect=true')
    t.equal(redirected.status, 302)
    t.equal(redirected.headers.location, navigation.headers.location)
  })

  await t.test('that login URL sends the browser back to the original URL after sign-in', async (t) => {
    const next = `https://${APP_HOST}/items?x=1`
    const form = new URLSearchParams({ email: viewer.user.email, password: PASSWORD, next }).toString()
    const signedIn = await gw.call('POST', '/auth/login', {
      body: form,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_URL },
    })
    t.equal(signedIn.status, 303)
    t.equal(signedIn.headers.location, next)
    const cookie = String(signedIn.headers['set-cookie'])
    t.match(cookie, /^__Secure-gh_session=/, 'the domain cookie')
    t.match(cookie, /Domain=gatehouse\.test/i)
    for (const unsafe of ['https://evil.example/x', 'https://gatehouse.test.evil.example/', 'http://app.gatehouse.test/x', 'https://user@app.gatehouse.test/']) {
      const refused = await gw.call('POST', '/auth/login', {
        body: new URLSearchParams({ email: viewer.user.email, password: PASSWORD, next: unsafe }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_URL },
      })
      t.equal(refused.headers.location, '/', `${unsafe} is not followed`)
    }
  })

  await t.test("the login page's form-action lets the form's redirect reach that URL's origin, and only that one", async (t) => {
    // Browsers hold the form's 303 to form-action too (browser-forward-auth shows it in Chromium).
    const formAction = (answer: Response) => /form-action ([^;]*);/.exec(String(answer.headers['content-security-policy']))?.[1]
    const page = (next: string) => gw.call('GET', `/auth/login?next=${encodeURIComponent(next)}`, { headers: { accept: 'text/html' } })
    t.equal(formAction(await page(`https://${APP_HOST}:8443/items?x=1`)), `'self' https://${APP_HOST}:8443`, 'an absolute next under cookie_domain')
    t.equal(formAction(await page(`https://${APP_HOST}/items`)), `'self' https://${APP_HOST}`, 'on the default port')
    t.equal(formAction(await page('/local/path')), "'self'", 'a local next')
    t.equal(formAction(await page('https://evil.example/x')), "'self'", 'a next that is not followed')
    const injected = await page('https://x;sandbox;script-src-elem.gatehouse.test/')
    t.equal(formAction(injected), "'self'", 'a host that would write directives into the header')
    t.notMatch(String(injected.headers['content-security-policy']), /sandbox|script-src-elem/, 'and none is written')
    const failed = await gw.call('POST', '/auth/login', {
      body: new URLSearchParams({ email: viewer.user.email, password: 'not the password at all, sorry', next: `https://${APP_HOST}/items` }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_URL },
    })
    t.equal(failed.status, 401)
    t.equal(formAction(failed), `'self' https://${APP_HOST}`, 'the form again after a failed sign-in')
  })

  await t.test('a missing permission is 403 naming it', async (t) => {
    const answer = await verify(gw, { ...forwarded('POST', '/write/x'), ...bearer(viewer.token) })
    const body = assertCode(t, answer, 403, 'GH_FORBIDDEN')
    t.equal(body.missing_permission, 'app:write')
  })

  await t.test('a public route: 200 and no identity, even with a credential', async (t) => {
    const answer = await verify(gw, { ...forwarded('GET', '/open/page'), ...bearer(viewer.token) })
    t.equal(answer.status, 200)
    t.equal(answer.headers['x-auth-user-id'], undefined)
    t.equal(answer.headers['x-auth-assertion'], undefined)
  })

  await t.test("the route's rate limit: 429 with Retry-After, shared with nothing else", async (t) => {
    const statuses: number[] = []
    let last: Response | undefined
    for (let i = 0; i < 3; i++) {
      last = await verify(gw, { ...forwarded('GET', '/limited'), ...bearer(viewer.token) })
      statuses.push(last.status)
    }
    t.same(statuses, [200, 200, 429])
    assertCode(t, last!, 429, 'GH_RATE_LIMITED')
    t.ok(Number(last!.headers['retry-after']) >= 1)
    t.equal(last!.headers['x-ratelimit-limit'], '2')
  })

  await t.test('the original path is judged normalised; one the edge would refuse is 403', async (t) => {
    const climbed = await verify(gw, { ...forwarded('POST', '/open/../write/x'), ...bearer(viewer.token) })
    assertCode(t, climbed, 403, 'GH_FORBIDDEN', '/open/../write/x is /write/x, not the public route')
    const encoded = await verify(gw, { ...forwarded('GET', '/open/..%2fwrite/x'), ...bearer(viewer.token) })
    assertCode(t, encoded, 403, 'GH_BAD_PATH')
    const unknownHost = await verify(gw, { ...forwarded('GET', '/items', 'elsewhere.example'), ...bearer(viewer.token) })
    assertCode(t, unknownHost, 404, 'GH_NOT_FOUND', 'a host no route names')
  })

  await t.test('a cookie-authenticated call whose Origin is not allowed is refused whatever the method', async (t) => {
    const cross = await verify(gw, { ...forwarded('GET', '/items'), ...sessionCookie(gw, viewer.token), origin: 'https://evil.example' })
    assertCode(t, cross, 403, 'GH_CSRF')
    const sibling = await verify(gw, { ...forwarded('GET', '/items'), ...sessionCookie(gw, viewer.token), origin: `https://${APP_HOST}` })
    t.equal(sibling.status, 200, 'an origin under cookie_domain is allowed')
  })

  await t.test('bad or repeated headers of the chosen set are 400; the other set is ignored', async (t) => {
    assertCode(t, await verify(gw, { ...forwarded('GET', '/items'), 'x-forwarded-uri': ['/items', '/open'] }), 400, 'GH_VALIDATION')
    assertCode(t, await verify(gw, { 'x-forwarded-method': 'GET', 'x-forwarded-host': APP_HOST }), 400, 'GH_VALIDATION')
    assertCode(t, await verify(gw, { ...forwarded('GET', 'items') }), 400, 'GH_VALIDATION')
    assertCode(t, await verify(gw, { ...forwarded('G E T', '/items') }), 400, 'GH_VALIDATION')
    const ignored = await verify(gw, { ...forwarded('GET', '/open/x'), 'x-original-url': `https://${APP_HOST}/write/x`, 'x-original-method': 'POST' })
    t.equal(ignored.status, 200, 'X-Original-* mean nothing with headers: forwarded')
  })

  await t.test('two credentials of different users are ambiguous here too', async (t) => {
    const other = await signUp(gw, 'fa-other')
    const answer = await verify(gw, { ...forwarded('GET', '/items'), ...bearer(other.token), ...sessionCookie(gw, viewer.token) })
    assertCode(t, answer, 400, 'GH_AMBIGUOUS_CREDENTIALS')
  })

  await t.test('/auth/verify is never cached', async (t) => {
    const answer = await verify(gw, { ...forwarded('GET', '/items'), ...bearer(viewer.token) })
    t.equal(answer.headers['cache-control'], 'no-store')
  })

  await t.test('the metric counts each outcome', async (t) => {
    const text = await gw.metrics.exposition()
    t.match(text, /gatehouse_forward_auth_total\{outcome="allow"\} [1-9]/)
    t.match(text, /gatehouse_forward_auth_total\{outcome="unauthenticated"\} [1-9]/)
    t.match(text, /gatehouse_forward_auth_total\{outcome="rate_limited"\} [1-9]/)
  })
})

t.test('forward auth with X-Original-* headers (nginx)', async (t) => {
  const gw = await startTestGateway(t, { configure: forwardAuthConfig('original') })
  const viewer = await signUp(gw, 'fa-nginx')
  const original = (method: string, url: string) => ({ 'x-original-method': method, 'x-original-url': url })

  const allowed = await verify(gw, { ...original('GET', `https://${APP_HOST}/items?q=1`), ...bearer(viewer.token) })
  t.equal(allowed.status, 200)
  const identity = await (await verifierFor(gw, 'app'))({ method: 'GET', url: '/items?q=1', headers: allowed.headers as Record<string, string> })
  t.equal(identity.id, viewer.user.id)

  const statuses: number[] = []
  let last: Response | undefined
  for (let i = 0; i < 3; i++) {
    last = await verify(gw, { ...original('GET', `https://${APP_HOST}/limited`), ...bearer(viewer.token) })
    statuses.push(last.status)
  }
  t.same(statuses, [200, 200, 403], 'nginx passes only 2xx, 401 and 403: a rate-limited call is 403')
  assertCode(t, last!, 403, 'GH_RATE_LIMITED')
  t.ok(Number(last!.headers['retry-after']) >= 1, 'with Retry-After')

  assertCode(t, await verify(gw, { ...original('GET', '/items') }), 400, 'GH_VALIDATION', 'X-Original-URL must be absolute')
  assertCode(t, await verify(gw, { ...original('GET', `https://${APP_HOST}/a`), 'x-original-method': ['GET', 'POST'] }), 400, 'GH_VALIDATION')
  const ignored = await verify(gw, { ...original('GET', `https://${APP_HOST}/open/x`), ...forwarded('POST', '/write/x'), ...bearer(viewer.token) })
  t.equal(ignored.status, 200, 'X-Forwarded-* mean nothing with headers: original')
})

t.test('only the peers in forward_auth.trusted may call it', async (t) => {
  const gw = await startTestGateway(t, { configure: forwardAuthConfig('forwarded', (raw) => (raw.forward_auth.trusted = ['127.0.0.2/32'])) })
  const user = await signUp(gw, 'fa-trust')
  const headers = { ...forwarded('GET', '/items'), ...bearer(user.token), 'x-forwarded-for': '127.0.0.2' }
  assertCode(t, await verify(gw, headers), 403, 'GH_FORBIDDEN', 'from 127.0.0.1, whatever X-Forwarded-For says')

  // undici's connector ignores localAddress: node's https client binds the source address.
  const { cert } = await testCertificate()
  const fromProxy = await new Promise<number>((resolve, reject) => {
    const call = https.request(`${gw.url}/auth/verify`, { ca: cert, servername: 'localhost', localAddress: '127.0.0.2', headers }, (answer) => {
      answer.resume()
      resolve(answer.statusCode ?? 0)
    })
    call.on('error', reject)
    call.end()
  })
  t.equal(fromProxy, 200, 'from 127.0.0.2, the trusted proxy')
})

t.test('routes without upstream exist only for forward auth; without forward_auth, /auth/verify is 404', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    configure: forwardAuthConfig('forwarded', (raw) => {
      raw.routes.push({ name: 'proxied', match: '/proxied', upstream: upstream.url, auth: 'public' })
    }),
  })
  // The forward-auth-only routes (host app.gatehouse.test, match /) are absent at the edge.
  const { cert } = await testCertificate()
  const anyName = new Agent({ connect: { ca: cert, checkServerIdentity: () => undefined } })
  t.teardown(() => anyName.close())
  const atEdge = await request(`${gw.url}/items`, { headers: { host: APP_HOST }, dispatcher: anyName })
  t.equal(atEdge.statusCode, 404, 'the edge has no route for app.gatehouse.test')
  t.equal((await atEdge.body.json() as { code: string }).code, 'GH_NOT_FOUND')
  t.equal((await gw.call('GET', '/proxied/x')).status, 200, 'a route with an upstream is proxied as usual')
  t.equal(upstream.received.length, 1)

  const plain = await startTestGateway(t, {
    configure: (raw) => (raw.routes = [{ name: 'proxied', match: '/', upstream: upstream.url, auth: 'public' }]),
  })
  assertCode(t, await plain.call('GET', '/auth/verify', { headers: forwarded('GET', '/x') }), 404, 'GH_NOT_FOUND')
  t.equal(upstream.received.length, 1, 'and never proxied')
})

t.test('cookie_domain: one sign-in for every host under it', async (t: Test) => {
  const gw = await startTestGateway(t, { configure: forwardAuthConfig('forwarded') })
  const email = uniqueEmail('fa-domain')
  await register(gw, email)
  const login = await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
  const token = login.json<{ token: string }>().token
  const cookie = String(login.headers['set-cookie'])
  t.match(cookie, /^__Secure-gh_session=[^;]+; Max-Age=\d+; Domain=gatehouse\.test; Path=\/; HttpOnly; Secure; SameSite=Lax/)

  const leftover = await verify(gw, { ...forwarded('GET', '/items'), cookie: `__Host-gh_session=${token}` })
  assertCode(t, leftover, 401, 'GH_UNAUTHENTICATED', 'a leftover __Host- cookie is not read (nor ambiguous)')
  const both = await verify(gw, { ...forwarded('GET', '/items'), cookie: `__Host-gh_session=junk; __Secure-gh_session=${token}` })
  t.equal(both.status, 200, 'the configured name is read, the other ignored')

  const csrf = await gw.call('POST', '/auth/logout', { headers: { cookie: `__Secure-gh_session=${token}`, origin: 'https://evil.example' } })
  assertCode(t, csrf, 403, 'GH_CSRF')
  const fromApp = await gw.call('POST', '/auth/logout', { headers: { cookie: `__Secure-gh_session=${token}`, origin: `https://${APP_HOST}` } })
  t.equal(fromApp.status, 204, 'an origin under cookie_domain may post to /auth')
})

t.test('check-config: cookie_domain and forward-auth hosts', async (t) => {
  const problems = (configure: (raw: RawConfig) => void): string[] => {
    try {
      buildTestConfig(configure)
      return []
    } catch (err) {
      if (err instanceof ConfigError) return [...err.problems]
      throw err
    }
  }
  const routes = [{ name: 'app', host: APP_HOST, match: '/', auth: 'required' }]
  t.same(problems(forwardAuthConfig('forwarded')), [], 'the configuration of these tests is valid')
  t.match(problems((raw) => (raw.sessions = { cookie_domain: 'example.com' })), [/^sessions\.cookie_domain: must cover server\.public_url's host gatehouse\.test/])
  t.match(problems((raw) => (raw.sessions = { cookie_domain: '10.0.0.1' })), [/^sessions\.cookie_domain: /])
  t.match(problems((raw) => {
    raw.forward_auth = {}
    raw.routes = routes
  }), [/^routes\[0\]\.host: forward auth for app\.gatehouse\.test, another host than server\.public_url's, needs sessions\.cookie_domain/])
  t.match(problems((raw) => {
    raw.forward_auth = {}
    raw.server.public_url = 'https://auth.example.com'
    raw.sessions = { cookie_domain: 'example.com' }
    raw.routes = routes
  }), [/^routes\[0\]\.host: is not under sessions\.cookie_domain example\.com/])
  t.match(problems((raw) => (raw.routes = [{ name: 'app', match: '/' }])), [/^routes\[0\]\.upstream: a route without upstream exists only for forward auth/])
  t.match(problems((raw) => (raw.forward_auth = { headers: 'both' })), [/^forward_auth\.headers: /])
  t.match(problems((raw) => (raw.forward_auth = { trusted: ['nowhere'] })), [/^forward_auth\.trusted\[0\]: /])
  const defaults = buildTestConfig((raw) => (raw.forward_auth = {}))
  t.same(defaults.forward_auth, { trusted: ['127.0.0.1/32'], headers: 'forwarded' })
  t.equal(buildTestConfig().forward_auth, null)
})
