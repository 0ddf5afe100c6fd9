/**
 * The path-bypass matrix end to end (SPEC §3, §4): raw request targets over real TLS to a
 * real gateway, and what real upstreams received. Every odd target is either refused with
 * 400 before any upstream is contacted, or authorised against its normalised path and
 * forwarded as exactly that path. Also route matching, strip_prefix, the reserved namespace,
 * upstream faults and streaming bodies.
 */
import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { PASSWORD, bearer, login, register, uniqueEmail } from './helpers/auth-client.js'
import { startTestGateway, testCertificate, type TestGateway } from './helpers/gateway.js'
import { h2Request } from './helpers/h2-client.js'
import { rawCall, rawRequest, type RawResponse } from './helpers/raw-http.js'
import { startUpstream, type RecordingUpstream } from './helpers/upstream.js'
import { freePort } from './helpers/ports.js'

interface Caller {
  name: string
  headers: Array<[string, string]>
  /** The user id the upstream must see, null when anonymous. */
  userId: string | null
  canReadApp: boolean
  isAdmin: boolean
}

async function createPat(gw: TestGateway, email: string): Promise<{ token: string; userId: string }> {
  const session = await login(gw, email, PASSWORD)
  const created = await gw.call('POST', '/auth/tokens', { json: { name: 'paths' }, headers: bearer(session.token) })
  if (created.status !== 201) throw new Error(`token: ${created.status} ${created.text}`)
  return { token: created.json<{ token: string }>().token, userId: session.user.id }
}

/** An upstream that answers by path: /slow waits, /status answers 201 with headers, /big sends 3 MB, /hash hashes the body. */
async function startSpecialUpstream(t: Test): Promise<{ url: string; big: Buffer; hits: string[] }> {
  const big = randomBytes(3 * 1024 * 1024)
  const hits: string[] = []
  const timers = new Set<NodeJS.Timeout>()
  const server: Server = createServer((request, response) => {
    hits.push(request.url ?? '')
    const hash = createHash('sha256')
    let size = 0
    request.on('data', (chunk: Buffer) => {
      size += chunk.length
      hash.update(chunk)
    })
    request.on('end', () => {
      const path = (request.url ?? '').replace(/^\/special/, '')
      if (path.startsWith('/slow')) {
        const timer = setTimeout(() => {
          timers.delete(timer)
          response.end('late')
        }, 3000)
        timers.add(timer)
      } else if (path.startsWith('/status')) {
        response.writeHead(201, { 'content-type': 'text/plain', 'x-upstream-header': 'kept', 'set-cookie': 'upstream=1; Path=/' })
        response.end('created by the upstream')
      } else if (path.startsWith('/big')) {
        response.writeHead(200, { 'content-type': 'application/octet-stream' })
        response.end(big)
      } else {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.end(JSON.stringify({ sha256: hash.digest('hex'), size }))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    for (const timer of timers) clearTimeout(timer)
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, big, hits }
}

function jsonCode(response: RawResponse): string | undefined {
  if (!String(response.headers['content-type'] ?? '').startsWith('application/json')) return undefined
  return (JSON.parse(response.body) as { code?: string }).code
}

type Expectation =
  /** Refused with 400 GH_BAD_PATH by the gateway. */
  | { refused: 'gateway' }
  /** Refused with 400 by node's HTTP parser, before the gateway's code runs (no JSON body). */
  | { refused: 'parser' }
  /** Matched, after normalisation, to `path`: proxied as exactly `path` when allowed. */
  | { path: string; route: 'public' | 'admin' | 'app' | 'apple' }
  | { status: 404 }

/** Each target is sent byte for byte on a raw TLS socket. */
const ATTACKS: Array<[string, Expectation]> = [
  ['/public/../admin/x', { path: '/admin/x', route: 'admin' }],
  ['/public/%2e%2e/admin/x', { path: '/admin/x', route: 'admin' }],
  ['/public/%2E%2E/admin', { path: '/admin', route: 'admin' }],
  ['/public/.%2e/admin', { path: '/admin', route: 'admin' }],
  ['/public/%2e./admin/', { path: '/admin/', route: 'admin' }],
  ['//admin/x', { path: '/admin/x', route: 'admin' }],
  ['///admin//x', { path: '/admin/x', route: 'admin' }],
  ['/public//../admin', { path: '/admin', route: 'admin' }],
  ['/public//../admin/x', { path: '/admin/x', route: 'admin' }],
  ['/public/x/../../admin/y', { path: '/admin/y', route: 'admin' }],
  ['/public/%2e/../admin', { path: '/admin', route: 'admin' }],
  ['/public;/../admin', { path: '/admin', route: 'admin' }],
  ['/%61dmin/x', { path: '/admin/x', route: 'admin' }],
  ['/%41dmin/x', { status: 404 }],
  ['/%61%64%6d%69%6e', { path: '/admin', route: 'admin' }],
  ['/admin/x/..', { path: '/admin/', route: 'admin' }],
  ['/admin/..', { status: 404 }],
  ['/public/%2fadmin', { refused: 'gateway' }],
  ['/public/%2Fadmin', { refused: 'gateway' }],
  ['/public%2F..%2Fadmin', { refused: 'gateway' }],
  ['/public/..%2fadmin', { refused: 'gateway' }],
  ['/public/%2e%2e%2fadmin', { refused: 'gateway' }],
  ['/public/%5c../admin', { refused: 'gateway' }],
  ['/public/%5C..%5Cadmin', { refused: 'gateway' }],
  ['/public\\..\\admin', { refused: 'gateway' }],
  ['/public/%00/x', { refused: 'gateway' }],
  ['/public/..%00/admin', { refused: 'gateway' }],
  ['/../admin', { refused: 'gateway' }],
  ['/public/../../admin', { refused: 'gateway' }],
  ['/%2e%2e/admin', { refused: 'gateway' }],
  ['/public/..;/admin', { refused: 'gateway' }],
  ['/public/..;x=1/admin', { refused: 'gateway' }],
  ['/public/.;/admin', { refused: 'gateway' }],
  ['/public/..%3B/admin', { refused: 'gateway' }],
  ['/public/%2', { refused: 'gateway' }],
  ['/public/%zz/admin', { refused: 'gateway' }],
  ['/public/x#/../../admin', { refused: 'gateway' }],
  ['*', { refused: 'gateway' }],
  ['/public/%252e%252e/admin', { path: '/public/%252e%252e/admin', route: 'public' }],
  ['/public/%252F..%252Fadmin', { path: '/public/%252F..%252Fadmin', route: 'public' }],
  ['/public/./x', { path: '/public/x', route: 'public' }],
  ['/public/%7e%41', { path: '/public/~A', route: 'public' }],
  ['/public/%c3%a9', { path: '/public/%C3%A9', route: 'public' }],
  ['/public?x=/../admin', { path: '/public?x=/../admin', route: 'public' }],
  ['/public/x?next=%2F..%2Fadmin&y=\'1\'', { path: '/public/x?next=%2F..%2Fadmin&y=\'1\'', route: 'public' }],
  ['/public?', { path: '/public', route: 'public' }],
  // The URL parser that forwards the request percent-encodes these; the meaning is the same.
  ['/app/{x}/"y"', { path: '/app/%7Bx%7D/%22y%22', route: 'app' }],
  ['/app', { path: '/app', route: 'app' }],
  ['/app/', { path: '/app/', route: 'app' }],
  ['/app/x/../y', { path: '/app/y', route: 'app' }],
  ['/apple', { path: '/apple', route: 'apple' }],
  ['/apple/../app', { path: '/app', route: 'app' }],
  ['/app/../apple', { path: '/apple', route: 'apple' }],
  ['/app-x', { status: 404 }],
  ['/APP', { status: 404 }],
  ['/Admin/x', { status: 404 }],
  ['/ADMIN', { status: 404 }],
  ['/public/\u0000/x', { refused: 'parser' }],
  ['/public/a b/../../admin', { refused: 'parser' }],
]

/** The matrix runs over HTTP/1.1 (raw bytes) and HTTP/2 (node:http2): every edge rule holds for h2 alike (SPEC §4a). */
const PROTOCOLS = ['http/1.1', 'h2'] as const

/**
 * One GET of an exact target over h2; null when node's client will not send it or the
 * server's HTTP/2 layer resets the stream (a target no h2 request can carry).
 */
async function h2Call(url: string, target: string, headers: Array<[string, string]>): Promise<RawResponse | null> {
  try {
    const answer = await h2Request(url, 'GET', target, headers)
    return { status: answer.status, headers: answer.headers as RawResponse['headers'], rawHeaders: answer.rawHeaders, body: answer.body }
  } catch {
    return null
  }
}

for (const protocol of PROTOCOLS) t.test(`the path-bypass matrix over ${protocol}`, async (t) => {
  const h2 = protocol === 'h2'
  const call = async (target: string, headers: Array<[string, string]>): Promise<RawResponse | null> =>
    h2 ? h2Call(gw.url, target, headers) : rawCall(gw.url, 'GET', target, headers)
  const open = await startUpstream(t)
  const guarded = await startUpstream(t)
  const special = await startSpecialUpstream(t)
  const closedPort = await freePort()
  const gw = await startTestGateway(t, {
    http2: h2,
    configure: (raw) => {
      // A role must list admin:all (check-config refuses a permission only "*" would grant).
      raw.roles = { ...raw.roles, admin: ['*', 'admin:all'] }
      raw.routes = [
        { name: 'public', match: '/public', upstream: open.url, auth: 'public' },
        { name: 'admin', match: '/admin', upstream: guarded.url, auth: 'required', permissions: ['admin:all'] },
        { name: 'app', match: '/app', upstream: guarded.url, auth: 'required', permissions: ['app:read'] },
        { name: 'apple', match: '/apple', upstream: open.url, auth: 'public' },
        { name: 'tools', match: '/tools/', upstream: guarded.url, auth: 'required', permissions: ['app:read'], strip_prefix: true },
        { name: 'slash', match: '/slash', upstream: `${open.url}/`, auth: 'public' },
        { name: 'based', match: '/based', upstream: `${open.url}/base`, auth: 'public' },
        { name: 'based-slash', match: '/based-slash', upstream: `${open.url}/base/`, auth: 'public', strip_prefix: true },
        { name: 'read-only', match: '/ro', upstream: open.url, auth: 'public', methods: ['GET', 'HEAD'] },
        { name: 'read-only-too', match: '/ro', upstream: open.url, auth: 'public', methods: ['OPTIONS'] },
        { name: 'special', match: '/special', upstream: special.url, auth: 'public' },
        { name: 'special-auth', match: '/special-auth', upstream: special.url, auth: 'required', strip_prefix: true },
        { name: 'down', match: '/down', upstream: `http://127.0.0.1:${closedPort}`, auth: 'public' },
        { name: 'slow', match: '/slow', upstream: special.url, auth: 'public', timeout: '1s' },
      ]
    },
  })

  const viewerEmail = uniqueEmail('viewer')
  await register(gw, viewerEmail)
  const adminEmail = uniqueEmail('admin')
  const adminUser = await register(gw, adminEmail)
  await gw.runtime.users.setRoles(adminUser.id, ['admin'])
  const viewer = await createPat(gw, viewerEmail)
  const admin = await createPat(gw, adminEmail)
  const callers: Caller[] = [
    { name: 'anonymous', headers: [], userId: null, canReadApp: false, isAdmin: false },
    { name: 'viewer', headers: [['Authorization', `Bearer ${viewer.token}`]], userId: viewer.userId, canReadApp: true, isAdmin: false },
    { name: 'admin', headers: [['Authorization', `Bearer ${admin.token}`]], userId: admin.userId, canReadApp: true, isAdmin: true },
  ]
  const total = () => open.received.length + guarded.received.length + special.hits.length

  t.test('each odd target is refused or forwarded as its normalised path', async (t) => {
    for (const [target, expected] of ATTACKS) {
      for (const caller of callers) {
        const label = `${caller.name} ${JSON.stringify(target)}`
        const before = { open: open.received.length, guarded: guarded.received.length, total: total() }
        const response = await call(target, caller.headers)
        if (response === null) {
          t.equal(total(), before.total, `${label}: not sendable over h2, and no upstream contacted`)
          continue
        }
        if ('refused' in expected) {
          t.equal(response.status, 400, `${label}: 400`)
          if (expected.refused === 'gateway') t.equal(jsonCode(response), 'GH_BAD_PATH', `${label}: GH_BAD_PATH`, { body: response.body })
          t.equal(total(), before.total, `${label}: no upstream contacted`)
          continue
        }
        if ('status' in expected) {
          t.equal(response.status, expected.status, `${label}: ${expected.status}`, { body: response.body })
          t.equal(jsonCode(response), 'GH_NOT_FOUND', `${label}: GH_NOT_FOUND`)
          t.equal(total(), before.total, `${label}: no upstream contacted`)
          continue
        }
        const allowed =
          expected.route === 'public' || expected.route === 'apple' ? true : expected.route === 'admin' ? caller.isAdmin : caller.canReadApp
        if (!allowed) {
          t.equal(response.status, caller.userId === null ? 401 : 403, `${label}: refused`, { body: response.body })
          t.equal(jsonCode(response), caller.userId === null ? 'GH_UNAUTHENTICATED' : 'GH_FORBIDDEN', `${label}: code`)
          t.equal(total(), before.total, `${label}: no upstream contacted`)
          continue
        }
        t.equal(response.status, 200, `${label}: proxied`, { body: response.body })
        const upstream: RecordingUpstream = expected.route === 'admin' || expected.route === 'app' ? guarded : open
        t.equal(upstream.received.length, (upstream === open ? before.open : before.guarded) + 1, `${label}: reached the ${expected.route} upstream`)
        t.equal(total(), before.total + 1, `${label}: and only it`)
        t.equal(upstream.last().url, expected.path, `${label}: the upstream saw the normalised path`)
        const identity = upstream.last().headers['x-auth-user-id']
        t.equal(identity, expected.route === 'public' || expected.route === 'apple' ? undefined : (caller.userId ?? undefined), `${label}: identity`)
      }
    }
  })

  t.test('percent-escapes that cannot be forwarded as sent are refused, never a 500', async (t) => {
    // The proxy library percent-decodes the target and refuses non-UTF-8 escapes and "/..": such a
    // path must be a 400 GH_BAD_PATH, not a misleading code, and never reach any upstream.
    for (const target of ['/public/%C0%AE%C0%AE/admin', '/public/%ff', '/public/.../admin', '/public/..x/admin', '/public/x../admin']) {
      const before = total()
      const response = await call(target, callers[2]!.headers)
      if (response === null) continue
      if (response.status === 200) {
        t.equal(open.last().url, target, `${target}: forwarded exactly`)
      } else {
        t.equal(response.status, 400, `${target}: 400`, { body: response.body })
        t.equal(jsonCode(response), 'GH_BAD_PATH', `${target}: GH_BAD_PATH`)
        t.equal(total(), before, `${target}: no upstream contacted`)
      }
    }
  })

  t.test('a viewer never reached an admin path on any upstream', async (t) => {
    for (const request of [...open.received, ...guarded.received]) {
      if (/^\/admin(\/|\?|$)/.test(request.url)) t.equal(request.headers['x-auth-user-id'], admin.userId, `${request.url} reached only by the admin`)
      if (request.headers['x-auth-user-id'] !== undefined && request.url.startsWith('/admin')) {
        t.not(request.headers['x-auth-user-id'], viewer.userId)
      }
    }
    t.ok(guarded.received.some((request) => request.url.startsWith('/admin')), 'the admin did reach it')
  })

  t.test('strip_prefix and upstream base paths', async (t) => {
    const cases: Array<[string, RecordingUpstream, string]> = [
      ['/tools', guarded, '/'],
      ['/tools/', guarded, '/'],
      ['/tools/x?q=1', guarded, '/x?q=1'],
      ['/tools//x/../y/', guarded, '/y/'],
      ['/tools/tools/x', guarded, '/tools/x'],
      ['/slash', open, '/slash'],
      ['/slash/x?y', open, '/slash/x?y'],
      ['/based/x', open, '/base/based/x'],
      ['/based-slash', open, '/base/'],
      ['/based-slash/x?q', open, '/base/x?q'],
    ]
    for (const [target, upstream, expected] of cases) {
      const response = await call(target, callers[1]!.headers)
      if (response === null) throw new Error(`${target}: not sendable`)
      t.equal(response.status, 200, `${target}: proxied`, { body: response.body })
      t.equal(upstream.last().url, expected, `${target} → ${expected}`)
    }
    const anonymous = await gw.call('GET', '/tools/x')
    t.equal(anonymous.status, 401, 'a stripped route still authorises against the full path')
    t.equal(gw.runtime.routes.match('/toolsx', 'GET').kind, 'not_found', 'by whole segments')
    t.equal((await gw.call('GET', '/toolsx')).status, 404)
  })

  t.test('no route is 404; a matching prefix without the method is 405 with Allow', async (t) => {
    const before = total()
    for (const path of ['/nothing', '/nothing/here?x=1', '/']) {
      const response = await gw.call('GET', path)
      t.equal(response.status, 404, path)
      t.equal(response.json().code, 'GH_NOT_FOUND', `${path}: GH_NOT_FOUND`)
      t.match(String(response.headers['content-type']), /^application\/json/)
    }
    for (const method of ['POST', 'DELETE', 'PUT', 'PATCH'] as const) {
      const response = await gw.call(method, '/ro/x', { body: 'x' })
      t.equal(response.status, 405, `${method} /ro/x`)
      t.equal(response.json().code, 'GH_METHOD_NOT_ALLOWED')
      t.equal(response.headers.allow, 'GET, HEAD, OPTIONS', `${method}: Allow`)
    }
    t.equal(total(), before, 'no upstream contacted')
    t.equal((await gw.call('GET', '/ro/x')).status, 200)
    t.equal((await gw.call('HEAD', '/ro/x')).status, 200)
    t.equal((await gw.call('OPTIONS', '/ro/x')).status, 200)
  })

  t.test('an upstream refusing connections is 502, one slower than its timeout 504, without naming it', async (t) => {
    const down = await gw.call('GET', '/down/x')
    t.equal(down.status, 502)
    t.equal(down.json().code, 'GH_BAD_GATEWAY')
    t.notMatch(down.text, /127\.0\.0\.1/, 'no upstream address')
    t.notOk(down.text.includes(String(closedPort)), 'no upstream port')
    t.notMatch(down.text, /ECONNREFUSED|connect/i, 'no socket error text')

    const started = Date.now()
    const slow = await gw.call('GET', '/slow/x')
    const elapsed = Date.now() - started
    t.equal(slow.status, 504)
    t.equal(slow.json().code, 'GH_GATEWAY_TIMEOUT')
    t.notOk(slow.text.includes(new URL(special.url).port), 'no upstream port')
    t.ok(elapsed >= 900 && elapsed < 2900, `answered at the route's 1s timeout (${elapsed} ms)`)
  })

  t.test('bodies stream through both ways, intact', async (t) => {
    const text = randomBytes(1536 * 1024).toString('base64') // 2 MiB of ASCII, over the 1mb /auth body_limit
    for (const contentType of ['application/octet-stream', 'application/json', 'text/plain']) {
      const response = await gw.call('POST', '/public/upload', { body: text, headers: { 'content-type': contentType } })
      t.equal(response.status, 200, `${contentType}: proxied`, { body: response.text.slice(0, 200) })
      t.equal(open.last().body.length, text.length, `${contentType}: every byte arrived`)
      t.ok(open.last().body === text, `${contentType}: byte-exact`)
      t.equal(open.last().headers['content-type'], contentType)
    }

    const binary = randomBytes(2 * 1024 * 1024 + 17)
    const hashed = await gw.call('PUT', '/special-auth/hash', { body: binary, headers: { ...bearer(viewer.token), 'content-type': 'application/octet-stream' } })
    t.equal(hashed.status, 200, hashed.text)
    t.same(hashed.json(), { sha256: createHash('sha256').update(binary).digest('hex'), size: binary.length }, 'binary body byte-exact on an authenticated route')

    const chunked = await rawRequest(
      gw.url,
      `POST /special/hash HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
    )
    t.equal(chunked.status, 200, chunked.body)
    t.same(JSON.parse(chunked.body), { sha256: createHash('sha256').update('hello world').digest('hex'), size: 11 }, 'a chunked body')

    // curl sends Expect: 100-continue for bodies over 1 MB; node answers the 100 itself.
    const body = 'x'.repeat(1024 * 1024 + 1)
    const expecting = await rawRequest(
      gw.url,
      `POST /special/hash HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    )
    t.equal(expecting.status, 200, `Expect: 100-continue: ${expecting.body.slice(0, 200)}`)
    t.equal(expecting.status === 200 && (JSON.parse(expecting.body) as { size: number }).size, body.length, 'Expect: 100-continue: the whole body')

    const status = await gw.call('GET', '/special/status')
    t.equal(status.status, 201, 'the upstream status')
    t.equal(status.headers['x-upstream-header'], 'kept', 'the upstream headers')
    t.same([status.headers['set-cookie']].flat(), ['upstream=1; Path=/'], "the upstream's own cookie (a list over h2)")
    t.equal(status.text, 'created by the upstream', 'the upstream body')
    t.ok(status.headers['x-request-id'], 'with the request id')

    const big = await gw.call('GET', '/special/big')
    t.equal(big.status, 200)
    const dispatcher = new Agent({ connect: { ca: (await testCertificate()).cert, servername: 'localhost' } })
    const bytes = Buffer.from(await (await request(`${gw.url}/special/big`, { dispatcher })).body.arrayBuffer())
    await dispatcher.close()
    t.ok(bytes.equals(special.big), 'a 3 MB response body, byte-exact')
  })
})

t.test('the reserved namespace never reaches an upstream, even under a route for /', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [{ name: 'everything', match: '/', upstream: upstream.url, auth: 'public' }]
    },
  })
  const email = uniqueEmail('reserved')
  await register(gw, email)
  const pat = await createPat(gw, email)
  const reserved = [
    '/x/../auth/me',
    '/x/%2e%2e/auth/me',
    '//auth/me',
    '/./auth/me',
    '/x/../auth',
    '/x/../auth/',
    '/x/../auth/login',
    '/%61uth/me',
    '/auth/x/../me',
    '/x/../health',
    '/x/../health/live',
    '/x/../docs',
    '/x/../docs/json',
    '/x/../.well-known/jwks.json',
    '/%2e%77ell-known/jwks.json',
    '/auth',
    '/auth/nope',
    '/health/nope',
  ]
  for (const target of reserved) {
    for (const headers of [[], [['Authorization', `Bearer ${pat.token}`]]] as Array<Array<[string, string]>>) {
      const before = upstream.received.length
      const response = await rawCall(gw.url, 'GET', target, headers)
      t.equal(upstream.received.length, before, `${target}: not proxied (${response.status})`)
      t.not(response.status, 502, `${target}: answered by the gateway`)
    }
  }
  const proxied = await rawCall(gw.url, 'GET', '/authx/me')
  t.equal(proxied.status, 200, '/authx is not reserved')
  t.equal(upstream.last().url, '/authx/me')
  const other = await rawCall(gw.url, 'GET', '/x/y')
  t.equal(other.status, 200)
  t.equal(upstream.last().url, '/x/y')
})
