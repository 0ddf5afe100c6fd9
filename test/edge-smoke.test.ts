import t from 'tap'
import { startTestGateway } from './helpers/gateway.js'
import { startUpstream } from './helpers/upstream.js'

t.test('a PAT reaches a required route with signed identity; anonymous gets 401', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [
        { name: 'app', match: '/app', upstream: upstream.url, auth: 'required', permissions: ['app:read'] },
        { name: 'open', match: '/open', upstream: upstream.url, auth: 'public' },
      ]
    },
  })
  await gw.call('POST', '/auth/register', { json: { email: 'edge@example.com', password: 'a long enough passphrase' } })
  const login = await gw.call('POST', '/auth/login', { json: { email: 'edge@example.com', password: 'a long enough passphrase' } })
  const session = login.json<{ token: string }>().token
  const created = await gw.call('POST', '/auth/tokens', { json: { name: 'ci' }, headers: { authorization: `Bearer ${session}` } })
  t.equal(created.status, 201, created.text)
  const pat = created.json<{ token: string }>().token

  const anonymous = await gw.call('GET', '/app/x')
  t.equal(anonymous.status, 401)
  const browser = await gw.call('GET', '/app/x?y=1', { headers: { accept: 'text/html' } })
  t.equal(browser.status, 302)
  t.equal(browser.headers.location, '/auth/login?next=%2Fapp%2Fx%3Fy%3D1')

  const ok = await gw.call('GET', '/app//x/../y?q=1', { headers: { authorization: `Bearer ${pat}`, 'x-auth-user-id': 'spoof' } })
  t.equal(ok.status, 200, ok.text)
  const got = upstream.last()
  t.equal(got.url, '/app/y?q=1')
  t.equal(got.headers['x-auth-method'], 'pat')
  t.not(got.headers['x-auth-user-id'], 'spoof')
  t.equal(got.headers.authorization, undefined)
  t.ok(got.headers['x-auth-assertion'])
  t.ok(got.headers['x-auth-token-id'])

  const open = await gw.call('GET', '/open', { headers: { authorization: 'Basic dXNlcjpwYXNz' } })
  t.equal(open.status, 200)
  t.equal(upstream.last().headers.authorization, 'Basic dXNlcjpwYXNz')
  t.equal(upstream.last().headers['x-auth-user-id'], undefined)

  const jwks = await gw.call('GET', '/.well-known/jwks.json')
  t.equal(jwks.status, 200)
  t.equal(jwks.json<{ keys: unknown[] }>().keys.length, 1)
})
