/**
 * Several upstream servers per route (SPEC §4a, §5 /health, §7, §9) against real node:http
 * servers: the spread, a server killed mid-run, health checks, and that nothing but a request
 * that could not connect is ever sent twice (a POST is never delivered twice).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import t, { type Test } from 'tap'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'

interface TestServer {
  url: string
  /** x-request-id of each request received, with its body. */
  received: Array<{ id: string; method: string; body: string }>
  /** What /healthz answers. */
  healthy: boolean
  /** Destroys every connection and stops listening: a crash. */
  kill(): Promise<void>
}

type Behaviour = (request: IncomingMessage, response: ServerResponse, body: string) => void

const answer: Behaviour = (_request, response) => {
  response.writeHead(200, { 'content-type': 'text/plain' })
  response.end('ok')
}

async function startServer(t: Test, name: string, behaviour: Behaviour = answer): Promise<TestServer> {
  const sockets = new Set<Socket>()
  const state: TestServer = {
    url: '',
    received: [],
    healthy: true,
    kill: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
  const server: Server = createServer((request, response) => {
    if (request.url === '/healthz') {
      response.writeHead(state.healthy ? 200 : 500).end()
      return
    }
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      state.received.push({ id: String(request.headers['x-request-id']), method: request.method ?? '', body })
      response.setHeader('x-server', name)
      behaviour(request, response, body)
    })
  })
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => (server.listening ? state.kill() : undefined))
  return state
}

/** A port nothing listens on: connections to it are refused. */
async function refusingUrl(): Promise<string> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return `http://127.0.0.1:${port}`
}

function gateway(t: Test, route: Record<string, unknown>): Promise<TestGateway> {
  return startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [{ name: 'app', match: '/app', auth: 'public', ...route }]
    },
  })
}

async function until(t: Test, what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.pass(what)
}

const countBy = (values: string[]) => values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {})

t.test('round_robin spreads 300 requests evenly over three servers', async (t) => {
  const servers = await Promise.all(['a', 'b', 'c'].map((name) => startServer(t, name)))
  const gw = await gateway(t, { upstream: servers.map((s) => s.url) })
  const seen: string[] = []
  for (let i = 0; i < 300; i++) {
    const response = await gw.call('GET', '/app/x')
    t.equal(response.status, 200)
    seen.push(String(response.headers['x-server']))
  }
  t.same(countBy(seen), { a: 100, b: 100, c: 100 })
})

t.test('least_request sends new requests past a server that is still busy', async (t) => {
  let release: () => void = () => undefined
  const held = new Promise<void>((resolve) => (release = resolve))
  const slow = await startServer(t, 'slow', (_request, response) => void held.then(() => answer(_request, response, '')))
  const fast = await startServer(t, 'fast')
  const gw = await gateway(t, { upstream: [slow.url, fast.url], load_balancing: 'least_request' })
  const pending = gw.call('GET', '/app/held')
  await until(t, 'the slow server holds a request', async () => slow.received.length === 1)
  for (let i = 0; i < 10; i++) t.equal((await gw.call('GET', '/app/x')).headers['x-server'], 'fast')
  release()
  t.equal((await pending).status, 200)
})

t.test('one server killed mid-run: only the requests in flight on it fail (502, never resent); the rest go to the others', async (t) => {
  const slowly: Behaviour = (request, response) => setTimeout(() => answer(request, response, ''), 15)
  // The victim crashes while its 25th request is in its hands, so at least one request is
  // certainly in flight on it when it dies.
  let killed: Promise<void> | null = null
  let dying: string | null = null
  const crashing: Behaviour = (request, response, body) => {
    if (killed !== null || victim.received.length < 25) return slowly(request, response, body)
    dying = String(request.headers['x-request-id'])
    killed = victim.kill()
  }
  const servers = await Promise.all([startServer(t, 'a', slowly), startServer(t, 'b', crashing), startServer(t, 'c', slowly)])
  const victim = servers[1]!
  const gw = await gateway(t, { upstream: servers.map((s) => s.url) })
  const results: Array<{ id: string; status: number }> = []
  let next = 0
  const worker = async () => {
    while (next < 240) {
      const id = `req-${next++}`
      const response = await gw.call('GET', `/app/${id}`, { headers: { 'x-request-id': id } })
      results.push({ id, status: response.status })
    }
  }
  await Promise.all(Array.from({ length: 6 }, worker))
  t.ok(killed !== null, 'the victim crashed mid-run')
  await killed
  t.same(results.find((r) => r.id === dying), { id: dying, status: 502 }, 'the request the victim died holding is a 502')
  const failed = results.filter((r) => r.status !== 200)
  t.equal(results.length, 240)
  t.ok(failed.every((r) => r.status === 502), 'a failure is a 502')
  t.ok(failed.length <= 6, `at most the requests in flight failed (${failed.length})`)
  // A failed request was in flight on the killed server: its handler had it, or its bytes died
  // with the socket before the handler ran (unread in the socket's buffer, or written to a
  // kept-alive connection the kill had just reset). Either way no other server may see it.
  const onOthers = new Set(servers.filter((s) => s !== victim).flatMap((s) => s.received.map((r) => r.id)))
  t.same(failed.filter((r) => onOthers.has(r.id)), [], 'no failed request reached another server (never resent)')
  const deliveries = countBy(servers.flatMap((s) => s.received.map((r) => r.id)))
  t.same(Object.values(deliveries).filter((n) => n > 1), [], 'no request reached a server twice')
  const succeeded = results.filter((r) => r.status === 200).map((r) => r.id)
  t.same(succeeded.filter((id) => deliveries[id] !== 1), [], 'every request that succeeded reached exactly one server')
  const health = (await gw.call('GET', '/health')).json<{ upstreams: Record<string, unknown> }>()
  t.same(health.upstreams.app, [{ server: 1, state: 'up' }, { server: 2, state: 'ejected' }, { server: 3, state: 'up' }])
  const exposition = await gw.metrics.exposition()
  t.match(exposition, `gatehouse_upstream_server_up{route="app",server="${new URL(victim.url).host}"} 0`)
  t.match(exposition, `gatehouse_upstream_server_up{route="app",server="${new URL(servers[0]!.url).host}"} 1`)
  t.match(exposition, 'gatehouse_circuit_state{breaker="upstream:app"} 0', "one server down never opens the route's breaker")
})

t.test('a request that could not connect goes to another server with its whole body; a POST the server took is never resent', async (t) => {
  const refusing = await refusingUrl()
  const good = await startServer(t, 'good')
  const gw = await gateway(t, { upstream: [refusing, good.url] })
  const body = 'x'.repeat(200_000)
  const first = await gw.call('POST', '/app/upload', { body, headers: { 'x-request-id': 'post-1', 'content-type': 'text/plain' } })
  t.equal(first.status, 200, 'the refused connection was retried on the other server')
  t.same(good.received.map((r) => [r.id, r.method, r.body.length]), [['post-1', 'POST', body.length]])

  // A server that reads the POST and then dies: the client gets 502, the other server never sees it.
  const dying = await startServer(t, 'dying', (request) => request.socket.destroy())
  const other = await startServer(t, 'other')
  const gw2 = await gateway(t, { upstream: [dying.url, other.url] })
  const lost = await gw2.call('POST', '/app/pay', { body: 'amount=10', headers: { 'x-request-id': 'pay-1', 'content-type': 'text/plain' } })
  t.equal(lost.status, 502)
  t.equal(lost.json().code, 'GH_BAD_GATEWAY')
  t.notMatch(lost.text, /127\.0\.0\.1/, 'the 502 names no upstream address')
  t.same(dying.received.map((r) => r.id), ['pay-1'])
  t.same(other.received, [], 'delivered once, never resent')
})

t.test('every server refusing: 502; while every one is left out: 503 GH_UNAVAILABLE with Retry-After', async (t) => {
  const gw = await gateway(t, { upstream: [await refusingUrl(), await refusingUrl()] })
  const refused = await gw.call('GET', '/app/x')
  t.equal(refused.status, 502)
  t.equal(refused.json().code, 'GH_BAD_GATEWAY')
  const out = await gw.call('GET', '/app/x')
  t.equal(out.status, 503)
  t.equal(out.json().code, 'GH_UNAVAILABLE')
  t.ok(Number(out.headers['retry-after']) >= 1 && Number(out.headers['retry-after']) <= 10, `Retry-After ${String(out.headers['retry-after'])}`)
  t.notMatch(out.text, /127\.0\.0\.1/)
})

t.test('a route with one server never leaves it out: each request tries it (502), never a 503 for ejection', async (t) => {
  const gw = await gateway(t, { upstream: await refusingUrl() })
  for (let i = 0; i < 3; i++) t.equal((await gw.call('GET', '/app/x')).status, 502)
  t.same((await gw.call('GET', '/health')).json<{ upstreams: unknown }>().upstreams, { app: [{ server: 1, state: 'up' }] })
})

t.test('a server failing its health checks leaves the rotation and returns after passing them', async (t) => {
  const servers = await Promise.all(['a', 'b'].map((name) => startServer(t, name)))
  const gw = await gateway(t, {
    upstream: servers.map((s) => s.url),
    health_check: { path: '/healthz', interval: '100ms', timeout: '100ms', unhealthy_after: 2, healthy_after: 2 },
  })
  const stateOf = async (index: number) => {
    const health = await gw.call('GET', '/health')
    const text = health.text
    t.notMatch(text, /127\.0\.0\.1/, '/health never names a server address')
    return health.json<{ upstreams: Record<string, Array<{ server: number; state: string }>> }>().upstreams.app?.[index - 1]?.state
  }
  servers[0]!.healthy = false
  await until(t, 'server 1 is unhealthy', async () => (await stateOf(1)) === 'unhealthy')
  const seen: string[] = []
  for (let i = 0; i < 6; i++) seen.push(String((await gw.call('GET', '/app/x')).headers['x-server']))
  t.same(countBy(seen), { b: 6 }, 'only the healthy server gets requests')
  t.match(await gw.metrics.exposition(), `gatehouse_upstream_server_up{route="app",server="${new URL(servers[0]!.url).host}"} 0`)
  servers[0]!.healthy = true
  await until(t, 'server 1 is back', async () => (await stateOf(1)) === 'up')
  const after: string[] = []
  for (let i = 0; i < 6; i++) after.push(String((await gw.call('GET', '/app/x')).headers['x-server']))
  t.same(countBy(after), { a: 3, b: 3 })
})
