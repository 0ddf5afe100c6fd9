/**
 * The invalidation bus: the contract (test/contracts/invalidation-bus.ts) on the memory bus
 * and on Redis (TEST_REDIS_URL; with GATEHOUSE_REQUIRE_BACKENDS=1 a missing Redis fails
 * instead of skipping), then what only Redis can get wrong: foreign messages on its channel,
 * and the URLs it opens. Losing the connection is in test/http-pat-invalidation.test.ts,
 * against a private redis-server.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { openInvalidationBus } from '../src/kv/open-invalidation.js'
import { RedisInvalidationBus } from '../src/kv/redis-invalidation.js'
import { invalidationBusBackends } from './helpers/backends.js'
import { freePort } from './helpers/ports.js'
import { invalidationBusContract } from './contracts/invalidation-bus.js'

const backends = invalidationBusBackends()

for (const backend of backends) {
  t.test(`${backend.name}: InvalidationBus contract`, async (t) => invalidationBusContract(t, backend))
}

t.test('openInvalidationBus refuses URLs it does not know, without echoing a password', async (t) => {
  const error = await openInvalidationBus('http://user:s3cret@example.com').catch((e: unknown) => e)
  t.match(error, { message: /unsupported session store "http:…"/ })
  t.notMatch(error instanceof Error ? error.message : '', /s3cret/)
  const memory = await openInvalidationBus('memory')
  t.equal(memory.kind, 'memory')
  await memory.close()
})

t.test('redis: open fails within the connect timeout when nothing listens', async (t) => {
  const unreachable = `redis://127.0.0.1:${await freePort()}/0`
  const started = Date.now()
  await t.rejects(openInvalidationBus(unreachable, { connectTimeoutMs: 300 }), /could not connect to Redis at 127\.0\.0\.1:\d+ within 300 ms/)
  t.ok(Date.now() - started < 2_000, 'and not much later')
})

const redisUrl = backends.some((backend) => backend.name === 'redis') ? process.env.TEST_REDIS_URL : undefined
if (redisUrl) {
  t.test('redis: openInvalidationBus opens a connected Redis bus', async (t) => {
    const redis = await openInvalidationBus(redisUrl, { keyPrefix: `gh-test:${randomBytes(6).toString('hex')}:` })
    t.equal(redis.kind, 'redis')
    t.ok(redis.connected)
    await redis.close()
    t.notOk(redis.connected, 'closed')
  })

  t.test('redis: malformed messages on the channel are ignored', async (t) => {
    const keyPrefix = `gh-test:${randomBytes(6).toString('hex')}:`
    const bus = await RedisInvalidationBus.open({ url: redisUrl, keyPrefix })
    t.teardown(() => bus.close())
    const received: unknown[] = []
    bus.subscribe((message) => received.push(message))
    const raw = new Redis(redisUrl)
    t.teardown(() => raw.disconnect())
    const garbage = ['', 'null', '[]', '{', '"user"', '{"kind":"user"}', '{"kind":"user","userId":42}',
      '{"kind":"token","userId":"x"}', '{"kind":"other","userId":"x"}', JSON.stringify({ kind: 'user', userId: 'x'.repeat(2_000) })]
    for (const text of garbage) await raw.publish(bus.channel, text)
    await raw.publish(bus.channel, JSON.stringify({ kind: 'token', patId: 'p1', extra: true }))
    const deadline = Date.now() + 2_000
    while (received.length === 0 && Date.now() < deadline) await sleep(10)
    t.same(received, [{ kind: 'token', patId: 'p1' }], 'only the valid message, without unknown fields')
    t.ok(bus.connected)
  })
}
