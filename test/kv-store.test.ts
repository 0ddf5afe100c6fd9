import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { MemoryKeyValueStore } from '../src/kv/memory.js'
import { openKeyValueStore } from '../src/kv/open.js'
import { sessionStoreContract } from './contracts/kv-store.js'
import { sessionStoreBackends } from './helpers/backends.js'
import { freePort, haveRedisServer, startRedisServer } from './helpers/private-redis.js'

const backends = sessionStoreBackends()

for (const backend of backends) {
  t.test(`${backend.name}: KeyValueStore contract`, async (t) => sessionStoreContract(t, backend))
}

t.test('memory: never holds more than maxEntries keys, dropping the oldest written', async (t) => {
  const store = new MemoryKeyValueStore({ maxEntries: 10 })
  for (let i = 0; i < 40; i++) {
    if (i % 3 === 0) await store.set(`k${i}`, 'v', 60_000)
    else if (i % 3 === 1) await store.setAdd(`k${i}`, 'm', 60_000)
    else await store.increment(`k${i}`, 60_000)
    t.ok(store.size <= 10, `size ${store.size} after ${i + 1} writes`)
  }
  t.equal(await store.get('k0'), null, 'the oldest went first')
  t.equal(await store.get('k39'), 'v', 'the newest is kept')
  t.same(await store.setMembers('k37'), ['m'])
  await store.set('k30', 'rewritten', 60_000)
  for (let i = 40; i < 49; i++) await store.set(`k${i}`, 'v', 60_000)
  t.equal(await store.get('k30'), 'rewritten', 'rewriting a key makes it young again')
})

t.test('memory: expired entries are swept by later writes, not only when read', async (t) => {
  const clock = new ManualClock()
  const store = new MemoryKeyValueStore({ clock })
  for (let i = 0; i < 100; i++) await store.set(`old${i}`, 'v', 1_000)
  clock.advance(1_000)
  for (let i = 0; i < 20; i++) await store.set(`new${i}`, 'v', 60_000)
  t.equal(store.size, 20, 'the expired 100 are gone without being read')
  t.throws(() => new MemoryKeyValueStore({ maxEntries: 0 }), TypeError)
})

t.test('openKeyValueStore refuses URLs it does not know', async (t) => {
  await t.rejects(openKeyValueStore('memcached://u:s3cret@host:11211'), /unsupported session store "memcached:…"/)
  const error = await openKeyValueStore('memcached://u:s3cret@host').catch((e: unknown) => e)
  t.notMatch(error instanceof Error ? error.message : '', /s3cret/)
  t.equal((await openKeyValueStore('memory')).kind, 'memory')
})

t.test('redis: open fails within the connect timeout when nothing listens', async (t) => {
  const port = await freePort()
  const started = Date.now()
  await t.rejects(
    openKeyValueStore(`redis://127.0.0.1:${port}/0`, { connectTimeoutMs: 1_000 }),
    { message: new RegExp(`could not connect to Redis at 127\\.0\\.0\\.1:${port} within 1000 ms`) },
  )
  const elapsed = Date.now() - started
  t.ok(elapsed < 2_500, `rejected after ${elapsed} ms`)
})

const redis = backends.find((b) => b.name === 'redis')
if (redis) {
  t.test('redis: what was written is there for the next store on the same prefix', async (t) => {
    const keyPrefix = `gh-test:restart-${process.pid}-${Date.now()}:`
    const first = await redis.open(t, { keyPrefix })
    await first.set('session', 'kept', 60_000)
    await first.setAdd('index', 'kept', 60_000)
    await first.close()
    const second = await redis.open(t, { keyPrefix })
    t.equal(await second.get('session'), 'kept')
    t.same(await second.setMembers('index'), ['kept'])
  })
}

const redisServer = haveRedisServer('the Redis outage test')
t.test('redis: calls fail fast while Redis is stalled or down, and work again when it is back', { skip: redisServer ? false : 'redis-server is not on PATH' }, async (t) => {
  // A private server: the shared one must never be stopped.
  const port = await freePort()
  let server = await startRedisServer(port)
  t.teardown(() => {
    server.kill('SIGKILL')
  })
  const store = await openKeyValueStore(`redis://127.0.0.1:${port}`, { keyPrefix: 'outage:' })
  t.teardown(() => store.close())
  await store.set('k', 'v', 60_000)

  server.kill('SIGSTOP')
  await rejectsQuickly(t, 'get while stalled', () => store.get('k'))
  server.kill('SIGCONT')
  await eventually(() => store.ping())
  t.equal(await store.get('k'), 'v', 'answers again once the stall ends')

  server.kill('SIGKILL')
  await once(server, 'exit')
  await rejectsQuickly(t, 'get', () => store.get('k'))
  await rejectsQuickly(t, 'set', () => store.set('k', 'v', 60_000))
  await rejectsQuickly(t, 'increment', () => store.increment('c', 60_000))
  await rejectsQuickly(t, 'setAdd', () => store.setAdd('s', 'm', 60_000))
  await rejectsQuickly(t, 'ping', () => store.ping())

  server = await startRedisServer(port)
  await eventually(() => store.ping())
  await store.set('k2', 'v2', 60_000)
  t.equal(await store.get('k2'), 'v2', 'the store reconnected by itself')
  t.equal((await store.increment('c', 60_000)).count, 1)
})

async function rejectsQuickly(t: Test, what: string, call: () => Promise<unknown>): Promise<void> {
  const started = Date.now()
  await t.rejects(call(), `${what} rejects`)
  const elapsed = Date.now() - started
  t.ok(elapsed < 3_000, `${what} rejected after ${elapsed} ms`)
}

/** Retries `fn` until it resolves; reconnection backs off up to 2 s between attempts. */
async function eventually(fn: () => Promise<unknown>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await fn()
      return
    } catch (error) {
      if (Date.now() > deadline) throw error
      await sleep(50)
    }
  }
}
