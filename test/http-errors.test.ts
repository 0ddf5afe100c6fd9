/**
 * What every answer of the gateway's own carries, through the real server: the SPEC §5
 * error shape for unknown paths, wrong methods and malformed URLs; the X-Request-Id kept or
 * replaced (SPEC §4); and `cache-control: no-store` on every /auth answer, errors included.
 */
import t from 'tap'
import type { Dispatcher } from 'undici'
import { assertError, bearer, browser, PASSWORD, signUp, uniqueEmail } from './helpers/auth-client.js'
import { startTestGateway, type Response } from './helpers/gateway.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

t.test('errors and common headers', async (t) => {
  const gw = await startTestGateway(t, { configure: (raw) => (raw.server.body_limit = '1kb') })
  const user = await signUp(gw, 'errors')

  await t.test('unknown paths are 404 GH_NOT_FOUND with exactly the four keys', async (t) => {
    for (const path of ['/nope', '/auth/nope', '/auth', '/auth/', '/authx', '/auth/me/extra', '/auth/sessions', '/.env', '/auth/x/../nope']) {
      const response = await gw.call('GET', path, { headers: bearer(user.token) })
      if (path === '/auth/sessions') {
        t.equal(response.status, 200, 'control: /auth/sessions exists')
        continue
      }
      assertError(t, response, 404, 'GH_NOT_FOUND', path)
      t.same(Object.keys(response.json()).sort(), ['code', 'error', 'message', 'statusCode'], `${path}: exactly four keys`)
      t.equal(response.json().error, 'Not Found')
    }
  })

  await t.test('a wrong method on a known /auth path is a JSON 404 or 405', async (t) => {
    const cases: [Dispatcher.HttpMethod, string][] = [
      ['PUT', '/auth/login'],
      ['DELETE', '/auth/register'],
      ['GET', '/auth/logout'],
      ['PUT', '/auth/me'],
      ['POST', '/auth/me'],
      ['POST', '/auth/sessions'],
      ['GET', '/auth/password'],
      ['PATCH', '/auth/sessions/abc'],
    ]
    for (const [method, path] of cases) {
      const response = await gw.call(method, path, { headers: bearer(user.token), json: {} })
      t.ok(response.status === 404 || response.status === 405, `${method} ${path}: 404 or 405 (${response.status})`)
      assertError(t, response, response.status, response.status === 404 ? 'GH_NOT_FOUND' : 'GH_METHOD_NOT_ALLOWED', `${method} ${path}`)
      if (response.status === 405) t.ok(response.headers.allow, `${method} ${path}: Allow`)
    }
  })

  await t.test('URLs the router cannot take apart, or that SPEC §4 refuses, are 4xx in our shape', async (t) => {
    const encodedSlash = await gw.call('GET', '/auth/..%2f..%2fetc', { headers: bearer(user.token) })
    assertError(t, encodedSlash, 400, 'GH_BAD_PATH', 'an encoded slash')
    const badEncoding = await gw.call('DELETE', '/auth/sessions/%E0%A4%A', { headers: bearer(user.token) })
    assertError(t, badEncoding, 400, 'GH_BAD_PATH', 'a malformed percent-encoding in a parameter')
    t.match(String(badEncoding.headers['x-request-id']), UUID, 'with a request id')
    t.equal(badEncoding.headers['cache-control'], 'no-store')
    // Over fastify's maxParamLength the router skips the route: a 400 (frameworkErrors) or,
    // where the edge's catch-all takes it, a 404. Either way our shape, never fastify's own.
    const long = await gw.call('DELETE', `/auth/sessions/${'a'.repeat(500)}`, { headers: bearer(user.token) })
    t.ok(long.status === 400 || long.status === 404, `a path parameter over the router limit (${long.status})`)
    assertError(t, long, long.status, long.status === 400 ? 'GH_VALIDATION' : 'GH_NOT_FOUND', 'a path parameter over the router limit')
    t.match(String(long.headers['x-request-id']), UUID)
  })

  await t.test('X-Request-Id: kept when valid, else a new UUID', async (t) => {
    const kept = ['abc-123', 'A.b_c-9', 'x'.repeat(128), '0']
    for (const id of kept) {
      const response = await gw.call('GET', '/auth/me', { headers: { ...bearer(user.token), 'x-request-id': id } })
      t.equal(response.headers['x-request-id'], id, `kept: ${id.slice(0, 20)}`)
    }
    const replaced = ['x'.repeat(129), 'x'.repeat(200), 'has spaces', 'slash/inside', 'semi;colon', 'ünïcode', '<script>', '']
    for (const id of replaced) {
      const response = await gw.call('GET', '/auth/me', { headers: { ...bearer(user.token), 'x-request-id': id } })
      t.match(String(response.headers['x-request-id']), UUID, `replaced: ${JSON.stringify(id.slice(0, 20))}`)
    }
    const twice = await gw.call('GET', '/auth/me', { headers: { ...bearer(user.token), 'x-request-id': ['one', 'two'] } })
    t.match(String(twice.headers['x-request-id']), UUID, 'two X-Request-Id headers: replaced')
    const none = await gw.call('GET', '/auth/me', { headers: bearer(user.token) })
    t.match(String(none.headers['x-request-id']), UUID, 'none sent: a UUID')
    const onError = await gw.call('GET', '/auth/nope', { headers: { 'x-request-id': 'err-42' } })
    t.equal(onError.headers['x-request-id'], 'err-42', 'on a 404 too')
    const on401 = await gw.call('GET', '/auth/me', { headers: { 'x-request-id': 'unauth-1' } })
    t.equal(on401.headers['x-request-id'], 'unauth-1', 'on a 401 too')
    const health = await gw.call('GET', '/health/live', { headers: { 'x-request-id': 'probe-1' } })
    t.equal(health.headers['x-request-id'], 'probe-1', 'and outside /auth')
    const a = await gw.call('GET', '/auth/me', { headers: bearer(user.token) })
    const b = await gw.call('GET', '/auth/me', { headers: bearer(user.token) })
    t.not(a.headers['x-request-id'], b.headers['x-request-id'], 'a new one per request')
  })

  await t.test('every /auth answer has cache-control: no-store', async (t) => {
    const email = uniqueEmail('cache')
    const other = await signUp(gw, 'cache-other')
    const answers: [string, Response][] = [
      ['201 register', await gw.call('POST', '/auth/register', { json: { email, password: PASSWORD } })],
      ['200 login', await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })],
      ['200 me', await gw.call('GET', '/auth/me', { headers: bearer(user.token) })],
      ['200 patch me', await gw.call('PATCH', '/auth/me', { json: { name: 'C' }, headers: bearer(user.token) })],
      ['200 sessions', await gw.call('GET', '/auth/sessions', { headers: bearer(user.token) })],
      ['400 validation', await gw.call('POST', '/auth/login', { json: { email } })],
      ['400 malformed JSON', await gw.call('POST', '/auth/login', { body: '{', headers: { 'content-type': 'application/json' } })],
      ['400 ambiguous', await gw.call('GET', '/auth/me', { headers: { authorization: ['Bearer a', 'Bearer b'] } })],
      ['401 unauthenticated', await gw.call('GET', '/auth/me')],
      ['401 invalid credentials', await gw.call('POST', '/auth/login', { json: { email, password: 'wrong wrong wrong wrong' } })],
      ['403 csrf', await gw.call('POST', '/auth/logout', { headers: { ...browser(gw, user.token), origin: 'https://evil.example' } })],
      ['404 unknown /auth path', await gw.call('GET', '/auth/nope')],
      ['404 unknown session', await gw.call('DELETE', `/auth/sessions/${'b'.repeat(43)}`, { headers: bearer(user.token) })],
      ['413 too large', await gw.call('POST', '/auth/login', { json: { email, password: 'x'.repeat(2048) } })],
      ['415 media type', await gw.call('POST', '/auth/login', { body: 'x', headers: { 'content-type': 'text/plain' } })],
      ['204 logout', await gw.call('POST', '/auth/logout', { headers: bearer(other.token) })],
    ]
    for (const [what, response] of answers) {
      t.equal(String(response.status), what.split(' ')[0], `${what}: answered as labelled`)
      t.equal(response.headers['cache-control'], 'no-store', what)
    }
    const root = await gw.call('GET', '/nope')
    t.not(root.headers['cache-control'], 'no-store', 'not forced outside /auth (upstreams decide their own)')
  })

  await t.test('error bodies are JSON even when the client asks for HTML', async (t) => {
    const response = await gw.call('GET', '/auth/nope', { headers: { accept: 'text/html' } })
    assertError(t, response, 404, 'GH_NOT_FOUND')
  })
})
