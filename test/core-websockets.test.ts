/**
 * The core of WebSocket tracking without a network: frame boundaries and sizes (FrameReader),
 * which open sockets a bus message concerns, the sweep while the bus may miss messages, and
 * the checker's verdicts (route changed, credential gone, expired, permissions lost).
 */
import t from 'tap'
import type { RouteConfig } from '../src/config/types.js'
import { ManualClock } from '../src/core/clock.js'
import type { Identity } from '../src/core/identity.js'
import { closeFrame, FrameReader, OpenSockets, socketChecker, type OpenSocket, type SocketChecker, type TrackedSocket } from '../src/core/websockets/index.js'
import { GatehouseError } from '../src/errors.js'
import type { InvalidationBus, InvalidationMessage } from '../src/kv/invalidation.js'
import { routeConfig, testIdentity } from './helpers/fixtures.js'

/** A bus whose `connected` the test sets, delivering synchronously. */
class TestBus implements InvalidationBus {
  readonly kind = 'memory'
  connected = true
  readonly handlers = new Set<(message: InvalidationMessage) => void>()
  async publish(message: InvalidationMessage): Promise<void> {
    for (const handler of this.handlers) handler(message)
  }
  subscribe(handler: (message: InvalidationMessage) => void): () => void {
    this.handlers.add(handler)
    return () => this.handlers.delete(handler)
  }
  async close(): Promise<void> {}
}

function frameHeader(length: number, masked: boolean, opcode = 0x2): Buffer {
  const mask = masked ? 0x80 : 0
  const key = masked ? [1, 2, 3, 4] : []
  if (length < 126) return Buffer.from([0x80 | opcode, mask | length, ...key])
  if (length < 65536) return Buffer.from([0x80 | opcode, mask | 126, length >> 8, length & 0xff, ...key])
  const big = Buffer.alloc(8)
  big.writeBigUInt64BE(BigInt(length))
  return Buffer.from([0x80 | opcode, mask | 127, ...big, ...key])
}

t.test('FrameReader follows frame boundaries across chunks and refuses a frame over the limit', async (t) => {
  const reader = new FrameReader(1024 * 1024)
  const frame = Buffer.concat([frameHeader(300, true), Buffer.alloc(300)])
  t.equal(reader.read(frame.subarray(0, 3)), 'ok')
  t.notOk(reader.atBoundary, 'inside a header')
  t.equal(reader.read(frame.subarray(3, 100)), 'ok')
  t.notOk(reader.atBoundary, 'inside a payload')
  t.equal(reader.read(frame.subarray(100)), 'ok')
  t.ok(reader.atBoundary, 'between frames')
  t.equal(reader.read(Buffer.concat([frameHeader(1024 * 1024, false), Buffer.alloc(10)])), 'ok', 'exactly 1 MiB is allowed')
  const fresh = new FrameReader(1024 * 1024)
  const small = Buffer.concat([frameHeader(5, true), Buffer.alloc(5)])
  t.equal(fresh.read(Buffer.concat([small, frameHeader(1024 * 1024 + 1, true)])), 'too_big')
  t.equal(fresh.oversizedAt, small.length, 'the oversized header starts after the whole frames before it')
  const closing = new FrameReader()
  closing.read(closeFrame(1008, 'x', true))
  t.ok(closing.sawClose && closing.atBoundary, 'a close frame is recognised, masked or not')
})

function tracked(overrides: Partial<TrackedSocket> = {}): OpenSocket & { closedWith: [number, string][] } {
  const closedWith: [number, string][] = []
  return {
    route: routeConfig('live', '/live', { websocket: true, permissions: ['app:read'] }),
    rawHeaders: [],
    userId: 'u1',
    sessionId: 's1',
    patId: null,
    expiresAt: null,
    ...overrides,
    closedWith,
    close: (code, reason) => void closedWith.push([code, reason]),
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve))

t.test('a bus message re-checks exactly the sockets it concerns; the sweep runs only while the bus may miss messages', async (t) => {
  const bus = new TestBus()
  const sockets = new OpenSockets({ bus, clock: new ManualClock(), sweepMs: 10 })
  t.teardown(() => sockets.stop())
  const checked: TrackedSocket[] = []
  const checker: SocketChecker = { check: async (socket) => (checked.push(socket), 'revoked') }
  sockets.useChecker(checker)
  const a = tracked({ userId: 'u1', sessionId: 's1' })
  const b = tracked({ userId: 'u1', sessionId: 's2' })
  const c = tracked({ userId: 'u2', sessionId: null, patId: 'p1' })
  for (const socket of [a, b, c]) sockets.add(socket)

  await bus.publish({ kind: 'session', userId: 'u1', sessionId: 's2' })
  await settle()
  t.same(checked, [b], 'only the socket of that session')
  t.same(b.closedWith, [[1008, 'revoked']], 'closed with 1008')
  checked.length = 0
  await bus.publish({ kind: 'token', patId: 'p1' })
  await settle()
  t.same(checked, [c], 'only the socket of that token')
  checked.length = 0
  await bus.publish({ kind: 'user', userId: 'u1' })
  await settle()
  t.same(new Set(checked), new Set([a, b]), 'every socket of that user')

  checked.length = 0
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(checked, [], 'no sweep while the bus is connected')
  bus.connected = false
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(checked.length >= 3, 'every socket is swept while it is not')
})

t.test('socketChecker: the same credential, the same route and a policy that still allows', async (t) => {
  const clock = new ManualClock()
  const route = routeConfig('live', '/live', { websocket: true, permissions: ['app:read'] })
  const identity: Identity = testIdentity({ permissions: ['app:read'], expiresAt: clock.now() + 60_000 })
  let resolved: Identity | null | Error = identity
  const credentials = {
    resolve: async () => {
      if (resolved instanceof Error) throw resolved
      return resolved
    },
  }
  const socket: TrackedSocket = {
    route,
    rawHeaders: [],
    userId: identity.user.id,
    sessionId: identity.session?.session.id ?? null,
    patId: null,
    expiresAt: clock.now() + 1_000,
  }
  const check = (routes: RouteConfig[] = [route]) => socketChecker({ routes, credentials, clock }).check(socket)

  t.equal(await check(), 'keep')
  t.equal(socket.expiresAt, identity.expiresAt, 'the expiry moves on with the credential')
  t.equal(await check([]), 'revoked', 'the route was removed')
  t.equal(await check([{ ...route, permissions: ['app:write'] }]), 'revoked', 'its permissions changed')
  t.equal(await check([{ ...route, upstream: 'http://127.0.0.1:9/' }]), 'revoked', 'its upstream changed')
  t.equal(await check([{ ...route, websocket: false }]), 'revoked', 'it no longer takes WebSockets')
  resolved = { ...identity, permissions: [] }
  t.equal(await check(), 'revoked', 'the roles no longer grant the route')
  resolved = { ...identity, session: null, method: 'pat', tokenId: 'other' }
  t.equal(await check(), 'revoked', 'another credential of the same user is not this one')
  resolved = new GatehouseError('GH_UNAVAILABLE')
  t.equal(await check(), 'keep', 'a store outage keeps the socket until the next check')
  resolved = null
  t.equal(await check(), 'revoked', 'the credential is gone')
  clock.advance(120_000)
  t.equal(await check(), 'expired', 'gone after its expiry: expired')
})

t.test('socketChecker: the second-factor rules of SPEC §3 hold for open sockets too', async (t) => {
  const clock = new ManualClock()
  const route = routeConfig('live', '/live', { websocket: true, mfa: 'required' })
  const pat: Identity = testIdentity({ method: 'pat', amr: ['pat'], secondFactor: true, session: null, tokenId: 'tok', via: 'header' }, { roles: ['admin'] })
  const socket: TrackedSocket = { route, rawHeaders: [], userId: pat.user.id, sessionId: null, patId: 'tok', expiresAt: null }
  let userHasFactor = true
  const secondFactors = { requiredRoles: ['admin'], hasSecondFactor: async () => userHasFactor }
  const check = (routes: RouteConfig[] = [route]) => socketChecker({ routes, credentials: { resolve: async () => pat }, clock, secondFactors }).check(socket)
  t.equal(await check(), 'keep', 'a PAT made with a second factor, whose user has one')
  userHasFactor = false
  t.equal(await check(), 'revoked', 'its user removed the factor')
  t.equal(await check([{ ...route, mfa: 'optional' }]), 'revoked', 'a route whose mfa changed is another grant')
  const plain = { ...route, mfa: 'optional' as const }
  const ordinary: TrackedSocket = { ...socket, route: plain }
  const checkOrdinary = socketChecker({ routes: [plain], credentials: { resolve: async () => pat }, clock, secondFactors }).check(ordinary)
  t.equal(await checkOrdinary, 'revoked', 'a user who must enrol loses even an ordinary route')
})
