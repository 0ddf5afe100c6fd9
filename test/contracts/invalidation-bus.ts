/**
 * What every InvalidationBus implementation does, run against each of them
 * (test/kv-invalidation-bus.test.ts): the memory bus of one process and Redis pub/sub shared
 * by replicas. "Two replicas" are two buses on one channel (in memory: one bus).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import type { InvalidationBus, InvalidationMessage } from '../../src/kv/invalidation.js'
import type { InvalidationBusBackend } from '../helpers/backends.js'

/** Long enough for a message to cross a loaded machine's Redis; what the gateway promises is a second. */
const DELIVERY_MS = 1_000

const MESSAGES: InvalidationMessage[] = [
  { kind: 'user', userId: 'u-1' },
  { kind: 'token', patId: 'p-1' },
  { kind: 'session', userId: 'u-1', sessionId: 's-1' },
  { kind: 'session', userId: 'u-2', sessionId: null },
]

function recorder(bus: InvalidationBus): { received: InvalidationMessage[]; stop: () => void } {
  const received: InvalidationMessage[] = []
  const stop = bus.subscribe((message) => received.push(message))
  return { received, stop }
}

async function until(what: string, check: () => boolean, timeoutMs = DELIVERY_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(10)
  }
}

/**
 * Lets anything still on its way arrive: a message that should not be delivered is given the
 * time a delivered one gets. Redis delivers in order on one connection, so a marker published
 * after it and received means it would have arrived by then.
 */
async function settle(from: InvalidationBus, to: InvalidationBus): Promise<void> {
  const marker: InvalidationMessage = { kind: 'token', patId: `marker-${Math.random()}` }
  let seen = false
  const stop = to.subscribe((message) => {
    if (message.kind === 'token' && message.patId === marker.patId) seen = true
  })
  try {
    await from.publish(marker)
    await until('the marker', () => seen)
  } finally {
    stop()
  }
}

export function invalidationBusContract(t: Test, backend: InvalidationBusBackend): void {
  t.test('open: its kind, connected', async (t) => {
    const bus = await backend.open(t)
    t.equal(bus.kind, backend.name)
    t.equal(bus.connected, true)
  })

  t.test('publish delivers to this process\'s subscribers before it returns', async (t) => {
    const bus = await backend.open(t)
    const { received } = recorder(bus)
    for (const message of MESSAGES) {
      const published = bus.publish(message)
      t.same(received.at(-1), message, `${message.kind}: delivered synchronously`)
      await published
    }
    t.same(received, MESSAGES, 'every kind of message, once, in order')
  })

  t.test('a message published by one replica reaches the other\'s subscribers, once each', async (t) => {
    const [a, b] = await backend.pair(t)
    const onA = recorder(a)
    const onB = recorder(b)
    for (const message of MESSAGES) await a.publish(message)
    await until('B receives every message', () => onB.received.length >= MESSAGES.length)
    await settle(a, b)
    t.same(onB.received.filter((m) => !isMarker(m)), MESSAGES, 'B: every message, once, in order, as published')
    t.same(onA.received.filter((m) => !isMarker(m)), MESSAGES, 'A: its own messages once (no echo back from the other replicas)')
  })

  t.test('both ways: the other replica publishes too', async (t) => {
    const [a, b] = await backend.pair(t)
    const onA = recorder(a)
    await b.publish({ kind: 'user', userId: 'from-b' })
    await until('A receives B\'s message', () => onA.received.length > 0)
    t.same(onA.received, [{ kind: 'user', userId: 'from-b' }])
  })

  t.test('buses on different channels do not hear each other', async (t) => {
    const one = await backend.open(t)
    const other = await backend.open(t)
    const onOther = recorder(other)
    const [a, b] = await backend.pair(t)
    await one.publish({ kind: 'user', userId: 'not-for-other' })
    // A message that crosses the same Redis in the meantime: the first would have arrived too.
    await settle(a, b)
    t.same(onOther.received, [], 'nothing arrived on the other channel')
  })

  t.test('unsubscribe stops delivery to that handler only; one function subscribed twice is called twice', async (t) => {
    const bus = await backend.open(t)
    const calls: string[] = []
    const handler = (message: InvalidationMessage): void => {
      calls.push(message.kind)
    }
    const first = bus.subscribe(handler)
    const second = bus.subscribe(handler)
    await bus.publish({ kind: 'user', userId: 'u' })
    t.same(calls, ['user', 'user'], 'two subscriptions, two calls')
    first()
    await bus.publish({ kind: 'user', userId: 'u' })
    t.same(calls, ['user', 'user', 'user'], 'the other subscription still holds')
    second()
    first()
    await bus.publish({ kind: 'user', userId: 'u' })
    t.equal(calls.length, 3, 'none left; unsubscribing twice is harmless')
  })

  t.test('a handler that throws does not keep the message from the others, and is reported as a warning', async (t) => {
    const bus = await backend.open(t)
    const warnings: Error[] = []
    const onWarning = (warning: Error): void => {
      if (warning.message.includes('a consumer bug')) warnings.push(warning)
    }
    process.on('warning', onWarning)
    t.teardown(() => {
      process.off('warning', onWarning)
    })
    bus.subscribe(() => {
      throw new Error('a consumer bug')
    })
    const { received } = recorder(bus)
    await t.resolves(bus.publish({ kind: 'token', patId: 'p' }), 'publish does not reject for a subscriber\'s error')
    t.same(received, [{ kind: 'token', patId: 'p' }], 'the next handler ran')
    await until('the warning', () => warnings.length > 0)
    t.equal(warnings.length, 1, 'one warning for one failure')
  })

  t.test('onReset, where the bus has it, returns a working unsubscribe', async (t) => {
    const bus = await backend.open(t)
    if (bus.onReset === undefined) {
      t.equal(backend.name, 'memory', 'only a bus that cannot lose messages goes without it')
      return
    }
    const stop = bus.onReset(() => {})
    t.type(stop, 'function')
    stop()
    stop()
  })

  t.test('close: no longer connected, publish rejects, subscribers hear nothing more, twice is fine', async (t) => {
    const [a, b] = await backend.pair(t)
    const bus = await backend.open(t)
    const { received } = recorder(bus)
    await bus.close()
    t.equal(bus.connected, false)
    await t.rejects(bus.publish({ kind: 'user', userId: 'u' }), /closed/)
    t.same(received, [], 'not even locally')
    await t.resolves(bus.close(), 'closing again resolves')
    await t.resolves(a.publish({ kind: 'user', userId: 'still' }), 'other buses are unaffected')
    await settle(a, b)
  })
}

function isMarker(message: InvalidationMessage): boolean {
  return message.kind === 'token' && message.patId.startsWith('marker-')
}
