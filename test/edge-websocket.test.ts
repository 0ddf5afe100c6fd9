/**
 * WebSockets through the gateway (SPEC §4a) with a real client and a real upstream (`ws`):
 * the handshake is judged like any request and refused with the ordinary HTTP error (never a
 * 101), the upstream gets the §4 headers and an assertion for GET, frames pass untouched both
 * ways, an oversized frame closes with 1009, and open sockets close (1008) when their
 * credential ends, on this replica and on another one sharing Redis.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import type { InvalidationBus } from '../src/kv/invalidation.js'
import { bearer, sessionCookie, signUp } from './helpers/auth-client.js'
import { databaseBackends, invalidationBusBackends, sessionStoreBackends } from './helpers/backends.js'
import { PUBLIC_URL, startTestGateway, testCertificate, type RawConfig, type TestGateway } from './helpers/gateway.js'
import { closed, nextMessage, openSocket, refusedHandshake, startEchoUpstream, type EchoUpstream } from './helpers/websocket.js'


function routes(upstream: EchoUpstream) {
  return (raw: RawConfig) => {
    raw.routes = [
      { name: 'live', match: '/live', upstream: upstream.url, websocket: true, permissions: ['app:read'] },
      { name: 'ops', match: '/ops', upstream: upstream.url, websocket: true, permissions: ['app:write'] },
      { name: 'limited', match: '/limited', upstream: upstream.url, websocket: true, rate_limit: { max: 1, window: '1m', key: 'user' } },
      { name: 'plain', match: '/plain', upstream: upstream.url, websocket: false, auth: 'public' },
    ]
  }
}

async function client(gw: TestGateway, path: string, headers: Record<string, string>) {
  return openSocket(gw.url, path, { headers, ca: (await testCertificate()).cert })
}

async function refused(gw: TestGateway, path: string, headers: Record<string, string>) {
  return refusedHandshake(gw.url, path, { headers, ca: (await testCertificate()).cert })
}

function claims(assertion: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(assertion.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>
}

t.test('a handshake goes upstream with the §4 headers; frames pass both ways untouched', async (t) => {
  const upstream = await startEchoUpstream(t)
  const gw = await startTestGateway(t, { configure: routes(upstream) })
  const alice = await signUp(gw, 'ws-frames')
  const socket = await client(gw, '/live/feed?x=1', { ...bearer(alice.token), 'x-auth-user-id': 'forged', 'x-request-id': 'ws-req-1' })
  t.teardown(() => socket.terminate())

  const [handshake] = upstream.handshakes
  t.ok(handshake, 'the upstream got the handshake')
  const headers = handshake!.headers
  t.equal(handshake!.url, '/live/feed?x=1')
  t.equal(headers['x-auth-user-id'], alice.user.id, 'the forged X-Auth-User-Id was replaced')
  t.equal(headers['x-auth-method'], 'session')
  t.equal(headers.authorization, undefined, 'the gateway credential is not forwarded')
  t.equal(headers['x-request-id'], 'ws-req-1')
  t.equal(headers['x-forwarded-proto'], 'https')
  const assertion = claims(String(headers['x-auth-assertion']))
  t.match(assertion, { sub: alice.user.id, aud: 'live', htm: 'GET', htu: '/live/feed?x=1', rid: 'ws-req-1', iss: PUBLIC_URL })

  const text = 'héllo ✓ '.repeat(50)
  socket.send(text)
  const echoedText = await nextMessage(socket)
  t.equal(echoedText.isBinary, false)
  t.equal(echoedText.data.toString('utf8'), text, 'text frames untouched')
  const binary = randomBytes(200_000)
  socket.send(binary)
  const echoedBinary = await nextMessage(socket)
  t.equal(echoedBinary.isBinary, true)
  t.ok(echoedBinary.data.equals(binary), 'binary frames untouched')
  upstream.broadcast(Buffer.from([0, 1, 2, 255]))
  t.same([...(await nextMessage(socket)).data], [0, 1, 2, 255], 'a frame the upstream sends on its own arrives')

  t.match(await gw.metrics.exposition(), /gatehouse_websocket_connections\{route="live"\} 1/)
  socket.close(1000, 'bye')
  t.equal((await closed(socket)).code, 1000, "the client's close handshake goes through")
  await new Promise((resolve) => setTimeout(resolve, 100))
  const metrics = await gw.metrics.exposition()
  t.match(metrics, /gatehouse_websocket_connections\{route="live"\} 0/)
  t.match(metrics, /gatehouse_websocket_closed_total\{route="live",reason="client"\} 1/)
  t.match(metrics, /gatehouse_websocket_closed_total\{route="ops",reason="revoked"\} 0/, 'the close counters start at 0')
})

t.test('refused handshakes get the ordinary HTTP error and never a 101', async (t) => {
  const upstream = await startEchoUpstream(t)
  const gw = await startTestGateway(t, { configure: routes(upstream) })
  const alice = await signUp(gw, 'ws-refused')
  const cookie = sessionCookie(gw, alice.token)
  const cases: [string, string, Record<string, string>, number, string][] = [
    ['no credential', '/live', {}, 401, 'GH_UNAUTHENTICATED'],
    ['an unknown bearer token', '/live', bearer('A'.repeat(43)), 401, 'GH_UNAUTHENTICATED'],
    ['a missing permission', '/ops', bearer(alice.token), 403, 'GH_FORBIDDEN'],
    ['no route', '/nowhere', bearer(alice.token), 404, 'GH_NOT_FOUND'],
    ['an encoded slash in the path', '/live/a%2Fb', bearer(alice.token), 400, 'GH_BAD_PATH'],
    ['a cookie with a cross-site Origin', '/live', { ...cookie, origin: 'https://evil.example' }, 403, 'GH_CSRF'],
    ['a cookie without an Origin', '/live', cookie, 403, 'GH_CSRF'],
    ['a cookie with Sec-Fetch-Site cross-site and a foreign Origin', '/live', { ...cookie, origin: 'null', 'sec-fetch-site': 'cross-site' }, 403, 'GH_CSRF'],
  ]
  for (const [what, path, headers, status, code] of cases) {
    const answer = await refused(gw, path, headers)
    t.equal(answer.status, status, `${what}: ${status}`)
    t.equal(answer.body.code, code, `${what}: ${code}`)
    t.equal(answer.headers['content-type'], 'application/json; charset=utf-8')
    t.ok(answer.headers['x-request-id'], `${what}: the request id is echoed`)
  }
  t.equal(upstream.handshakes.length, 0, 'no refused handshake reached the upstream')

  const first = await client(gw, '/limited', bearer(alice.token))
  t.teardown(() => first.terminate())
  const limited = await refused(gw, '/limited', bearer(alice.token))
  t.equal(limited.status, 429, 'the handshake counts once against the rate limit')
  t.equal(limited.body.code, 'GH_RATE_LIMITED')
  t.ok(limited.headers['retry-after'])
  t.equal(upstream.handshakes.length, 1)

  const fromOwnOrigin = await client(gw, '/live', { ...cookie, origin: PUBLIC_URL })
  t.teardown(() => fromOwnOrigin.terminate())
  t.equal(fromOwnOrigin.readyState, WebSocket.OPEN, 'a cookie handshake from the allowed origin opens')
  t.match(await gw.metrics.exposition(), /gatehouse_decisions_total\{route="live",outcome="forbidden"\} 3/)
})

t.test('on a route without websocket, and for any other Upgrade, the Upgrade is stripped', async (t) => {
  const upstream = await startEchoUpstream(t)
  const gw = await startTestGateway(t, { configure: routes(upstream) })
  const answer = await rawHandshake(gw, '/plain/x', 'websocket')
  t.match(answer, /^HTTP\/1\.1 200 /, 'a route without websocket: the Upgrade is stripped, an ordinary answer')
  t.match(answer, /plain answer/)
  const h2c = await rawHandshake(gw, '/plain/x', 'h2c')
  t.match(h2c, /^HTTP\/1\.1 200 /, 'Upgrade: h2c is stripped and the request served as usual')
  t.equal(upstream.handshakes.length, 0)
})

t.test("a handshake: the fields the client's Connection names are not forwarded; the upstream gets its own Host unless preserve_host", async (t) => {
  const upstream = await startEchoUpstream(t)
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [
        { name: 'own', match: '/own', upstream: upstream.url, websocket: true, auth: 'public' },
        { name: 'kept', match: '/kept', upstream: upstream.url, websocket: true, auth: 'public', preserve_host: true },
      ]
    },
  })
  const clientHost = `localhost:${new URL(gw.url).port}`
  const extra = `Host: ${clientHost}\r\nConnection: Upgrade, X-Drop-Me, X-Auth-User-Id\r\nX-Drop-Me: 1\r\nX-Keep-Me: 2\r\n`
  t.match(await openByHand(gw, '/own/x', extra), /^HTTP\/1\.1 101 /, 'the handshake is accepted')
  const own = upstream.handshakes[0]!.headers
  t.equal(own['x-drop-me'], undefined, 'a field the Connection names is not forwarded')
  t.equal(own['x-keep-me'], '2', 'the others are')
  t.equal(own.host, new URL(upstream.url).host, "the upstream's own host")
  t.equal(own['x-forwarded-host'], clientHost)
  t.equal(own.connection, 'Upgrade', "the gateway's own Connection")
  t.match(await openByHand(gw, '/kept/x', extra), /^HTTP\/1\.1 101 /)
  const kept = upstream.handshakes[1]!.headers
  t.equal(kept.host, clientHost, "preserve_host: the client's Host")
  t.equal(kept['x-drop-me'], undefined)
})

t.test("the gateway tunnels only after the upstream's 101 with the right Sec-WebSocket-Accept", async (t) => {
  // An upstream that answers handshakes by hand: a 101 with a wrong accept value, or a 403.
  const fake = createServer()
  fake.on('upgrade', (request, socket) => {
    if ((request.url ?? '').includes('deny')) {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nset-cookie: __Host-gh_session=planted\r\nconnection: x-upstream-hop\r\nx-upstream-hop: 1\r\nx-kept: 2\r\n\r\nnope!\n')
    } else {
      socket.end('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: bm90IHRoZSByaWdodCB2YWx1ZQ==\r\n\r\n')
    }
  })
  fake.listen(0, '127.0.0.1')
  await once(fake, 'listening')
  t.teardown(() => new Promise<void>((resolve) => fake.close(() => resolve())))
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [{ name: 'fake', match: '/fake', upstream: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, websocket: true, auth: 'public' }]
    },
  })
  const wrongAccept = await refused(gw, '/fake/x', {})
  t.equal(wrongAccept.status, 502, 'a 101 with a wrong Sec-WebSocket-Accept is a 502, never passed on')
  t.equal(wrongAccept.body.code, 'GH_BAD_GATEWAY')
  const denied = await refused(gw, '/fake/deny', {})
  t.equal(denied.status, 403, "the upstream's own refusal is relayed as an ordinary answer")
  t.equal(denied.body.text, 'nope!\n')
  t.equal(denied.headers['set-cookie'], undefined, "an upstream's Set-Cookie for the gateway's cookie is dropped")
  t.equal(denied.headers['x-upstream-hop'], undefined, "a field the upstream's Connection names stays behind")
  t.equal(denied.headers['x-kept'], '2')
})

/** A handshake written by hand (no Sec-WebSocket-Key check on our side); resolves the whole answer. */
async function rawHandshake(gw: TestGateway, path: string, upgrade: string): Promise<string> {
  const port = Number(new URL(gw.url).port)
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: (await testCertificate()).cert, servername: 'localhost' })
  let answer = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk))
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: ${upgrade}\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  )
  await new Promise((resolve) => socket.once('close', resolve))
  return answer
}

t.test('a frame over 1 MiB closes the socket with 1009', async (t) => {
  const upstream = await startEchoUpstream(t)
  const gw = await startTestGateway(t, { configure: routes(upstream) })
  const alice = await signUp(gw, 'ws-big')
  const socket = await client(gw, '/live', bearer(alice.token))
  t.teardown(() => socket.terminate())
  socket.send(randomBytes(1024 * 1024))
  t.equal((await nextMessage(socket)).data.length, 1024 * 1024, 'exactly 1 MiB passes')
  socket.send(randomBytes(1024 * 1024 + 1))
  t.equal((await closed(socket)).code, 1009, 'one byte more closes with 1009')
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(upstream.closes.at(-1), 1009, 'the upstream is told too')
  t.match(await gw.metrics.exposition(), /gatehouse_websocket_closed_total\{route="live",reason="client"\} 1/)
})

t.test('an open socket keeps its session alive, and the absolute timeout closes it', async (t) => {
  const upstream = await startEchoUpstream(t)
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      routes(upstream)(raw)
      raw.sessions = { idle_timeout: '2s', absolute_timeout: '4s' }
    },
  })
  const alice = await signUp(gw, 'ws-expiry')
  const socket = await client(gw, '/live', bearer(alice.token))
  t.teardown(() => socket.terminate())
  const { code, ms } = await closed(socket)
  t.equal(code, 1008, 'closed with 1008 when the session ends')
  t.ok(ms >= 2_500, `it outlived the idle timeout: the open socket counted as activity (${ms} ms)`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(await gw.metrics.exposition(), /gatehouse_websocket_closed_total\{route="live",reason="expired"\} 1/)
  t.equal((await gw.call('GET', '/auth/me', { headers: bearer(alice.token) })).status, 401, 'the session has ended')
})

/** The replicas' buses: on Redis when TEST_REDIS_URL is set, else one memory bus. */
function buses(t: Test): Promise<[InvalidationBus, InvalidationBus]> {
  return invalidationBusBackends().at(-1)!.pair(t)
}

t.test('two replicas sharing Redis: a credential ended on one closes the socket opened through the other within 1 s', async (t) => {
  const upstream = await startEchoUpstream(t)
  const db = await databaseBackends().at(-1)!.open(t)
  const store = await sessionStoreBackends().at(-1)!.open(t)
  const [busA, busB] = await buses(t)
  const a = await startTestGateway(t, { db, store, invalidation: busA, configure: routes(upstream) })
  const b = await startTestGateway(t, { db, store, invalidation: busB, configure: routes(upstream) })
  const admin = await signUp(a, 'ws-admin')
  await a.runtime.users.setRoles(admin.user.id, ['admin'])

  const within1s = async (what: string, socket: WebSocket, end: () => Promise<unknown>) => {
    const closing = closed(socket)
    await end()
    const { code, ms } = await closing
    t.equal(code, 1008, `${what}: 1008`)
    t.ok(ms < 1_000, `${what}: within 1 s (${ms} ms)`)
  }

  const loggedOut = await signUp(a, 'ws-logout')
  const bystander = await login(a, loggedOut.user.email)
  const other = await client(b, '/live', bearer(bystander.token))
  t.teardown(() => other.terminate())
  await within1s('logout on A', await client(b, '/live', bearer(loggedOut.token)), () => a.call('POST', '/auth/logout', { headers: bearer(loggedOut.token) }))
  t.equal(other.readyState, WebSocket.OPEN, "the same user's other session keeps its socket")

  const owner = await signUp(a, 'ws-pat')
  const created = await a.runtime.pats.create({ id: owner.user.id, permissions: ['app:read'] }, { name: 'socket' })
  await within1s('PAT revoked on A', await client(b, '/live', bearer(created.token)), () => a.runtime.pats.revoke(owner.user.id, created.pat.id))

  const disabled = await signUp(a, 'ws-disable')
  await within1s('user disabled on A', await client(b, '/live', bearer(disabled.token)), () =>
    a.call('PATCH', `/auth/admin/users/${disabled.user.id}`, { json: { disabled: true }, headers: bearer(admin.token) }),
  )

  const demoted = await signUp(a, 'ws-roles')
  await a.runtime.users.setRoles(demoted.user.id, ['operator'])
  const opsSocket = await client(b, '/ops', bearer(demoted.token))
  const liveSocket = await client(b, '/live', bearer(demoted.token))
  t.teardown(() => liveSocket.terminate())
  await within1s('a role change on A that removes app:write', opsSocket, () =>
    a.call('PATCH', `/auth/admin/users/${demoted.user.id}`, { json: { roles: ['viewer'] }, headers: bearer(admin.token) }),
  )
  t.equal(liveSocket.readyState, WebSocket.OPEN, 'a socket the remaining roles still grant stays open')
  t.match(await b.metrics.exposition(), /gatehouse_websocket_closed_total\{route="live",reason="revoked"\} 3/)
})

async function login(gw: TestGateway, email: string) {
  const response = await gw.call('POST', '/auth/login', { json: { email, password: 'correct horse battery staple' } })
  return response.json<{ token: string }>()
}

/** A handshake written by hand with `headers` (CRLF-terminated lines, Host among them); resolves the answer's head. */
async function openByHand(gw: TestGateway, path: string, headers: string): Promise<string> {
  const port = Number(new URL(gw.url).port)
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: (await testCertificate()).cert, servername: 'localhost' })
  let answer = ''
  socket.setEncoding('utf8')
  socket.write(`GET ${path} HTTP/1.1\r\n${headers}Upgrade: websocket\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`)
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: string) => {
      answer += chunk
      if (answer.includes('\r\n\r\n')) resolve()
    })
    socket.once('error', reject)
    socket.once('close', () => resolve())
  })
  socket.destroy()
  return answer.slice(0, answer.indexOf('\r\n\r\n'))
}
