import t from 'tap'
import { Semaphore } from '../src/core/semaphore.js'
import { GatehouseError } from '../src/errors.js'

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

t.test('never runs more than maxConcurrency at once, in FIFO order', async (t) => {
  const semaphore = new Semaphore({ maxConcurrency: 3, maxQueue: 100 })
  let running = 0
  let peak = 0
  const order: number[] = []
  const tasks = Array.from({ length: 20 }, (_, i) =>
    semaphore.run(async () => {
      running++
      peak = Math.max(peak, running)
      order.push(i)
      await new Promise((r) => setImmediate(r))
      running--
      return i
    }),
  )
  t.equal(semaphore.active, 3)
  t.equal(semaphore.queued, 17)
  t.same(await Promise.all(tasks), Array.from({ length: 20 }, (_, i) => i))
  t.equal(peak, 3)
  t.same(order, [...order].sort((a, b) => a - b), 'started in the order they arrived')
  t.equal(semaphore.active, 0)
  t.equal(semaphore.queued, 0)
})

t.test('overflow of the queue is refused at once with GH_OVERLOADED', async (t) => {
  const semaphore = new Semaphore({ maxConcurrency: 2, maxQueue: 3 })
  const gate = deferred()
  const accepted = Array.from({ length: 5 }, () => semaphore.run(() => gate.promise))
  t.equal(semaphore.active, 2)
  t.equal(semaphore.queued, 3)
  const refused = await semaphore.run(async () => 'ran').catch((err: unknown) => err)
  t.ok(refused instanceof GatehouseError)
  t.match(refused, { code: 'GH_OVERLOADED', statusCode: 503, retryAfter: 1 })
  gate.resolve()
  await Promise.all(accepted)
  t.equal(await semaphore.run(async () => 'ran'), 'ran', 'accepts again once drained')
})

t.test('a failing task frees its slot', async (t) => {
  const semaphore = new Semaphore({ maxConcurrency: 1, maxQueue: 1 })
  await t.rejects(semaphore.run(async () => Promise.reject(new Error('boom'))), { message: 'boom' })
  t.equal(semaphore.active, 0)
  t.equal(await semaphore.run(async () => 1), 1)
})

t.test('a wait longer than queueTimeoutMs is refused and leaves the queue', async (t) => {
  const semaphore = new Semaphore({ maxConcurrency: 1, maxQueue: 5, queueTimeoutMs: 20 })
  const gate = deferred()
  const holder = semaphore.run(() => gate.promise)
  const waiting = semaphore.run(async () => 'late')
  await t.rejects(waiting, { code: 'GH_OVERLOADED' })
  t.equal(semaphore.queued, 0)
  gate.resolve()
  await holder
  t.equal(semaphore.active, 0)
})

t.test('misuse is a TypeError', async (t) => {
  t.throws(() => new Semaphore({ maxConcurrency: 0, maxQueue: 1 }), TypeError)
  t.throws(() => new Semaphore({ maxConcurrency: 1, maxQueue: -1 }), TypeError)
})
