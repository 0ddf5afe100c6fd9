/**
 * What an upstream receives (SPEC §3, §4), seen from a real upstream behind a real gateway:
 * the spoofing matrix (every forbidden header in every spelling, on every kind of route and
 * credential), the Connection trick, cookies, Authorization, the injected identity, the
 * always-set headers, and the edge's answers (302/401/403, CSRF).
 */
import { randomBytes } from 'node:crypto'
import { decodeJwt } from 'jose'
import t, { type Test } from 'tap'
import { PASSWORD, bearer, login, register, sessionCookie, uniqueEmail } from './helpers/auth-client.js'
import { PUBLIC_URL, startTestGateway, type Response, type TestGateway } from './helpers/gateway.js'
import { h2Request } from './helpers/h2-client.js'
import { rawCall } from './helpers/raw-http.js'
import { startUpstream, type ReceivedRequest, type RecordingUpstream } from './helpers/upstream.js'

/** SPEC §4: removed from every client request, whatever the spelling. */
const FORBIDDEN = [
  'X-Auth-User-Id', 'X-Auth-Email', 'X-Auth-Roles', 'X-Auth-Method', 'X-Auth-Token-Id', 'X-Auth-Assertion', 'X-Auth-Anything',
  'X-Forwarded-User', 'X-Forwarded-Email', 'X-Forwarded-Groups', 'Remote-User',
  'X-Original-URL', 'X-Rewrite-URL', 'X-Forwarded-Uri', 'X-Forwarded-Prefix', 'X-HTTP-Method-Override',
  'X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Host',
]

/** Headers the gateway sets itself on every proxied request. */
const ALWAYS_SET = ['x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']
const IDENTITY = ['x-auth-user-id', 'x-auth-email', 'x-auth-roles', 'x-auth-method', 'x-auth-token-id', 'x-auth-assertion']

/** lower, UPPER, Mixed, Under_Scores, alternating-separators_and, weIRd case. */
function spellings(name: string): string[] {
  const lower = name.toLowerCase()
  const parts = lower.split('-')
  const alternating = parts.reduce((out, part, i) => (i === 0 ? part : `${out}${i % 2 === 0 ? '_' : '-'}${part}`), '')
  const weird = [...lower].map((c, i) => (i % 3 === 1 ? c.toUpperCase() : c)).join('')
  return [...new Set([lower, name.toUpperCase(), name, name.replaceAll('-', '_'), alternating, weird])]
}

function canonical(name: string): string {
  return name.toLowerCase().replaceAll('_', '-')
}

/** Every value the upstream received under a name that reads as `name` (case-insensitive, `_` as `-`). */
function received(request: ReceivedRequest, name: string): string[] {
  const values: string[] = []
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    if (canonical(request.rawHeaders[i]!) === canonical(name)) values.push(request.rawHeaders[i + 1]!)
  }
  return values
}

function rawHeaderValues(request: ReceivedRequest): string[] {
  return request.rawHeaders.filter((_, i) => i % 2 === 1)
}

interface Identity {
  id: string
  email: string
  roles: string
  method: 'session' | 'pat'
  tokenId?: string
}

interface Context {
  name: string
  path: string
  headers: Record<string, string>
  raw: Array<[string, string]>
  identity: Identity | null
}

/** Sends a request and returns what the upstream received for it (failing when it received nothing). */
async function through(t: Test, gw: TestGateway, upstream: RecordingUpstream, path: string, headers: Record<string, string | string[]>, what: string) {
  const before = upstream.received.length
  const response = await gw.call('GET', path, { headers })
  t.equal(response.status, 200, `${what}: proxied`, { body: response.text.slice(0, 300) })
  t.equal(upstream.received.length, before + 1, `${what}: reached the upstream once`)
  return { response, got: upstream.last() }
}

/**
 * The invariants of SPEC §4 for one proxied request: nothing the client spoofed arrived, each
 * header the gateway sets arrived exactly once with the gateway's value, and identity headers
 * arrived exactly when authenticated.
 */
function checkGatewayHeaders(
  t: Test,
  got: ReceivedRequest,
  response: { headers: Record<string, string | string[] | undefined> },
  expected: { identity: Identity | null; host: string; forwardedFor?: string; audience: string },
  what: string,
): void {
  for (const value of rawHeaderValues(got)) t.notMatch(value, /spoofed/i, `${what}: no spoofed value arrived (${value.slice(0, 40)})`)
  const single = (name: string): string | undefined => {
    const values = received(got, name)
    t.ok(values.length <= 1, `${what}: ${name} at most once (got ${values.length})`)
    return values[0]
  }
  const requestId = single('x-request-id')
  t.equal(requestId, response.headers['x-request-id'], `${what}: X-Request-Id is the response's`)
  t.equal(single('x-forwarded-for'), expected.forwardedFor ?? '127.0.0.1', `${what}: X-Forwarded-For`)
  t.equal(single('x-forwarded-proto'), 'https', `${what}: X-Forwarded-Proto`)
  t.equal(single('x-forwarded-host'), expected.host, `${what}: X-Forwarded-Host is the Host`)
  const { identity } = expected
  if (identity === null) {
    for (let i = 0; i < got.rawHeaders.length; i += 2) {
      t.notOk(canonical(got.rawHeaders[i]!).startsWith('x-auth-'), `${what}: no identity header (${got.rawHeaders[i]})`)
    }
    return
  }
  t.equal(single('x-auth-user-id'), identity.id, `${what}: X-Auth-User-Id`)
  t.equal(single('x-auth-email'), identity.email, `${what}: X-Auth-Email`)
  t.equal(single('x-auth-roles'), identity.roles, `${what}: X-Auth-Roles`)
  t.equal(single('x-auth-method'), identity.method, `${what}: X-Auth-Method`)
  t.equal(single('x-auth-token-id'), identity.tokenId, `${what}: X-Auth-Token-Id`)
  const assertion = single('x-auth-assertion')
  t.ok(assertion, `${what}: X-Auth-Assertion`)
  if (assertion === undefined) return
  const claims = decodeJwt(assertion)
  t.equal(claims.sub, identity.id, `${what}: assertion sub`)
  t.equal(claims.aud, expected.audience, `${what}: assertion aud`)
  t.equal(claims.rid, requestId, `${what}: assertion rid is the X-Request-Id`)
  t.equal(claims.htu, got.url, `${what}: assertion htu is what the upstream received`)
  t.equal(claims.htm, got.method, `${what}: assertion htm`)
  for (let i = 0; i < got.rawHeaders.length; i += 2) {
    const name = canonical(got.rawHeaders[i]!)
    if (name.startsWith('x-auth-')) t.ok(IDENTITY.includes(name), `${what}: only the gateway's identity headers (${name})`)
  }
}

function cookiePairs(header: string | string[] | undefined): string[] {
  if (header === undefined) return []
  return (Array.isArray(header) ? header.join('; ') : header).split(';').map((pair) => pair.trim()).filter((pair) => pair !== '')
}

function code(response: Response): unknown {
  return response.json().code
}

/** The matrices run over HTTP/1.1 (undici) and HTTP/2 (node:http2): every edge rule holds for h2 alike (SPEC §4a). */
const PROTOCOLS = ['http/1.1', 'h2'] as const

for (const protocol of PROTOCOLS) t.test(`the edge over ${protocol}: what an upstream receives and what a client gets`, async (t) => {
  const h2 = protocol === 'h2'
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    http2: h2,
    configure: (raw) => {
      // A role must list admin:all (check-config refuses a permission only "*" would grant).
      raw.roles = { ...raw.roles, admin: ['*', 'admin:all'] }
      raw.routes = [
        { name: 'pub', match: '/pub', upstream: upstream.url, auth: 'public' },
        { name: 'opt', match: '/opt', upstream: upstream.url, auth: 'optional' },
        { name: 'req', match: '/req', upstream: upstream.url, auth: 'required', permissions: ['app:read'] },
        { name: 'adm', match: '/adm', upstream: upstream.url, auth: 'required', permissions: ['app:read', 'admin:all'] },
        { name: 'form', match: '/form', upstream: upstream.url, auth: 'required' },
        { name: 'nocsrf', match: '/nocsrf', upstream: upstream.url, auth: 'required', csrf: false },
      ]
    },
  })
  // node's h2 client names the TLS servername (localhost) in :authority, which is the host.
  const host = h2 ? `localhost:${new URL(gw.url).port}` : new URL(gw.url).host
  const email = uniqueEmail('alice')
  const user = await register(gw, email)
  const managed = await gw.runtime.users.setRoles(user.id, ['viewer', 'operator'])
  const roles = managed.roles.join(',')
  t.equal(roles.split(',').length, 2, 'two roles, comma-separated')
  const session = (await login(gw, email, PASSWORD)).token
  const created = await gw.call('POST', '/auth/tokens', { json: { name: 'edge' }, headers: bearer(session) })
  t.equal(created.status, 201, created.text)
  const pat = created.json<{ token: string; id: string }>()
  const sessionIdentity: Identity = { id: user.id, email, roles, method: 'session' }
  const patIdentity: Identity = { id: user.id, email, roles, method: 'pat', tokenId: pat.id }
  const cookie = sessionCookie(gw, session).cookie!

  const contexts: Context[] = [
    { name: 'anonymous on a public route', path: '/pub/x?q=1', headers: {}, raw: [], identity: null },
    { name: 'anonymous on an optional route', path: '/opt/x?q=1', headers: {}, raw: [], identity: null },
    { name: 'session cookie on a required route', path: '/req/x?q=1', headers: { cookie }, raw: [['Cookie', cookie]], identity: sessionIdentity },
    { name: 'session bearer on a required route', path: '/req/x?q=1', headers: bearer(session), raw: [['Authorization', `Bearer ${session}`]], identity: sessionIdentity },
    { name: 'PAT on a required route', path: '/req/x?q=1', headers: bearer(pat.token), raw: [['Authorization', `Bearer ${pat.token}`]], identity: patIdentity },
    { name: 'PAT on an optional route', path: '/opt/x', headers: bearer(pat.token), raw: [['Authorization', `Bearer ${pat.token}`]], identity: patIdentity },
  ]

  t.test('the spoofing matrix: every forbidden header, every spelling, every kind of request', async (t) => {
    for (const context of contexts) {
      for (const name of FORBIDDEN) {
        for (const spelling of spellings(name)) {
          const what = `${context.name}, ${spelling}`
          const value = name === 'X-Auth-Method' ? 'spoofed' : `spoofed-${spelling}`
          const { response, got } = await through(t, gw, upstream, context.path, { ...context.headers, [spelling]: value }, what)
          checkGatewayHeaders(t, got, response, { identity: context.identity, host, audience: context.path.split('/')[1]! }, what)
        }
      }
    }
  })

  t.test('h2: :authority is the host; a Host header that differs from it is 400', { skip: !h2 && 'HTTP/2 only' }, async (t) => {
    const authority = `localhost:${new URL(gw.url).port}`
    const before = upstream.received.length
    const differs = await h2Request(gw.url, 'GET', '/pub/x', [[':authority', authority], ['host', 'evil.example.com']])
    t.equal(differs.status, 400)
    t.equal(JSON.parse(differs.body).code, 'GH_VALIDATION')
    t.equal(upstream.received.length, before, 'never forwarded')
    const agrees = await h2Request(gw.url, 'GET', '/pub/x', [[':authority', authority], ['host', authority.toUpperCase()]])
    t.equal(agrees.status, 200)
    t.equal(upstream.last().headers['x-forwarded-host'], authority)
  })

  t.test('all at once, with duplicates, over a raw socket', { skip: h2 && 'raw HTTP/1.1 bytes' }, async (t) => {
    for (const context of contexts) {
      const spoofed: Array<[string, string]> = []
      for (const name of [...FORBIDDEN, 'X-Request-Id', 'X-Real-IP', 'Forwarded']) {
        for (const spelling of spellings(name)) {
          if (canonical(spelling) === 'x-request-id' && spelling === spelling.toLowerCase()) continue
          spoofed.push([spelling, `spoofed-${spelling}`], [spelling, `spoofed-again-${spelling}`])
        }
      }
      const before = upstream.received.length
      const response = await rawCall(gw.url, 'GET', context.path, [...context.raw, ...spoofed])
      t.equal(response.status, 200, `${context.name}: proxied`, { body: response.body })
      t.equal(upstream.received.length, before + 1)
      const got = upstream.last()
      checkGatewayHeaders(t, got, response, { identity: context.identity, host: 'localhost', audience: context.path.split('/')[1]! }, context.name)
      t.equal(received(got, 'x-real-ip').length, 0, `${context.name}: no X-Real-IP`)
      t.equal(received(got, 'forwarded').length, 0, `${context.name}: no Forwarded`)
      t.match(received(got, 'x-request-id')[0], /^[0-9a-f-]{36}$/, `${context.name}: a repeated X-Request-Id is replaced`)
    }
  })

  t.test('a client Connection header cannot remove or change what the gateway sets', { skip: h2 && 'HTTP/2 has no Connection header' }, async (t) => {
    const listed = [...IDENTITY, ...ALWAYS_SET].join(', ')
    for (const context of contexts) {
      for (const connection of [listed, `keep-alive, ${listed.toUpperCase()}`, 'X-Auth-User-Id', 'x-forwarded-for, x-request-id']) {
        const what = `${context.name}, Connection: ${connection.slice(0, 40)}`
        const before = upstream.received.length
        const response = await rawCall(gw.url, 'GET', context.path, [
          ...context.raw,
          ['Connection', connection],
          ['X-Request-Id', 'client-request-1'],
          ['X-Auth-User-Id', 'spoofed-via-connection'],
          ['X-Forwarded-For', '198.51.100.7'],
        ])
        t.equal(response.status, 200, `${what}: proxied`, { body: response.body })
        t.equal(upstream.received.length, before + 1)
        const got = upstream.last()
        checkGatewayHeaders(t, got, response, { identity: context.identity, host: 'localhost', audience: context.path.split('/')[1]! }, what)
        t.equal(received(got, 'x-request-id')[0], 'client-request-1', `${what}: the client's valid request id kept`)
        t.notOk(got.rawHeaders.some((value) => value.includes('198.51.100.7')), `${what}: the client's X-Forwarded-For did not arrive`)
      }
    }
  })

  t.test("the gateway's session cookie is removed, other cookies pass intact", async (t) => {
    const cases: Array<{ what: string; path: string; cookies: string[]; expected: string[]; identity: boolean }> = [
      { what: 'before and after', path: '/req/c', cookies: [`a=1; __Host-gh_session=${session}; b=two=2`], expected: ['a=1', 'b=two=2'], identity: true },
      { what: 'first', path: '/req/c', cookies: [`__Host-gh_session=${session}; theme=dark`], expected: ['theme=dark'], identity: true },
      { what: 'alone', path: '/req/c', cookies: [`__Host-gh_session=${session}`], expected: [], identity: true },
      { what: 'without spaces', path: '/req/c', cookies: [`a=1;__Host-gh_session=${session};b=2`], expected: ['a=1', 'b=2'], identity: true },
      { what: 'with gh_session too', path: '/req/c', cookies: [`a=1; gh_session=other; __Host-gh_session=${session}; z=9`], expected: ['a=1', 'z=9'], identity: true },
      { what: 'any spelling, any case (SPEC §3)', path: '/pub/c', cookies: ['a=1; GH_SESSION=x; __secure-gh_session=y; __Secure-gh_session=z; __HOST-GH_SESSION=w; b=2'], expected: ['a=1', 'b=2'], identity: false },
      { what: 'on a public route', path: '/pub/c', cookies: [`a=1; __Host-gh_session=${session}; gh_session=x; b=2`], expected: ['a=1', 'b=2'], identity: false },
      { what: 'on an optional route', path: '/opt/c', cookies: [`__Host-gh_session=${session}; a=1`], expected: ['a=1'], identity: true },
      {
        what: 'several Cookie headers',
        path: '/req/c',
        cookies: ['a=1', `__Host-gh_session=${session}`, 'b=2; gh_session=zzz; c=3', 'd=4'],
        expected: ['a=1', 'b=2', 'c=3', 'd=4'],
        identity: true,
      },
      { what: 'only other cookies', path: '/pub/c', cookies: ['a=1; b=2', 'c=3'], expected: ['a=1', 'b=2', 'c=3'], identity: false },
    ]
    for (const { what, path, cookies, expected, identity } of cases) {
      const before = upstream.received.length
      const response = await rawCall(gw.url, 'GET', path, cookies.map((value): [string, string] => ['Cookie', value]))
      t.equal(response.status, 200, `${what}: proxied`, { body: response.body })
      t.equal(upstream.received.length, before + 1)
      const got = upstream.last()
      t.same(cookiePairs(got.headers.cookie), expected, `${what}: the other cookies, in order`)
      if (expected.length === 0) t.equal(received(got, 'cookie').length, 0, `${what}: no Cookie header at all`)
      t.notOk(got.rawHeaders.some((value) => value.includes(session)), `${what}: the session token did not arrive anywhere`)
      t.notOk(received(got, 'cookie').some((value) => value.includes('gh_session')), `${what}: no gh_session cookie`)
      t.equal(got.headers['x-auth-user-id'], identity ? user.id : undefined, `${what}: identity`)
    }
  })

  t.test('Authorization: gateway credentials removed, others pass only on public routes', async (t) => {
    for (const [path, credential] of [
      ['/req/a', `Bearer ${session}`],
      ['/req/a', `Bearer ${pat.token}`],
      ['/opt/a', `Bearer ${session}`],
      ['/opt/a', `Bearer ${pat.token}`],
      ['/pub/a', `Bearer ${pat.token}`],
      ['/pub/a', `bearer ${pat.token}`],
      ['/pub/a', `Bearer  ${session}  `],
      ['/pub/a', `Bearer ${session}`],
      ['/pub/a', `Bearer pat_${randomBytes(40).toString('base64url')}`],
      ['/pub/a', `Bearer ${randomBytes(32).toString('base64url')}`],
    ] as const) {
      const what = `${path} ${credential.slice(0, 16)}…`
      const { got } = await through(t, gw, upstream, path, { authorization: credential }, what)
      t.equal(received(got, 'authorization').length, 0, `${what}: removed`)
      t.notOk(got.rawHeaders.some((value) => value.includes(credential.trim().split(/ +/)[1]!)), `${what}: the credential arrived nowhere`)
      if (path === '/pub/a') t.equal(got.headers['x-auth-user-id'], undefined, `${what}: no identity on a public route`)
    }
    for (const credential of ['Basic dXNlcjpwYXNz', 'Bearer abc.def', 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig', 'Negotiate YIIabc', 'Bearer pat_ and more']) {
      const { got } = await through(t, gw, upstream, '/pub/a', { authorization: credential }, credential)
      t.same(received(got, 'authorization'), [credential], `${credential}: passes through a public route unchanged`)
    }
    for (const credential of ['Basic dXNlcjpwYXNz', 'Bearer abc.def', `Bearer pat_${randomBytes(40).toString('base64url')}`, `Bearer ${randomBytes(32).toString('base64url')}`]) {
      for (const path of ['/opt/a', '/req/a']) {
        const before = upstream.received.length
        const response = await gw.call('GET', path, { headers: { authorization: credential } })
        t.equal(response.status, 401, `${path} ${credential.slice(0, 14)}: read as a gateway credential, refused`)
        t.equal(code(response), 'GH_UNAUTHENTICATED')
        t.equal(upstream.received.length, before, `${path}: not proxied`)
      }
    }
  })

  t.test('optional routes: anonymous without a credential, identity with one, 401 with a bad one', async (t) => {
    const anonymous = await through(t, gw, upstream, '/opt/o', {}, 'anonymous')
    checkGatewayHeaders(t, anonymous.got, anonymous.response, { identity: null, host, audience: 'opt' }, 'anonymous')
    const withCookie = await through(t, gw, upstream, '/opt/o', { cookie }, 'cookie')
    checkGatewayHeaders(t, withCookie.got, withCookie.response, { identity: sessionIdentity, host, audience: 'opt' }, 'cookie')
    const withSession = await through(t, gw, upstream, '/opt/o', bearer(session), 'session')
    checkGatewayHeaders(t, withSession.got, withSession.response, { identity: sessionIdentity, host, audience: 'opt' }, 'session')

    const before = upstream.received.length
    for (const headers of <Array<Record<string, string>>>[
      { authorization: 'Bearer pat_unknown' },
      { authorization: `Bearer ${randomBytes(32).toString('base64url')}` },
      { authorization: 'Bearer' },
      { authorization: `Bearer ${randomBytes(32).toString('base64url')}`, cookie },
    ]) {
      const response = await gw.call('GET', '/opt/o', { headers })
      t.equal(response.status, 401, `${headers.authorization}: 401, never anonymous`)
      t.equal(response.headers['www-authenticate'], 'Bearer realm="gatehouse"')
    }
    const twice = await rawCall(gw.url, 'GET', '/opt/o', [['Authorization', `Bearer ${pat.token}`], ['Authorization', `Bearer ${session}`]])
    t.equal(twice.status, 400, 'two Authorization headers are refused')
    t.equal((JSON.parse(twice.body) as { code: string }).code, 'GH_AMBIGUOUS_CREDENTIALS')
    t.equal(upstream.received.length, before, 'none of these was proxied')

    // A session cookie the store no longer knows: authenticate.ts treats it as no credential
    // (browsers keep stale cookies) and goes on anonymously; SPEC §3 could also be read as a
    // 401. Either way it must never yield an identity, and never reach the upstream.
    const before2 = upstream.received.length
    const stale = await gw.call('GET', '/opt/o', { headers: { cookie: `__Host-gh_session=${randomBytes(32).toString('base64url')}; a=1` } })
    if (stale.status === 200) {
      t.equal(upstream.received.length, before2 + 1)
      checkGatewayHeaders(t, upstream.last(), stale, { identity: null, host, audience: 'opt' }, 'stale cookie')
      t.same(cookiePairs(upstream.last().headers.cookie), ['a=1'], 'the stale session cookie is still removed')
    } else {
      t.equal(stale.status, 401, 'a stale cookie: anonymous or 401')
      t.equal(upstream.received.length, before2)
    }
  })

  t.test('X-Request-Id: kept when well-formed, else a new UUID, the same everywhere', async (t) => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
    const long = 'a'.repeat(128)
    for (const [sent, kept] of [
      ['abc-123_.XYZ', true],
      [long, true],
      ['0', true],
      [`${long}b`, false],
      ['has space', false],
      ['a/b', false],
      ["quote'", false],
      ['semi;colon', false],
      ['ünïcode', false],
    ] as const) {
      for (const context of [contexts[0]!, contexts[4]!]) {
        const what = `${context.name}, ${JSON.stringify(sent.slice(0, 20))}`
        const before = upstream.received.length
        const response = await rawCall(gw.url, 'GET', context.path, [...context.raw, ['X-Request-Id', sent]])
        t.equal(response.status, 200, what)
        t.equal(upstream.received.length, before + 1)
        const got = upstream.last()
        const id = response.headers['x-request-id']
        if (kept) t.equal(id, sent, `${what}: kept`)
        else t.match(id, uuid, `${what}: replaced by a UUID`)
        t.same(received(got, 'x-request-id'), [id], `${what}: the upstream got the same id`)
        if (context.identity !== null) t.equal(decodeJwt(received(got, 'x-auth-assertion')[0]!).rid, id, `${what}: and the assertion's rid`)
      }
    }
    const fresh = await gw.call('GET', '/pub/r')
    t.match(fresh.headers['x-request-id'], uuid, 'none sent: a UUID')
    t.equal(upstream.last().headers['x-request-id'], fresh.headers['x-request-id'])
    const refused = await gw.call('GET', '/req/r', { headers: { 'x-request-id': 'trace-401' } })
    t.equal(refused.status, 401)
    t.equal(refused.headers['x-request-id'], 'trace-401', 'on refusals too')
  })

  t.test('a required route: browsers are redirected to log in, API clients get 401, the unpermitted 403', async (t) => {
    const before = upstream.received.length
    const navigation = await gw.call('GET', '/req/page?a=1&b=x%20y', { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } })
    t.equal(navigation.status, 302)
    t.equal(navigation.headers.location, `/auth/login?next=${encodeURIComponent('/req/page?a=1&b=x%20y')}`)
    const normalised = await rawCall(gw.url, 'GET', '/pub/../req//page/./x', [['Accept', 'text/html']])
    t.equal(normalised.status, 302)
    t.equal(normalised.headers.location, `/auth/login?next=${encodeURIComponent('/req/page/x')}`, 'next is the normalised path')
    const head = await gw.call('HEAD', '/req/page', { headers: { accept: 'text/html' } })
    t.equal(head.status, 302, 'HEAD navigations too')

    for (const [method, accept] of [['GET', 'application/json'], ['GET', '*/*'], ['POST', 'text/html'], ['DELETE', 'text/html'], ['GET', '']] as const) {
      const response = await gw.call(method, '/req/page', { headers: accept === '' ? {} : { accept } })
      t.equal(response.status, 401, `${method} Accept ${accept || 'none'}: 401`)
      t.equal(response.headers['www-authenticate'], 'Bearer realm="gatehouse"')
      t.equal(code(response), 'GH_UNAUTHENTICATED')
    }

    for (const headers of [bearer(pat.token), bearer(session), { cookie, accept: 'text/html' }]) {
      const response = await gw.call('GET', '/adm/x', { headers })
      t.equal(response.status, 403, 'lacking a permission: 403, even for a browser')
      const body = response.json<{ code: string; missing_permission: string }>()
      t.equal(body.code, 'GH_FORBIDDEN')
      t.equal(body.missing_permission, 'admin:all')
    }
    t.equal(upstream.received.length, before, 'nothing refused was proxied')
  })

  t.test('CSRF: cookie-authenticated unsafe requests need the gateway origin', async (t) => {
    const origin = new URL(PUBLIC_URL).origin
    const attempt = async (path: string, method: 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET', headers: Record<string, string>) => {
      const before = upstream.received.length
      const response = await gw.call(method, path, { headers, body: method === 'GET' ? undefined : '{"x":1}' })
      return { response, proxied: upstream.received.length === before + 1 }
    }
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE'] as const) {
      for (const headers of <Array<Record<string, string>>>[{ cookie }, { cookie, origin: 'https://evil.example' }, { cookie, origin: 'null' }, { cookie, referer: 'https://evil.example/x' }, { cookie, origin, 'sec-fetch-site': 'cross-site' }]) {
        const { response, proxied } = await attempt('/form/x', method, headers)
        t.equal(response.status, 403, `${method} ${JSON.stringify(headers).slice(0, 80)}: 403`)
        t.equal(code(response), 'GH_CSRF')
        t.notOk(proxied, 'not proxied')
      }
      for (const headers of <Array<Record<string, string>>>[{ cookie, origin }, { cookie, referer: `${origin}/somewhere?x` }, { cookie, origin, 'sec-fetch-site': 'same-origin' }]) {
        const { response, proxied } = await attempt('/form/x', method, headers)
        t.equal(response.status, 200, `${method} same origin: proxied`)
        t.ok(proxied)
        t.equal(upstream.last().headers['x-auth-method'], 'session')
      }
      const exempt = await attempt('/nocsrf/x', method, { cookie })
      t.equal(exempt.response.status, 200, `${method} csrf: false: proxied without Origin`)
      t.ok(exempt.proxied)
      for (const credential of [pat.token, session]) {
        const bearerCall = await attempt('/form/x', method, { ...bearer(credential), origin: 'https://evil.example' })
        t.equal(bearerCall.response.status, 200, `${method} bearer: exempt`)
        t.ok(bearerCall.proxied)
      }
    }
    const safe = await attempt('/form/x', 'GET', { cookie, origin: 'https://evil.example' })
    t.equal(safe.response.status, 200, 'GET is not checked')
  })
})

t.test('X-Forwarded-For from a trusted proxy is kept and the peer appended', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.server.trust_proxy = ['127.0.0.1/32']
      raw.routes = [{ name: 'pub', match: '/pub', upstream: upstream.url, auth: 'public' }]
    },
  })
  const cases: Array<[Array<[string, string]>, string]> = [
    [[['X-Forwarded-For', '203.0.113.9']], '203.0.113.9, 127.0.0.1'],
    [[['X-Forwarded-For', '203.0.113.9, 10.0.0.2']], '203.0.113.9, 10.0.0.2, 127.0.0.1'],
    [[['X-Forwarded-For', '198.51.100.1'], ['x-forwarded-for', '198.51.100.2']], '198.51.100.1, 198.51.100.2, 127.0.0.1'],
    [[], '127.0.0.1'],
    [[['X_Forwarded_For', 'spoofed-underscore']], '127.0.0.1'],
  ]
  for (const [headers, expected] of cases) {
    const what = JSON.stringify(headers)
    const before = upstream.received.length
    const response = await rawCall(gw.url, 'GET', '/pub/x', [
      ...headers,
      ['X-Forwarded-Proto', 'spoofed-http'],
      ['X-Forwarded-Host', 'spoofed.example'],
      ['X-Forwarded-Prefix', '/spoofed'],
    ])
    t.equal(response.status, 200, what)
    t.equal(upstream.received.length, before + 1)
    checkGatewayHeaders(t, upstream.last(), response, { identity: null, host: 'localhost', forwardedFor: expected, audience: 'pub' }, what)
  }
})
