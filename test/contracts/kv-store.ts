/**
 * What every KeyValueStore implementation does, run against each of them
 * (test/kv-store.test.ts). Time: the memory store follows a ManualClock; Redis keeps its
 * own, so there the suite waits short real intervals (the only sleeps in the tests).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { ManualClock } from '../../src/core/clock.js'
import type { KeyValueStore } from '../../src/kv/store.js'
import type { KeyValueStoreBackend } from '../helpers/backends.js'

interface Timed {
  store: KeyValueStore
  /** A duration long enough to observe on this backend: any for a manual clock, 100 ms for real time. */
  unit: number
  elapse(ms: number): Promise<void>
}

async function openTimed(t: Test, backend: KeyValueStoreBackend): Promise<Timed> {
  const clock = new ManualClock()
  const store = await backend.open(t, { clock })
  if (backend.clockDriven) {
    return { store, unit: 1_000, elapse: async (ms) => clock.advance(ms) }
  }
  // Real time: a unit long enough that a loaded CI machine's late timers (tens of ms) do not
  // move a check across a TTL boundary.
  return { store, unit: 300, elapse: (ms) => sleep(ms) }
}

export function sessionStoreContract(t: Test, backend: KeyValueStoreBackend): void {
  t.test('get, set, delete', async (t) => {
    const store = await backend.open(t)
    t.equal(store.kind, backend.name)
    t.equal(await store.get('missing'), null)
    await store.set('k', 'v1', 60_000)
    t.equal(await store.get('k'), 'v1')
    await store.set('k', 'v2', 60_000)
    t.equal(await store.get('k'), 'v2', 'set replaces')
    const big = 'ünïcode ✓ '.repeat(2_000)
    await store.set('big', big, 60_000)
    t.equal(await store.get('big'), big, 'long and non-ASCII values round-trip')
    t.equal(await store.delete('k'), true, 'delete reports an existing key')
    t.equal(await store.delete('k'), false, 'and a missing one')
    t.equal(await store.get('k'), null)
  })

  t.test('deleteMany deletes several keys and counts those that existed', async (t) => {
    const store = await backend.open(t)
    await store.set('a', '1', 60_000)
    await store.set('b', '2', 60_000)
    await store.setAdd('s', 'm', 60_000)
    await store.set('keep', '3', 60_000)
    t.equal(await store.deleteMany(['a', 'b', 's', 'missing']), 3)
    t.equal(await store.deleteMany([]), 0, 'no keys is fine')
    t.equal(await store.get('a'), null)
    t.same(await store.setMembers('s'), [])
    t.equal(await store.get('keep'), '3')
  })

  t.test('values expire after their TTL', async (t) => {
    const { store, unit, elapse } = await openTimed(t, backend)
    await store.set('short', 'v', 2 * unit)
    await store.set('long', 'v', 60_000)
    await elapse(unit)
    t.equal(await store.get('short'), 'v', 'still there before its TTL')
    await elapse(2 * unit)
    t.equal(await store.get('short'), null, 'gone after it')
    t.equal(await store.delete('short'), false, 'an expired key does not count as deleted')
    t.equal(await store.get('long'), 'v')
  })

  t.test('a TTL must be positive', async (t) => {
    const store = await backend.open(t)
    await t.rejects(store.set('k', 'v', 0), RangeError)
    await t.rejects(store.setAdd('k', 'v', -1), RangeError)
    await t.rejects(store.increment('k', Number.NaN), RangeError)
  })

  t.test('sets: add, remove, members', async (t) => {
    const store = await backend.open(t)
    t.same(await store.setMembers('s'), [], 'a missing set is empty')
    await store.setAdd('s', 'a', 60_000)
    await store.setAdd('s', 'b', 60_000)
    await store.setAdd('s', 'a', 60_000)
    t.same((await store.setMembers('s')).sort(), ['a', 'b'], 'members are unique')
    await store.setRemove('s', 'a')
    await store.setRemove('s', 'not a member')
    await store.setRemove('missing', 'a')
    t.same(await store.setMembers('s'), ['b'])
    await store.setRemove('s', 'b')
    t.same(await store.setMembers('s'), [])
    t.equal(await store.delete('s'), false, 'an emptied set no longer exists')
  })

  t.test('setAdd extends the set TTL and never shortens it', async (t) => {
    const { store, unit, elapse } = await openTimed(t, backend)
    await store.setAdd('s', 'a', 4 * unit) // expires at 4
    await elapse(2 * unit)
    await store.setAdd('s', 'b', 4 * unit) // now at 2: extended to 6
    await elapse(3 * unit)
    t.same((await store.setMembers('s')).sort(), ['a', 'b'], 'kept past the first TTL')
    await store.setAdd('s', 'c', 0.2 * unit) // now at 5: would shorten to 5.2, must stay 6
    await elapse(0.5 * unit)
    t.same((await store.setMembers('s')).sort(), ['a', 'b', 'c'], 'a shorter TTL does not shorten it')
    await elapse(1 * unit)
    t.same(await store.setMembers('s'), [], 'gone after the longest TTL')
  })

  t.test('increment counts within a window, then starts again', async (t) => {
    const { store, unit, elapse } = await openTimed(t, backend)
    const window = 3 * unit
    const first = await store.increment('c', window)
    t.equal(first.count, 1)
    t.ok(first.resetInMs > window - unit && first.resetInMs <= window, `resetInMs ${first.resetInMs} is about the window`)
    await elapse(unit)
    const second = await store.increment('c', 100 * window)
    t.equal(second.count, 2)
    t.ok(second.resetInMs <= window - unit, 'later increments keep the first window')
    t.equal((await store.increment('other', window)).count, 1, 'counters are independent')
    await elapse(3 * unit)
    const fresh = await store.increment('c', window)
    t.equal(fresh.count, 1, 'a new window starts from zero')
    t.ok(fresh.resetInMs > window - unit, 'and lasts a whole window')
  })

  t.test('increment is atomic', async (t) => {
    const store = await backend.open(t)
    const states = await Promise.all(Array.from({ length: 200 }, () => store.increment('burst', 60_000)))
    const counts = states.map((s) => s.count).sort((a, b) => a - b)
    t.same(counts, Array.from({ length: 200 }, (_, i) => i + 1), 'each count from 1 to 200 seen exactly once')
    t.equal((await store.peek('burst')).count, 200)
  })

  t.test('peek reads a counter without changing it', async (t) => {
    const { store, unit, elapse } = await openTimed(t, backend)
    t.same(await store.peek('c'), { count: 0, resetInMs: 0 }, 'an absent counter')
    await store.increment('c', 3 * unit)
    await store.increment('c', 3 * unit)
    await elapse(unit)
    const peeked = await store.peek('c')
    t.equal(peeked.count, 2)
    t.ok(peeked.resetInMs > 0 && peeked.resetInMs <= 2 * unit, `resetInMs ${peeked.resetInMs} counts down`)
    t.equal((await store.peek('c')).count, 2, 'peeking again changes nothing')
    await elapse(3 * unit)
    t.same(await store.peek('c'), { count: 0, resetInMs: 0 }, 'an expired counter')
  })

  t.test('stores are isolated from each other', async (t) => {
    const one = await backend.open(t)
    const two = await backend.open(t)
    await one.set('k', 'one', 60_000)
    await one.setAdd('s', 'one', 60_000)
    await one.increment('c', 60_000)
    t.equal(await two.get('k'), null)
    t.same(await two.setMembers('s'), [])
    t.equal((await two.increment('c', 60_000)).count, 1)
    t.equal(await two.deleteMany(['k', 's']), 0)
    t.equal(await one.get('k'), 'one', 'the other store deleted nothing of this one')
  })

  t.test('countKeys counts the live keys of a prefix, of this store only', async (t) => {
    const { store, unit, elapse } = await openTimed(t, backend)
    const other = await backend.open(t)
    await store.set('session:a', '1', 60_000)
    await store.set('session:b', '1', 60_000)
    await store.set('session:short', '1', unit)
    await store.setAdd('session-index:x', 'a', 60_000)
    await store.set('sessionx', '1', 60_000)
    await store.set('*glob:1', '1', 60_000)
    await other.set('session:c', '1', 60_000)
    t.equal(await store.countKeys('session:'), 3)
    t.equal(await store.countKeys('*glob:'), 1, 'glob characters in the prefix are literal')
    t.equal(await store.countKeys('*'), 1)
    await elapse(unit * 2)
    t.equal(await store.countKeys('session:'), 2, 'an expired key is not counted')
    t.equal(await other.countKeys('session:'), 1)
  })

  t.test('ping answers while open; calls reject once closed', async (t) => {
    const store = await backend.open(t)
    await t.resolves(store.ping())
    await store.close()
    await t.rejects(store.ping())
    await t.rejects(store.get('k'))
    await t.resolves(store.close(), 'closing twice is harmless')
  })
}
