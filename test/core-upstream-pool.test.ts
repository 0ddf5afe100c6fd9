import t from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { PASSIVE_EJECTION_MS, UpstreamPool, type UpstreamPoolOptions } from '../src/core/upstream-pool.js'

const SERVERS = ['http://10.0.0.1:9001', 'http://10.0.0.2:9001', 'http://10.0.0.3:9001']

function pool(options: Partial<UpstreamPoolOptions> = {}, servers = SERVERS) {
  const clock = new ManualClock()
  const changes: string[] = []
  const made = new UpstreamPool(servers, {
    balancing: 'round_robin',
    healthCheck: { unhealthy_after: 3, healthy_after: 2 },
    clock,
    onChange: (server, inRotation) => changes.push(`${server.index}:${inRotation ? 'in' : 'out'}`),
    ...options,
  })
  return { pool: made, clock, changes }
}

const picks = (p: UpstreamPool, n: number) => Array.from({ length: n }, () => p.pick()?.index ?? null)

t.test('round robin takes the servers in turn; the metric label is host:port', async (t) => {
  const { pool: p } = pool()
  t.same(picks(p, 6), [1, 2, 3, 1, 2, 3])
  t.same(p.servers.map((s) => s.label), ['10.0.0.1:9001', '10.0.0.2:9001', '10.0.0.3:9001'])
})

t.test('least_request picks the server with the fewest requests in flight', async (t) => {
  const { pool: p } = pool({ balancing: 'least_request' })
  const [one, two] = p.servers
  const endOne = p.begin(one!)
  p.begin(one!)
  p.begin(two!)
  t.equal(p.pick()?.index, 3)
  endOne()
  endOne() // ending twice counts once
  t.equal(p.pick()?.index, 3, 'one and two have one each, three none')
  p.begin(p.servers[2]!)
  t.same([p.pick()?.index, p.pick()?.index, p.pick()?.index], [1, 2, 3], 'one each: in turn')
})

t.test('a server that refused a connection is left out for 10 s, then comes back', async (t) => {
  const { pool: p, clock, changes } = pool()
  const second = p.servers[1]!
  p.connectFailed(second)
  t.equal(p.state(second), 'ejected')
  t.same(picks(p, 4), [1, 3, 1, 3])
  t.same(changes, ['2:out'])
  clock.advance(PASSIVE_EJECTION_MS - 1)
  t.notOk(p.inRotation(second))
  clock.advance(1)
  t.ok(p.inRotation(second))
  t.equal(p.state(second), 'up')
})

t.test('a retry never picks a server already tried; null when none is left', async (t) => {
  const { pool: p } = pool()
  t.equal(p.pick(new Set([1, 2]))?.index, 3)
  t.equal(p.pick(new Set([1, 2, 3])), null)
})

t.test('every server out: no pick, and Retry-After until the first ejection ends', async (t) => {
  const { pool: p, clock } = pool()
  for (const server of p.servers) {
    p.connectFailed(server)
    clock.advance(1000)
  }
  t.equal(p.pick(), null)
  t.equal(p.retryAfterSeconds(), 7, 'the first was ejected 3 s ago')
})

t.test('health checks: unhealthy_after failures in a row take a server out, healthy_after successes bring it back', async (t) => {
  const { pool: p, changes } = pool()
  const first = p.servers[0]!
  p.probed(first, false)
  p.probed(first, false)
  p.probed(first, true) // the run is broken
  p.probed(first, false)
  p.probed(first, false)
  t.equal(p.state(first), 'up')
  p.probed(first, false)
  t.equal(p.state(first), 'unhealthy')
  t.same(picks(p, 2), [2, 3])
  p.probed(first, true)
  t.equal(p.state(first), 'unhealthy')
  p.probed(first, true)
  t.equal(p.state(first), 'up')
  t.same(changes, ['1:out', '1:in'])
})

t.test('a route with one server never leaves it out (SPEC §7 holds as written)', async (t) => {
  const { pool: p } = pool({}, ['http://10.0.0.1:9001'])
  const only = p.servers[0]!
  p.connectFailed(only)
  for (let i = 0; i < 5; i++) p.probed(only, false)
  t.equal(p.state(only), 'up')
  t.equal(p.pick()?.index, 1)
})
