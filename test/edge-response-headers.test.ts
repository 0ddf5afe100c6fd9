/**
 * Response headers (SPEC §4a): HSTS on every answer over TLS (the upstream's own value wins,
 * 0 turns it off), CSP and X-Frame-Options on the gateway's pages; and the Host the upstream
 * gets (its own unless preserve_host), X-Forwarded-Host always the client's, htu without host.
 */
import { decodeJwt } from 'jose'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { signUp } from './helpers/auth-client.js'
import { startTestGateway } from './helpers/gateway.js'
import { startUpstream } from './helpers/upstream.js'

async function hstsUpstream(t: Test): Promise<string> {
  const server = createServer((request, response) => {
    request.resume()
    if (request.url?.startsWith('/own/')) response.setHeader('strict-transport-security', 'max-age=5')
    response.end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('HSTS: every answer over TLS, gateway and upstream alike; the upstream value wins; 0 is off', async (t) => {
  const upstream = await hstsUpstream(t)
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.server.hsts = '1d'
      raw.routes = [{ name: 'app', match: '/', upstream, auth: 'public' }]
    },
  })
  for (const path of ['/x', '/health', '/auth/login', '/auth/me', '/.well-known/jwks.json', '/%2F']) {
    t.equal((await gw.call('GET', path)).headers['strict-transport-security'], 'max-age=86400', path)
  }
  t.equal((await gw.call('GET', '/own/x')).headers['strict-transport-security'], 'max-age=5')

  const off = await startTestGateway(t, {
    configure: (raw) => {
      raw.server.hsts = 0
      raw.routes = [{ name: 'app', match: '/', upstream, auth: 'public' }]
    },
  })
  t.equal((await off.call('GET', '/x')).headers['strict-transport-security'], undefined)
  t.equal((await off.call('GET', '/auth/me')).headers['strict-transport-security'], undefined)
})

t.test('gateway pages carry a CSP and X-Frame-Options: DENY', async (t) => {
  const gw = await startTestGateway(t)
  const checked: string[] = []
  for (const path of ['/auth/login', '/auth/register', '/docs', '/docs/static/index.html']) {
    const response = await gw.call('GET', path)
    if (!String(response.headers['content-type']).startsWith('text/html')) continue
    t.equal(response.status, 200, path)
    t.match(String(response.headers['content-security-policy']), /default-src/, `${path}: CSP`)
    t.equal(response.headers['x-frame-options'], 'DENY', `${path}: X-Frame-Options`)
    checked.push(path)
  }
  t.has(checked, ['/auth/login'])
  t.ok(checked.some((path) => path.startsWith('/docs')), `the API docs page was checked (${checked.join(', ')})`)
})

t.test('the upstream gets its own host as Host unless preserve_host; X-Forwarded-Host is the client\'s; htu has no host', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [
        { name: 'own', match: '/own', upstream: upstream.url, permissions: ['app:read'] },
        { name: 'kept', match: '/kept', upstream: upstream.url, permissions: ['app:read'], preserve_host: true },
      ]
    },
  })
  const user = await signUp(gw, 'host')
  const headers = { authorization: `Bearer ${user.token}`, host: 'localhost:8443' }
  t.equal((await gw.call('GET', '/own/x?q=1', { headers })).status, 200)
  let got = upstream.last()
  t.equal(got.headers.host, `127.0.0.1:${upstream.port}`)
  t.equal(got.headers['x-forwarded-host'], 'localhost:8443')
  t.equal(decodeJwt(String(got.headers['x-auth-assertion'])).htu, '/own/x?q=1')
  t.equal((await gw.call('GET', '/kept/x?q=1', { headers })).status, 200)
  got = upstream.last()
  t.equal(got.headers.host, 'localhost:8443')
  t.equal(got.headers['x-forwarded-host'], 'localhost:8443')
  t.equal(decodeJwt(String(got.headers['x-auth-assertion'])).htu, '/kept/x?q=1')
})
