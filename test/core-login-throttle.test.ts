import t from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { sha256 } from '../src/core/crypto.js'
import { LoginThrottle } from '../src/core/login-throttle.js'
import { GatehouseError } from '../src/errors.js'
import { sessionStoreBackends } from './helpers/backends.js'

const lockout = { max_failures: 3, window: 15 * 60_000 }
const loginRateLimit = { max: 4, window: 60_000 }

for (const backend of sessionStoreBackends()) {
  t.test(backend.name, async (t) => {
    t.test('an account locks after max_failures, with retryAfter', async (t) => {
      const store = await backend.open(t, { clock: new ManualClock() })
      let lockouts = 0
      const throttle = new LoginThrottle({ store, lockout, loginRateLimit, onLockout: () => lockouts++ })
      const locked: boolean[] = []
      for (let i = 0; i < lockout.max_failures; i++) {
        await throttle.checkAccount('alice@example.com')
        locked.push(await throttle.recordFailure('alice@example.com'))
      }
      t.same(locked, [false, false, true], 'the failure that reaches the limit reports the lock')
      t.equal(lockouts, 1)
      const err = await throttle.checkAccount('alice@example.com').catch((e: unknown) => e)
      t.ok(err instanceof GatehouseError)
      t.match(err, { code: 'GH_RATE_LIMITED', statusCode: 429 })
      const retryAfter = (err as GatehouseError).retryAfter!
      t.ok(retryAfter >= 1 && retryAfter <= 900, `retryAfter ${retryAfter}`)
      await throttle.checkAccount('bob@example.com')

      t.equal(await store.get(`lockout:alice@example.com`), null)
      t.equal((await store.peek(`lockout:${sha256('alice@example.com')}`)).count, 3, 'keyed by the hash of the email')

      await throttle.clear('alice@example.com')
      await throttle.checkAccount('alice@example.com')
    })

    t.test('per-IP limit', async (t) => {
      const store = await backend.open(t, { clock: new ManualClock() })
      const throttle = new LoginThrottle({ store, lockout, loginRateLimit })
      for (let i = 0; i < loginRateLimit.max; i++) await throttle.hitIp('192.0.2.1')
      const err = await throttle.hitIp('192.0.2.1').catch((e: unknown) => e)
      t.match(err, { code: 'GH_RATE_LIMITED' })
      t.ok((err as GatehouseError).retryAfter! >= 1 && (err as GatehouseError).retryAfter! <= 60)
      await throttle.hitIp('2001:db8::1')
      await throttle.hitIp('192.0.2.2')
    })
  })
}

const memory = sessionStoreBackends().find((backend) => backend.name === 'memory')!

t.test('windows end on the clock (memory store)', async (t) => {
  const clock = new ManualClock()
  const store = await memory.open(t, { clock })
  const throttle = new LoginThrottle({ store, lockout, loginRateLimit })
  for (let i = 0; i < lockout.max_failures; i++) await throttle.recordFailure('alice@example.com')
  clock.advance(lockout.window - 1000)
  await t.rejects(throttle.checkAccount('alice@example.com'), { code: 'GH_RATE_LIMITED', retryAfter: 1 })
  clock.advance(1000)
  await throttle.checkAccount('alice@example.com')

  for (let i = 0; i < loginRateLimit.max; i++) await throttle.hitIp('192.0.2.1')
  await t.rejects(throttle.hitIp('192.0.2.1'), { code: 'GH_RATE_LIMITED' })
  clock.advance(loginRateLimit.window)
  await throttle.hitIp('192.0.2.1')
})
