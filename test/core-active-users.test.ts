/**
 * The active-user cache behind session-authenticated requests: it saves the database read,
 * and never serves a user that a replica has since disabled, deleted or changed.
 */
import t from 'tap'
import { ActiveUserCache } from '../src/core/active-users.js'
import { ManualClock } from '../src/core/clock.js'
import type { User } from '../src/core/users.js'
import { MemoryInvalidationBus } from '../src/kv/memory-invalidation.js'

const ALICE: User = { id: '00000000-0000-4000-8000-00000000a11c', email: 'alice@example.com', name: null, roles: ['viewer'], email_verified: true, created_at: '1970-01-01T00:00:00.000Z' }

function setup(options: { ttlMs?: number } = {}) {
  const clock = new ManualClock()
  const bus = new MemoryInvalidationBus()
  const reads: string[] = []
  const state = { user: ALICE as User | null, pending: null as Promise<void> | null }
  const cache = new ActiveUserCache({
    users: {
      async isActive(id: string) {
        reads.push(id)
        if (state.pending) await state.pending
        return state.user
      },
    },
    bus,
    clock,
    ttlMs: options.ttlMs ?? 60_000,
  })
  t.teardown(() => cache.close())
  return { clock, bus, reads, state, cache }
}

t.test('an active user is read once, then served from the cache until the ttl ends', async (t) => {
  const { clock, reads, cache } = setup({ ttlMs: 1_000 })
  t.same(await cache.get(ALICE.id), ALICE)
  t.same(await cache.get(ALICE.id), ALICE)
  t.equal(reads.length, 1)
  clock.advance(1_000)
  await cache.get(ALICE.id)
  t.equal(reads.length, 2, 'read again once the entry is a ttl old')
})

t.test('a user invalidation, from any replica, drops the entry at once', async (t) => {
  const { bus, reads, state, cache } = setup()
  await cache.get(ALICE.id)
  state.user = null // disabled
  await bus.publish({ kind: 'user', userId: ALICE.id })
  t.equal(await cache.get(ALICE.id), null, 'the disabled user is refused on the next request')
  t.equal(reads.length, 2)
  await bus.publish({ kind: 'token', patId: 'x' })
  t.equal(await cache.get(ALICE.id), null)
  t.equal(reads.length, 3, 'an inactive user is never cached')
})

t.test('a lookup that raced an invalidation is not cached', async (t) => {
  const { bus, reads, state, cache } = setup()
  let release = () => {}
  state.pending = new Promise<void>((resolve) => (release = resolve))
  const lookup = cache.get(ALICE.id)
  await bus.publish({ kind: 'user', userId: ALICE.id })
  release()
  state.pending = null
  t.same(await lookup, ALICE)
  await cache.get(ALICE.id)
  t.equal(reads.length, 2, 'the raced answer was not kept')
})

t.test('nothing is cached or served from the cache while the bus may miss messages', async (t) => {
  const { bus, reads, cache } = setup()
  await cache.get(ALICE.id)
  await bus.close() // connected is now false
  await cache.get(ALICE.id)
  await cache.get(ALICE.id)
  t.equal(reads.length, 3)
})

t.test('the cache is bounded', async (t) => {
  const clock = new ManualClock()
  const bus = new MemoryInvalidationBus()
  const reads: string[] = []
  const cache = new ActiveUserCache({ users: { isActive: async (id) => (reads.push(id), { ...ALICE, id }) }, bus, clock, max: 3 })
  t.teardown(() => cache.close())
  for (let i = 0; i < 10; i++) await cache.get(`user-${i}`)
  for (const id of ['user-9', 'user-8', 'user-7']) await cache.get(id)
  t.equal(reads.length, 10, 'the three most recent are served from the cache')
  await cache.get('user-6')
  t.same(reads.slice(10), ['user-6'], 'an older one was evicted')
})
