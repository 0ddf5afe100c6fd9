/**
 * CORS per route (SPEC §4a): preflights answered by the gateway without authentication and
 * never forwarded, exact origins only, the gateway's own errors carrying the CORS headers,
 * the upstream's Access-Control-* replaced, and a route's origins passing its CSRF check.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { sessionCookie, signUp } from './helpers/auth-client.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'

const SPA = 'https://spa.example.com'
const OTHER = 'https://evil.example.com'

async function corsUpstream(t: Test): Promise<{ url: string; received: string[] }> {
  const received: string[] = []
  const server = createServer((request, response) => {
    received.push(`${request.method} ${request.url}`)
    request.resume()
    response.writeHead(200, {
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'x-secret',
      vary: 'Accept-Encoding',
      'content-type': 'text/plain',
    })
    response.end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received }
}

async function setUp(t: Test): Promise<{ gw: TestGateway; received: string[] }> {
  const upstream = await corsUpstream(t)
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [
        { name: 'api', match: '/api', methods: ['GET', 'POST'], upstream: upstream.url, permissions: ['app:read'],
          cors: { origins: [SPA], methods: ['GET', 'POST'], headers: ['content-type', 'x-csrf'], max_age: '5m' } },
        // OPTIONS on /api goes here unless it is a preflight for a GET or POST.
        { name: 'api-options', match: '/api', methods: ['OPTIONS', 'DELETE'], upstream: upstream.url, auth: 'public' },
        { name: 'plain', match: '/plain', upstream: upstream.url, auth: 'public' },
      ]
    },
  })
  return { gw, received: upstream.received }
}

const CORS_NAMES = ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-allow-methods',
  'access-control-allow-headers', 'access-control-max-age', 'access-control-expose-headers']

t.test('a preflight from a listed origin: 204 from the gateway, no authentication, never forwarded', async (t) => {
  const { gw, received } = await setUp(t)
  const response = await gw.call('OPTIONS', '/api/items', {
    headers: { origin: SPA, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  })
  t.equal(response.status, 204)
  t.equal(response.headers['access-control-allow-origin'], SPA)
  t.equal(response.headers['access-control-allow-credentials'], 'true')
  t.equal(response.headers['access-control-allow-methods'], 'GET, POST')
  t.equal(response.headers['access-control-allow-headers'], 'content-type, x-csrf')
  t.equal(response.headers['access-control-max-age'], '300')
  t.match(String(response.headers.vary), /Origin/)
  t.same(received, [], 'the upstream saw nothing')
})

t.test('a preflight from another origin is 403 with no CORS headers', async (t) => {
  const { gw, received } = await setUp(t)
  for (const origin of [OTHER, `${SPA}:443`, 'https://SPA.example.com', 'null']) {
    const response = await gw.call('OPTIONS', '/api/items', { headers: { origin, 'access-control-request-method': 'GET' } })
    t.equal(response.status, 403, origin)
    t.equal(response.json().code, 'GH_FORBIDDEN')
    t.same(CORS_NAMES.filter((name) => response.headers[name] !== undefined), [], `${origin}: no CORS headers`)
  }
  t.same(received, [])
})

t.test('the route of a preflight is chosen by Access-Control-Request-Method; without cors, OPTIONS is ordinary', async (t) => {
  const { gw, received } = await setUp(t)
  // DELETE belongs to api-options, which has no cors: an ordinary OPTIONS, proxied.
  const ordinary = await gw.call('OPTIONS', '/api/items', { headers: { origin: SPA, 'access-control-request-method': 'DELETE' } })
  t.equal(ordinary.status, 200)
  t.same(received, ['OPTIONS /api/items'])
  const plain = await gw.call('OPTIONS', '/plain/x', { headers: { origin: SPA, 'access-control-request-method': 'GET' } })
  t.equal(plain.status, 200)
  t.equal(plain.headers['access-control-allow-origin'], '*', "a route without cors passes the upstream's own headers")
})

t.test("answers to a listed origin carry the exact origin, credentials and Vary: Origin, the gateway's errors included", async (t) => {
  const { gw } = await setUp(t)
  const refused = await gw.call('GET', '/api/items', { headers: { origin: SPA } })
  t.equal(refused.status, 401)
  t.equal(refused.headers['access-control-allow-origin'], SPA)
  t.equal(refused.headers['access-control-allow-credentials'], 'true')
  t.match(String(refused.headers.vary), /Origin/)
  const foreign = await gw.call('GET', '/api/items', { headers: { origin: OTHER } })
  t.equal(foreign.status, 401)
  t.same(CORS_NAMES.filter((name) => foreign.headers[name] !== undefined), [], 'another origin gets none')

  const user = await signUp(gw, 'cors')
  const ok = await gw.call('GET', '/api/items', { headers: { origin: SPA, authorization: `Bearer ${user.token}` } })
  t.equal(ok.status, 200)
  t.equal(ok.headers['access-control-allow-origin'], SPA, "the upstream's * is replaced")
  t.equal(ok.headers['access-control-expose-headers'], undefined, "the upstream's other Access-Control-* are dropped")
  t.equal(ok.headers['access-control-allow-credentials'], 'true')
  t.match(String(ok.headers.vary), /Accept-Encoding/)
  t.match(String(ok.headers.vary), /Origin/)
})

t.test("a route's cors origins pass its CSRF check; other origins do not", async (t) => {
  const { gw } = await setUp(t)
  const user = await signUp(gw, 'cors-csrf')
  const fromSpa = await gw.call('POST', '/api/items', { headers: { ...sessionCookie(gw, user.token), origin: SPA }, body: 'x' })
  t.equal(fromSpa.status, 200, fromSpa.text)
  const fromOther = await gw.call('POST', '/api/items', { headers: { ...sessionCookie(gw, user.token), origin: OTHER }, body: 'x' })
  t.equal(fromOther.status, 403)
  t.equal(fromOther.json().code, 'GH_CSRF')
})
