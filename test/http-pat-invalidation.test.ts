/**
 * Two PatServices ("replicas") sharing one database and one invalidation bus: a revoke, a
 * disabled user or a role change on one is seen by the other within a second. On Redis, also
 * what happens when the subscriber connection drops: a private redis-server is killed and
 * restarted (the shared one is never touched beyond its own channel).
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { AuditLog } from '../src/core/audit.js'
import { systemClock } from '../src/core/clock.js'
import { PatService } from '../src/core/pats.js'
import type { InvalidationBus } from '../src/kv/invalidation.js'
import { MemoryInvalidationBus } from '../src/kv/memory-invalidation.js'
import { RedisInvalidationBus } from '../src/kv/redis-invalidation.js'
import type { Database } from '../src/storage/database.js'
import { databaseBackends, invalidationBusBackends, requireBackends } from './helpers/backends.js'
import { CountingDatabase } from './helpers/counting-database.js'
import { startPrivateRedis } from './helpers/private-redis.js'
import { insertPatOwner } from './helpers/users.js'

const roles = { viewer: ['app:read'], operator: ['app:read', 'app:write'], admin: ['*'] }
const LIMIT_MS = 1_000
const POLL_MS = 20

const redisUrl = process.env.TEST_REDIS_URL
if (!redisUrl) {
  if (requireBackends()) throw new Error('GATEHOUSE_REQUIRE_BACKENDS=1 but TEST_REDIS_URL is not set: the redis tests cannot run')
  t.comment('redis invalidation tests skipped: TEST_REDIS_URL is not set')
}

interface Replicas {
  raw: Database
  a: PatService
  b: PatService
  /** Statements B ran. */
  bQueries: CountingDatabase
  addUser(email: string, userRoles: string[]): Promise<{ id: string; permissions: string[] }>
  /** What UserService does on A after changing a user: tell every replica through A's bus. */
  announceUserChange(userId: string): Promise<void>
}

async function replicas(t: Test, db: Database, buses: [InvalidationBus, InvalidationBus]): Promise<Replicas> {
  const bQueries = new CountingDatabase(db)
  const audit = new AuditLog(db)
  const a = new PatService({ db, audit, clock: systemClock, roles, invalidation: buses[0] })
  const b = new PatService({ db: bQueries, audit, clock: systemClock, roles, invalidation: buses[1] })
  t.teardown(() => a.close())
  t.teardown(() => b.close())
  const addUser = (email: string, userRoles: string[]) => insertPatOwner(db, email, userRoles, roles)
  const announceUserChange = (userId: string) => buses[0].publish({ kind: 'user', userId })
  return { raw: db, a, b, bQueries, addUser, announceUserChange }
}

/** Polls `done` every 20 ms; resolves the milliseconds since `start` when it holds, rejects past `limitMs`. */
async function until(start: number, done: () => Promise<boolean> | boolean, limitMs: number, what: string): Promise<number> {
  for (;;) {
    if (await done()) return performance.now() - start
    if (performance.now() - start > limitMs) throw new Error(`${what}: not within ${limitMs} ms`)
    await sleep(POLL_MS)
  }
}

/** Caches `token` in B and checks that a second use costs B no query. */
async function cacheInB(t: Test, r: Replicas, token: string): Promise<void> {
  t.ok(await r.b.authenticate(token), 'B accepts the token')
  const before = r.bQueries.count
  t.ok(await r.b.authenticate(token))
  t.equal(r.bQueries.count, before, 'B serves it from its cache')
}

const latencies: Record<string, number[]> = {}
function report(t: Test, what: string, ms: number): void {
  ;(latencies[what] ??= []).push(ms)
  t.comment(`${what}: replica B refused after ${ms.toFixed(1)} ms`)
  t.ok(ms < LIMIT_MS, `${what} within ${LIMIT_MS} ms (${ms.toFixed(1)} ms)`)
}

for (const backend of databaseBackends()) {
  for (const bus of invalidationBusBackends()) {
    t.test(`${backend.name}, ${bus.name} bus`, async (t) => {
      t.test('a revoke on A: B refuses the token within a second', async (t) => {
        const buses = await bus.pair(t)
        const r = await replicas(t, await backend.open(t), buses)
        const alice = await r.addUser('alice@example.com', ['operator'])
        const { token, pat } = await r.a.create(alice, { name: 'x' })
        const other = await r.a.create(alice, { name: 'other' })
        await cacheInB(t, r, token)
        await cacheInB(t, r, other.token)
        let delivered: number | undefined
        buses[1].subscribe(() => (delivered ??= performance.now()))
        const start = performance.now()
        t.equal(await r.a.revoke(alice.id, pat.id), true)
        const committed = performance.now()
        await until(committed, () => delivered !== undefined, LIMIT_MS, 'the message reaches B')
        t.comment(`revoke committed after ${(committed - start).toFixed(1)} ms; B's bus had the message ${(delivered! - committed).toFixed(1)} ms later`)
        report(t, `${backend.name}/${bus.name} bus revoke`, await until(start, async () => (await r.b.authenticate(token)) === null, LIMIT_MS, 'revoke'))
        t.equal(await r.a.authenticate(token), null, 'A refuses it too')
        const before = r.bQueries.count
        t.ok(await r.b.authenticate(other.token))
        t.equal(r.bQueries.count, before, "the owner's other token stays cached")
      })

      t.test('a disabled user on A: B refuses their tokens within a second', async (t) => {
        const r = await replicas(t, await backend.open(t), await bus.pair(t))
        const alice = await r.addUser('alice@example.com', ['operator'])
        const bob = await r.addUser('bob@example.com', ['viewer'])
        const tokens = [(await r.a.create(alice, { name: 'one' })).token, (await r.a.create(alice, { name: 'two' })).token]
        const bobs = (await r.a.create(bob, { name: 'bob' })).token
        for (const token of [...tokens, bobs]) await cacheInB(t, r, token)
        const start = performance.now()
        await r.raw.query('UPDATE users SET disabled = true WHERE id = $1', [alice.id])
        await r.announceUserChange(alice.id)
        const refused = async (): Promise<boolean> =>
          (await Promise.all(tokens.map((token) => r.b.authenticate(token)))).every((result) => result === null)
        report(t, `${backend.name}/${bus.name} bus disable`, await until(start, refused, LIMIT_MS, 'disable'))
        const before = r.bQueries.count
        t.ok(await r.b.authenticate(bobs))
        t.equal(r.bQueries.count, before, "another user's token stays cached")
      })

      t.test('a deleted user on A: B refuses their token within a second', async (t) => {
        const r = await replicas(t, await backend.open(t), await bus.pair(t))
        const alice = await r.addUser('alice@example.com', ['operator'])
        const { token } = await r.a.create(alice, { name: 'x' })
        await cacheInB(t, r, token)
        const start = performance.now()
        await r.raw.query('DELETE FROM users WHERE id = $1', [alice.id])
        await r.announceUserChange(alice.id)
        report(t, `${backend.name}/${bus.name} bus delete`, await until(start, async () => (await r.b.authenticate(token)) === null, LIMIT_MS, 'delete'))
      })

      t.test('a role change on A: B applies it within a second', async (t) => {
        const r = await replicas(t, await backend.open(t), await bus.pair(t))
        const alice = await r.addUser('alice@example.com', ['operator'])
        const { token } = await r.a.create(alice, { name: 'x' })
        await cacheInB(t, r, token)
        t.same((await r.b.authenticate(token))?.permissions, ['app:read', 'app:write'])
        const start = performance.now()
        await r.raw.query(`UPDATE users SET roles = '{viewer}' WHERE id = $1`, [alice.id])
        await r.announceUserChange(alice.id)
        const demoted = async (): Promise<boolean> => {
          const permissions = (await r.b.authenticate(token))?.permissions
          return permissions?.length === 1 && permissions[0] === 'app:read'
        }
        report(t, `${backend.name}/${bus.name} bus role change`, await until(start, demoted, LIMIT_MS, 'role change'))
      })
    })
  }
}

if (redisUrl) {
  const backend = databaseBackends()[0]!

  t.test('a private redis-server killed and restarted: caches are reset, nothing stale survives', async (t) => {
    const server = await startPrivateRedis(t)
    const url = `${server.url}/0`
    const busA = await RedisInvalidationBus.open({ url, keyPrefix: 'gh-test:' })
    t.teardown(() => busA.close())
    const busB = await RedisInvalidationBus.open({ url, keyPrefix: 'gh-test:', heartbeatMs: 250 })
    t.teardown(() => busB.close())
    const resets: string[] = []
    busB.onReset(() => resets.push(busB.connected ? 'up' : 'down'))
    const r = await replicas(t, await backend.open(t), [busA, busB])
    const alice = await r.addUser('alice@example.com', ['operator'])
    const revokedByA = await r.a.create(alice, { name: 'revoked by A during the outage' })
    const revokedInDb = await r.a.create(alice, { name: 'revoked in the database, no message at all' })
    const survivor = await r.a.create(alice, { name: 'still valid' })
    for (const token of [revokedByA.token, revokedInDb.token, survivor.token]) await cacheInB(t, r, token)

    await server.stop()
    await until(performance.now(), () => !busB.connected, 3_000, 'B notices the outage')
    t.same(resets, ['down'], 'B was reset when its subscriber dropped')

    await t.rejects(r.a.revoke(alice.id, revokedByA.pat.id), 'A cannot tell the other replicas…')
    t.same(await r.a.list(alice.id).then((list) => list.map((pat) => pat.name).sort()), [revokedInDb.pat.name, survivor.pat.name], '…but the revocation is committed')
    await r.raw.query('UPDATE personal_access_tokens SET revoked_at = now() WHERE id = $1', [revokedInDb.pat.id])
    t.equal(await r.b.authenticate(revokedByA.token), null, 'while disconnected B does not trust its cache')
    let before = r.bQueries.count
    t.ok(await r.b.authenticate(survivor.token))
    t.ok(await r.b.authenticate(survivor.token))
    t.equal(r.bQueries.count, before + 2, 'nor fills it')

    await server.restart()
    await until(performance.now(), () => busA.connected && busB.connected, 10_000, 'both reconnect')
    t.same(resets, ['down', 'up'], 'B was reset again once subscribed again')
    t.equal(await r.b.authenticate(revokedInDb.token), null, 'a change whose message was lost is seen')
    before = r.bQueries.count
    t.ok(await r.b.authenticate(survivor.token))
    t.ok(await r.b.authenticate(survivor.token))
    t.equal(r.bQueries.count, before + 1, 'the cache works again')

    // A's publisher reconnects on its own schedule: wait until it can publish.
    await until(performance.now(), () => busA.publish({ kind: 'token', patId: 'probe' }).then(() => true, () => false), 10_000, 'A publishes')
    const start = performance.now()
    t.equal(await r.a.revoke(alice.id, survivor.pat.id), true)
    report(t, 'after a reconnect, revoke', await until(start, async () => (await r.b.authenticate(survivor.token)) === null, LIMIT_MS, 'revoke'))
  })

  t.test('a frozen redis-server (SIGSTOP): the heartbeat notices, the caches are reset', async (t) => {
    const server = await startPrivateRedis(t)
    const url = `${server.url}/0`
    const bus = await RedisInvalidationBus.open({ url, keyPrefix: 'gh-test:', heartbeatMs: 200 })
    t.teardown(() => bus.close())
    const resets: boolean[] = []
    bus.onReset(() => resets.push(bus.connected))
    const r = await replicas(t, await backend.open(t), [new MemoryInvalidationBus(), bus])
    const alice = await r.addUser('alice@example.com', ['viewer'])
    const { token, pat } = await r.a.create(alice, { name: 'x' })
    await cacheInB(t, r, token)

    server.stall()
    const start = performance.now()
    const noticed = await until(start, () => !bus.connected, 2_000, 'the heartbeat notices')
    t.comment(`a frozen Redis was noticed after ${noticed.toFixed(0)} ms`)
    t.same(resets, [false])
    // The message about this is lost (A is on another bus): B must not serve its cache.
    await r.raw.query('UPDATE personal_access_tokens SET revoked_at = now() WHERE id = $1', [pat.id])
    t.equal(await r.b.authenticate(token), null)

    server.resume()
    await until(performance.now(), () => bus.connected, 10_000, 'B reconnects')
    t.same(resets, [false, true])
  })
}

t.teardown(() => {
  for (const [what, values] of Object.entries(latencies)) {
    console.log(`# invalidation latency, ${what}: ${values.map((ms) => ms.toFixed(1)).join(', ')} ms`)
  }
})
