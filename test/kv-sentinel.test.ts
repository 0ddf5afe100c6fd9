/**
 * Redis behind Sentinel (SPEC §7): the URL storage.sessions takes, and a failover under
 * traffic. A private master, replica and three sentinels run; two gateways (sharing one
 * database) use them only through redis-sentinel://. The master is killed while clients are
 * sending requests; the gateways follow the promoted replica without a restart: a session
 * written before the failover still signs in, new sessions, shared rate-limit counts and
 * PAT revocations over the invalidation bus work on the new master. The outage clients saw
 * (how many 503s, over how long) is measured and reported as a test comment.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { openKeyValueStore } from '../src/kv/open.js'
import { parseSentinelUrl } from '../src/kv/redis-url.js'
import { bearer, login, signUp } from './helpers/auth-client.js'
import { databaseBackends } from './helpers/backends.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'
import { haveRedisServer } from './helpers/private-redis.js'
import { startSentinelSet } from './helpers/private-sentinel.js'
import { startUpstream } from './helpers/upstream.js'

t.test('redis-sentinel:// URLs: hosts, master name, database and credentials', async (t) => {
  t.same(parseSentinelUrl('redis-sentinel://h1:26379,h2:26380/mymaster/0'), {
    sentinels: [{ host: 'h1', port: 26379 }, { host: 'h2', port: 26380 }], name: 'mymaster', db: 0,
  })
  t.same(parseSentinelUrl('redis-sentinel://user:p%40ss@[::1],10.0.0.2/main'), {
    sentinels: [{ host: '::1', port: 26379 }, { host: '10.0.0.2', port: 26379 }], name: 'main', db: 0, username: 'user', password: 'p@ss',
  }, 'default port 26379 and database 0; credentials decoded')
  t.same(parseSentinelUrl('redis-sentinel://:secret@h1/main/3'), { sentinels: [{ host: 'h1', port: 26379 }], name: 'main', db: 3, password: 'secret' })
  for (const bad of [
    'redis-sentinel://h1:26379', 'redis-sentinel://h1/', 'redis-sentinel:///main', 'redis-sentinel://h1,,h2/main',
    'redis-sentinel://h1:0/main', 'redis-sentinel://h1:65536/main', 'redis-sentinel://h1/main/x', 'redis-sentinel://h1/main/0/1',
    'redis-sentinel://h1/main?x=1', 'redis-sentinel://[nope]/main', 'redis-sentinel://h_1/main', 'redis-sentinel://%zz@h1/main',
  ]) t.type(parseSentinelUrl(bad), 'string', bad)
})

t.test('a master killed under traffic: the gateways follow the promoted replica', { skip: !haveRedisServer('the Sentinel failover test') && 'redis-server is not installed' }, async (t) => {
  const sentinel = await startSentinelSet(t)
  const upstream = await startUpstream(t)
  const db = await databaseBackends()[0]!.open(t)
  const gateway = async (): Promise<TestGateway> => {
    const store = await openKeyValueStore(sentinel.url)
    t.teardown(() => store.close())
    return startTestGateway(t, {
      db,
      store,
      configure: (raw) => {
        raw.storage = { sessions: sentinel.url }
        raw.routes = [
          { name: 'app', match: '/app', upstream: upstream.url },
          { name: 'limited', match: '/limited', upstream: upstream.url, rate_limit: { max: 4, window: '1m', key: 'user' } },
        ]
      },
    })
  }
  const [a, b] = [await gateway(), await gateway()]
  t.equal(a.runtime.store.kind, 'redis')

  const before = await signUp(a, 'sentinel')
  t.equal((await b.call('GET', '/app/x', { headers: bearer(before.token) })).status, 200, 'a session from A is good on B')
  // Acknowledged by the replica before the master dies: SPEC §7 promises those survive.
  t.equal(await sentinel.master().call('WAIT', 1, 2_000), 1, 'the replica has the session')

  // Clients on both gateways, sending the pre-failover session, until the failover is over.
  const outcomes: Array<{ at: number; status: number; gw: 'a' | 'b' }> = []
  let running = true
  const client = async (gw: TestGateway): Promise<void> => {
    while (running) {
      const status = await gw.call('GET', '/app/x', { headers: bearer(before.token) }).then((r) => r.status, () => -1)
      outcomes.push({ at: Date.now(), status, gw: gw === a ? 'a' : 'b' })
      if (status !== 200) await sleep(20)
    }
  }
  const clients = [a, b, a, b].map(client)
  await sleep(500)
  const killedAt = Date.now()
  await sentinel.killMaster()

  const deadline = killedAt + 45_000
  while (Date.now() < deadline) {
    await sleep(200)
    const recent = outcomes.filter((o) => o.at > Date.now() - 1_000)
    const promoted = (await sentinel.reportedMasterPort().catch(() => 0)) === sentinel.replicaPort
    if (promoted && recent.length >= 20 && recent.every((o) => o.status === 200)) break
  }
  running = false
  await Promise.all(clients)

  // Per second after the kill, per gateway, per status: the diagnostics of the assertions below.
  const timeline: Record<string, number> = {}
  for (const o of outcomes) {
    const key = `${Math.floor((o.at - killedAt) / 1000)}s ${o.gw} ${o.status}`
    timeline[key] = (timeline[key] ?? 0) + 1
  }
  t.equal(await sentinel.reportedMasterPort(), sentinel.replicaPort, 'Sentinel promoted the replica', { timeline })
  const failures = outcomes.filter((o) => o.status !== 200)
  const statuses = [...new Set(failures.map((o) => o.status))]
  t.ok(statuses.every((s) => s === 503), `clients saw only 200 and 503 (never a 401: the session was not lost): ${JSON.stringify(statuses)}`, { timeline })
  const first = failures[0]?.at ?? killedAt
  const last = failures.at(-1)?.at ?? killedAt
  const after = outcomes.filter((o) => o.at > killedAt)
  t.comment(`failover outage: ${failures.length} of ${after.length} requests after the kill answered 503, ` +
    `from ${first - killedAt} ms to ${last - killedAt} ms after the kill (${last - first} ms window); ` +
    `${outcomes.length} requests in all`)
  t.ok(outcomes.filter((o) => o.at > last).length >= 20 && outcomes.at(-1)?.status === 200, 'traffic answers 200 again without a restart', { timeline })

  // Sessions: the old one on both, a new one written on the promoted master.
  for (const gw of [a, b]) t.equal((await gw.call('GET', '/app/x', { headers: bearer(before.token) })).status, 200)
  const fresh = await login(b, before.user.email)
  t.equal((await a.call('GET', '/app/x', { headers: bearer(fresh.token) })).status, 200, 'a session created on B after the failover is good on A')

  // Rate limits: one count on the new master, shared by both gateways (not per replica).
  const limited: number[] = []
  for (const gw of [a, b, a, b, a, b]) limited.push((await gw.call('GET', '/limited/x', { headers: bearer(fresh.token) })).status)
  t.same(limited, [200, 200, 200, 200, 429, 429], 'the 4 allowed requests are counted across A and B')

  // Revocations: the invalidation bus runs on the new master.
  for (const gw of [a, b]) {
    const deadlineBus = Date.now() + 10_000
    while (!gw.runtime.invalidation.connected && Date.now() < deadlineBus) await sleep(50)
    t.ok(gw.runtime.invalidation.connected, 'the bus is subscribed again')
  }
  const created = await a.call('POST', '/auth/tokens', { json: { name: 'after-failover' }, headers: bearer(fresh.token) })
  t.equal(created.status, 201)
  const pat = created.json<{ id: string; token: string }>()
  t.equal((await b.call('GET', '/app/x', { headers: bearer(pat.token) })).status, 200, 'B accepts (and caches) the PAT')
  const heard: unknown[] = []
  b.runtime.invalidation.subscribe((message) => heard.push(message))
  t.equal((await a.call('DELETE', `/auth/tokens/${pat.id}`, { headers: bearer(fresh.token) })).status, 204)
  const heardBy = Date.now() + 1_000
  while (heard.length === 0 && Date.now() < heardBy) await sleep(20)
  t.ok(heard.length > 0, 'B heard the revocation from A through the promoted master')
  t.equal((await b.call('GET', '/app/x', { headers: bearer(pat.token) })).status, 401, 'B refuses the revoked PAT at once')
})
