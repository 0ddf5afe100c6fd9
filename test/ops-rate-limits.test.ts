/**
 * Per-route rate limits (SPEC §6) through real gateways: the 429 answer and its headers,
 * per-route and per-user counting, X-Forwarded-For believed only from trusted peers, and
 * two gateways on one Redis sharing one count.
 */
import { randomUUID } from 'node:crypto'
import t from 'tap'
import { bearer, signUp } from './helpers/auth-client.js'
import { sessionStoreBackends } from './helpers/backends.js'
import { startTestGateway, type RawConfig, type TestGateway } from './helpers/gateway.js'
import { startUpstream, type RecordingUpstream } from './helpers/upstream.js'

const LIMIT = 3

function limitedRoutes(upstream: RecordingUpstream, extra: (raw: RawConfig) => void = () => {}) {
  return (raw: RawConfig) => {
    raw.rate_limits = { tight: { max: LIMIT, window: '1m', key: 'ip' } }
    raw.routes = [
      { name: 'one', match: '/one', upstream: upstream.url, auth: 'public', rate_limit: 'tight' },
      { name: 'two', match: '/two', upstream: upstream.url, auth: 'public', rate_limit: 'tight' },
      { name: 'mine', match: '/mine', upstream: upstream.url, auth: 'required', rate_limit: { max: 2, window: '1m', key: 'user' } },
      { name: 'open', match: '/open', upstream: upstream.url, auth: 'public' },
    ]
    extra(raw)
  }
}

async function statuses(gw: TestGateway, path: string, count: number, headers: Record<string, string> = {}): Promise<number[]> {
  const result: number[] = []
  for (let i = 0; i < count; i++) result.push((await gw.call('GET', path, { headers })).status)
  return result
}

t.test('over the limit: 429 GH_RATE_LIMITED with Retry-After and the x-ratelimit headers; the upstream sees only the allowed', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, { configure: limitedRoutes(upstream) })
  const remaining: string[] = []
  for (let i = 0; i < LIMIT; i++) {
    const response = await gw.call('GET', '/one/x')
    t.equal(response.status, 200)
    t.equal(response.headers['x-ratelimit-limit'], String(LIMIT))
    remaining.push(String(response.headers['x-ratelimit-remaining']))
  }
  t.same(remaining, ['2', '1', '0'], 'remaining counts down')
  const refused = await gw.call('GET', '/one/x')
  t.equal(refused.status, 429)
  t.equal(refused.json().code, 'GH_RATE_LIMITED')
  t.equal(refused.json().route, 'one')
  t.equal(refused.headers['x-ratelimit-limit'], String(LIMIT))
  t.equal(refused.headers['x-ratelimit-remaining'], '0')
  const retryAfter = Number(refused.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} is within the 1m window`)
  t.ok(Number(refused.headers['x-ratelimit-reset']) <= 60)
  t.equal(upstream.received.length, LIMIT, 'the refused request never reached the upstream')
  t.equal((await gw.call('GET', '/open/x')).status, 200, 'a route without a policy is not limited')
})

t.test('counts are per route: two routes naming one policy each get its allowance', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, { configure: limitedRoutes(upstream) })
  t.same(await statuses(gw, '/one', LIMIT + 1), [200, 200, 200, 429])
  t.same(await statuses(gw, '/two', LIMIT + 1), [200, 200, 200, 429])
})

t.test('key: user counts each user on their own, whatever their address', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    configure: limitedRoutes(upstream, (raw) => {
      raw.server.trust_proxy = ['127.0.0.1/32']
    }),
  })
  const alice = await signUp(gw, 'rl-alice')
  const bob = await signUp(gw, 'rl-bob')
  const fromAnywhere = () => ({ 'x-forwarded-for': `198.51.100.${Math.floor(Math.random() * 250) + 1}` })
  const aliceStatuses: number[] = []
  for (let i = 0; i < 3; i++) aliceStatuses.push((await gw.call('GET', '/mine', { headers: { ...bearer(alice.token), ...fromAnywhere() } })).status)
  t.same(aliceStatuses, [200, 200, 429], 'a new address does not give a user a new allowance')
  t.same(await statuses(gw, '/mine', 3, bearer(bob.token)), [200, 200, 429], 'another user has an allowance of their own')
})

t.test('X-Forwarded-For: ignored from an untrusted peer, believed (rightmost untrusted entry) from a trusted one', async (t) => {
  t.test('untrusted peer: spoofed addresses do not change the key', async (t) => {
    const upstream = await startUpstream(t)
    const gw = await startTestGateway(t, { configure: limitedRoutes(upstream) })
    const results: number[] = []
    for (let i = 0; i < LIMIT + 2; i++) {
      results.push((await gw.call('GET', '/one', { headers: { 'x-forwarded-for': `203.0.113.${i + 1}` } })).status)
    }
    t.same(results, [200, 200, 200, 429, 429])
  })

  t.test('trusted peer: each client address has its own count; a spoofed leftmost entry changes nothing', async (t) => {
    const upstream = await startUpstream(t)
    const gw = await startTestGateway(t, {
      configure: limitedRoutes(upstream, (raw) => {
        raw.server.trust_proxy = ['127.0.0.1/32', '::1/128']
      }),
    })
    t.same(await statuses(gw, '/one', LIMIT + 1, { 'x-forwarded-for': '192.0.2.10' }), [200, 200, 200, 429])
    t.same(await statuses(gw, '/one', 1, { 'x-forwarded-for': '192.0.2.11' }), [200], 'another client address')
    const spoofed: number[] = []
    for (let i = 0; i < 2; i++) {
      spoofed.push((await gw.call('GET', '/one', { headers: { 'x-forwarded-for': `10.9.9.${i}, 192.0.2.10` } })).status)
    }
    t.same(spoofed, [429, 429], 'the client cannot prepend its way out of its count')
    t.same(await statuses(gw, '/one', LIMIT + 1, { 'x-forwarded-for': '2001:db8:1:2::1' }), [200, 200, 200, 429])
    t.same(await statuses(gw, '/one', 1, { 'x-forwarded-for': '2001:db8:1:2::ffff' }), [429], 'IPv6 clients are counted per /64')
    t.same(await statuses(gw, '/one', 1, { 'x-forwarded-for': '2001:db8:1:3::1' }), [200], 'another /64 is another client')
  })
})

for (const backend of sessionStoreBackends().filter((b) => b.name === 'redis')) {
  t.test('two gateways on one Redis share one count', async (t) => {
    const upstream = await startUpstream(t)
    const keyPrefix = `gatehouse-test-${randomUUID()}:`
    const [storeA, storeB] = [await backend.open(t, { keyPrefix }), await backend.open(t, { keyPrefix })]
    const configure = limitedRoutes(upstream)
    const a = await startTestGateway(t, { store: storeA, configure })
    const b = await startTestGateway(t, { store: storeB, configure })
    const results: string[] = []
    for (let i = 0; i < LIMIT + 2; i++) {
      const gw = i % 2 === 0 ? a : b
      results.push(`${gw === a ? 'A' : 'B'}${(await gw.call('GET', '/one')).status}`)
    }
    t.same(results, ['A200', 'B200', 'A200', 'B429', 'A429'], 'the fourth request is refused, whichever replica takes it')
    t.equal(upstream.received.length, LIMIT)
  })
}
