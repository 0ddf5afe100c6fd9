/**
 * /health, /health/live and /health/ready through the real server, and what a dependency
 * outage looks like over HTTP: a database or session store closed under a running gateway
 * makes health and readiness 503, keeps liveness 200, and turns login and authenticated
 * requests into 503 GH_UNAVAILABLE (never a 500, never a 401).
 */
import t from 'tap'
import { assertError, bearer, login, PASSWORD, register, signUp, uniqueEmail } from './helpers/auth-client.js'
import { startTestGateway } from './helpers/gateway.js'

interface Health {
  status: string
  version: string
  components: Record<string, { status: string; latency_ms: number }>
}

t.test('health endpoints', async (t) => {
  const gw = await startTestGateway(t)

  const health = await gw.call('GET', '/health')
  t.equal(health.status, 200, health.text)
  const body = health.json<Health>()
  t.same(Object.keys(body).sort(), ['components', 'status', 'upstreams', 'version'])
  t.equal(body.status, 'ok')
  t.match(body.version, /^\d+\.\d+\.\d+/)
  t.same(Object.keys(body.components).sort(), ['database', 'sessions'])
  for (const [name, component] of Object.entries(body.components)) {
    t.same(Object.keys(component).sort(), ['latency_ms', 'status'], `${name}: {status, latency_ms}`)
    t.equal(component.status, 'ok', `${name} ok`)
    t.ok(typeof component.latency_ms === 'number' && component.latency_ms >= 0, `${name}: a latency`)
  }
  t.equal(health.headers['cache-control'], 'no-store')

  const live = await gw.call('GET', '/health/live')
  t.equal(live.status, 200)
  t.equal(live.json().status, 'ok')
  const ready = await gw.call('GET', '/health/ready')
  t.equal(ready.status, 200)
  t.equal(ready.json().status, 'ok')
  t.equal((await gw.call('HEAD', '/health/live')).status, 200, 'HEAD works for probes')
  const post = await gw.call('POST', '/health', { json: {} })
  t.ok(post.status === 404 || post.status === 405, `POST /health is refused (${post.status})`)
})

t.test('the database closed under a running gateway', async (t) => {
  const gw = await startTestGateway(t)
  const email = uniqueEmail('outage')
  await register(gw, email)
  const session = await login(gw, email)
  await gw.runtime.db.close()

  const health = await gw.call('GET', '/health')
  t.equal(health.status, 503, '/health is 503')
  const body = health.json<Health>()
  t.not(body.status, 'ok')
  t.equal(body.components.database?.status, 'unavailable', 'the database is the component down')
  t.equal(body.components.sessions?.status, 'ok', 'the session store is still up')
  t.equal((await gw.call('GET', '/health/ready')).status, 503, '/health/ready is 503')
  t.equal((await gw.call('GET', '/health/live')).status, 200, '/health/live is still 200')

  const refused = await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
  assertError(t, refused, 503, 'GH_UNAVAILABLE', 'login')
  t.ok(refused.headers['retry-after'], 'with Retry-After')
  t.notMatch(refused.text, /pglite|closed|embedded|postgres/i, 'the body names no internals')
  assertError(t, await gw.call('POST', '/auth/register', { json: { email: uniqueEmail('late'), password: PASSWORD } }), 503, 'GH_UNAVAILABLE', 'register')
  assertError(t, await gw.call('GET', '/auth/me', { headers: bearer(session.token) }), 503, 'GH_UNAVAILABLE', 'a session that needs the user row')
  assertError(t, await gw.call('GET', '/auth/me'), 401, 'GH_UNAUTHENTICATED', 'no credential is still just 401')
})

t.test('the session store closed under a running gateway', async (t) => {
  const gw = await startTestGateway(t)
  const session = await signUp(gw, 'store-outage')
  await gw.runtime.store.close()

  const health = await gw.call('GET', '/health')
  t.equal(health.status, 503)
  t.equal(health.json<Health>().components.sessions?.status, 'unavailable')
  t.equal(health.json<Health>().components.database?.status, 'ok')
  t.equal((await gw.call('GET', '/health/ready')).status, 503)
  t.equal((await gw.call('GET', '/health/live')).status, 200)
  // Sessions fail closed: never let through, never mistaken for "not signed in".
  assertError(t, await gw.call('GET', '/auth/me', { headers: bearer(session.token) }), 503, 'GH_UNAVAILABLE', 'a session request')
  assertError(t, await gw.call('POST', '/auth/login', { json: { email: session.user.email, password: PASSWORD } }), 503, 'GH_UNAVAILABLE', 'login')
})
