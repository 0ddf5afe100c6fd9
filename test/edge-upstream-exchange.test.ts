/**
 * The exchange with the upstream as the edge drives it (http/upstream-call, undici directly):
 * connection-specific fields stay on their own hop in both directions, informational answers
 * are passed over, an answer node cannot send is a 502, and clients that leave take their
 * upstream request with them without counting as upstream failures.
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import t, { type Test } from 'tap'
import type { KeyValueStore } from '../src/kv/store.js'
import { sessionStoreBackends } from './helpers/backends.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'
import { rawCall } from './helpers/raw-http.js'

async function upstreamServer(t: Test, handle: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  const server = createServer(handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** `count` clients, each sending GET `path` and closing its connection `afterMs` later, unanswered. */
async function clientsLeaving(gw: TestGateway, count: number, path: string, afterMs: number): Promise<void> {
  const port = Number(new URL(gw.url).port)
  await Promise.all(Array.from({ length: count }, async () => {
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false })
    await once(socket, 'secureConnect')
    socket.write(`GET ${path} HTTP/1.1\r\nHost: gatehouse.test\r\n\r\n`)
    await new Promise((resolve) => setTimeout(resolve, afterMs))
    socket.destroy()
  }))
}

async function gatewayFor(t: Test, upstream: string): Promise<TestGateway> {
  return startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [{ name: 'app', match: '/', upstream, auth: 'public', timeout: '5s' }]
    },
  })
}

t.test('the upstream answer reaches the client without its connection-specific fields', async (t) => {
  const upstream = await upstreamServer(t, (request, response) => {
    request.resume()
    response.writeHead(200, {
      connection: 'keep-alive, x-upstream-hop',
      'keep-alive': 'timeout=1',
      'x-upstream-hop': 'for the gateway only',
      'x-kept': 'yes',
      'set-cookie': ['a=1', 'b=2'],
    })
    response.end('ok')
  })
  const gw = await gatewayFor(t, upstream)
  const response = await gw.call('GET', '/x')
  t.equal(response.status, 200)
  t.equal(response.text, 'ok')
  t.equal(response.headers['x-kept'], 'yes')
  t.same(response.headers['set-cookie'], ['a=1', 'b=2'], 'repeated fields arrive as sent')
  t.equal(response.headers['x-upstream-hop'], undefined, 'a field the upstream\'s Connection names')
  t.equal(response.headers['keep-alive'], undefined, 'the upstream\'s keep-alive is its own')
  t.match(String(response.headers['x-request-id']), /\S/, 'the gateway\'s own fields are there too')
})

t.test('the fields a client\'s Connection names, and its connection-specific ones, are not forwarded', async (t) => {
  const seen: IncomingMessage['headers'][] = []
  const upstream = await upstreamServer(t, (request, response) => {
    seen.push(request.headers)
    request.resume()
    response.end('ok')
  })
  const gw = await gatewayFor(t, upstream)
  const response = await rawCall(gw.url, 'GET', '/x', [
    ['Connection', 'keep-alive, X-Client-Hop'], ['X-Client-Hop', '1'], ['X-Other', '2'],
    ['Keep-Alive', 'timeout=5'], ['Proxy-Connection', 'keep-alive'], ['TE', 'trailers'], ['Trailer', 'x-sum'], ['HTTP2-Settings', 'AAMAAABkAAQAAP__'],
  ])
  t.equal(response.status, 200)
  t.equal(seen.length, 1)
  t.equal(seen[0]?.['x-client-hop'], undefined)
  t.equal(seen[0]?.['x-other'], '2')
  for (const name of ['keep-alive', 'proxy-connection', 'te', 'trailer', 'http2-settings']) t.equal(seen[0]?.[name], undefined, `no ${name}`)
})

t.test('informational answers are passed over: the client gets the final one', async (t) => {
  const upstream = await upstreamServer(t, (request, response) => {
    request.resume()
    response.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
    setTimeout(() => response.writeHead(201, { 'content-type': 'text/plain' }).end('final'), 20)
  })
  const gw = await gatewayFor(t, upstream)
  const response = await gw.call('GET', '/x')
  t.equal(response.status, 201)
  t.equal(response.text, 'final')
})

t.test('an upstream status above 599 is a 502, naming no upstream', async (t) => {
  const upstream = await upstreamServer(t, (request, response) => {
    request.resume()
    response.writeHead(700).end('odd')
  })
  const gw = await gatewayFor(t, upstream)
  const response = await gw.call('GET', '/x')
  t.equal(response.status, 502)
  t.equal(response.json().code, 'GH_BAD_GATEWAY')
  t.notMatch(response.text, /127\.0\.0\.1/)
})

t.test('clients that leave before the answer cancel their upstream request and do not open the breaker', async (t) => {
  let received = 0
  let cancelled = 0
  const upstream = await upstreamServer(t, (request, response) => {
    received++
    request.resume()
    response.once('close', () => {
      if (!response.writableFinished) cancelled++
    })
    const answer = setTimeout(() => response.end('late'), request.url === '/slow' ? 2_000 : 0)
    response.once('close', () => clearTimeout(answer))
  })
  const gw = await gatewayFor(t, upstream)
  // More than the breaker's volume threshold (20), each client gone while its request waits.
  const leavers = 30
  await clientsLeaving(gw, leavers, '/slow', 150)
  for (let waited = 0; cancelled < leavers && waited < 5_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(received, leavers, 'every request reached the upstream')
  t.equal(cancelled, leavers, 'and every one was cancelled there when its client left')
  const after = await gw.call('GET', '/x')
  t.equal(after.status, 200, 'the route still answers: leaving clients are not upstream failures')
})

t.test('clients that leave while their request is authorised are sent nowhere and open no breaker', async (t) => {
  // The rate limit's counter answers after 300 ms, as a distant Redis might: each client
  // leaves within that time, before the gateway has picked an upstream server. The store is
  // the real memory store; only its counting is made slow.
  const memory = await sessionStoreBackends()[0]!.open(t)
  let counting = 0
  const slowCounting = new Proxy(memory, {
    get(target, name, receiver) {
      if (name === 'increment') {
        return async (key: string, windowMs: number) => {
          counting++
          await new Promise((resolve) => setTimeout(resolve, 300))
          return target.increment(key, windowMs)
        }
      }
      const value: unknown = Reflect.get(target, name, receiver)
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value
    },
  }) as KeyValueStore
  let received = 0
  const upstream = await upstreamServer(t, (request, response) => {
    received++
    request.resume()
    response.end('ok')
  })
  const gw = await startTestGateway(t, {
    store: slowCounting,
    configure: (raw) => {
      raw.rate_limits = { counted: { max: 1000, window: '1m', key: 'ip' } }
      raw.routes = [{ name: 'app', match: '/', upstream, auth: 'public', rate_limit: 'counted', timeout: '5s' }]
    },
  })
  // More than the breaker's volume threshold (20).
  const leavers = 30
  await clientsLeaving(gw, leavers, '/x', 100)
  // Every count has been answered, and its request has gone on as far as it would.
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.equal(counting, leavers, 'every request was being counted when its client left')
  t.equal(received, 0, 'none was sent to the upstream: nobody wanted the answer')
  t.match(await gw.metrics.exposition(), /gatehouse_circuit_state\{breaker="upstream:app"\} 0/, 'the route\'s breaker is closed')
  const after = await gw.call('GET', '/x')
  t.equal(after.status, 200, 'the route still answers: leaving clients are not upstream failures')
  t.equal(received, 1)
})
