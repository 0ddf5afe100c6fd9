/**
 * The request pipeline without a server (issue 12): one evaluate per request, a typed outcome,
 * one report per outcome, the origin rules of each caller, the login redirect and rate limits.
 */
import t from 'tap'
import type { Identity } from '../src/core/identity.js'
import { counterRateLimiter, Gate, type GateOutcome, type GateRequest } from '../src/core/pipeline/index.js'
import { RouteTable } from '../src/core/route-table.js'
import { GatehouseError } from '../src/errors.js'
import { routeConfig, testIdentity } from './helpers/fixtures.js'

const PUBLIC_URL = 'https://gate.example.com'
const table = new RouteTable([
  routeConfig('app', '/app', { upstream: 'http://127.0.0.1:9001/base/', strip_prefix: true, permissions: ['app:read'] }),
  routeConfig('admin', '/admin', { permissions: ['users:manage'], methods: ['GET'] }),
  routeConfig('tenant', '/', { host: '*.tenants.example.com', rate_limit: { max: 2, window: 60_000, key: 'ip' } }),
  routeConfig('open', '/open', { auth: 'public' }),
])

function gateFor(identity: Identity | null | Error, reported: GateOutcome[] = []) {
  let count = 0
  const counter = {
    increment: async () => ({ count: ++count, resetInMs: 30_500 }),
  }
  return new Gate({
    table,
    credentials: {
      resolve: async () => {
        if (identity instanceof Error) throw identity
        return identity
      },
    },
    rateLimiter: counterRateLimiter(counter),
    signer: { sign: (_identity, request) => `signed:${request.audience}:${request.method}:${request.uri}` },
    origins: { publicUrl: PUBLIC_URL, allowed: new Set([PUBLIC_URL]) },
    onOutcome: (outcome) => reported.push(outcome),
  })
}

function request(overrides: Partial<GateRequest> = {}): GateRequest {
  return {
    kind: 'proxy', method: 'GET', host: 'gate.example.com', target: '/app/x?q=1', headers: {}, rawHeaders: [],
    clientKey: () => '192.0.2.1', requestId: 'req-1', ...overrides,
  }
}

const cookieUser = testIdentity({ via: 'cookie' })

t.test('allow: the exact upstream request, signed for it, reported once', async (t) => {
  const reported: GateOutcome[] = []
  const outcome = await gateFor(cookieUser, reported).evaluate(request())
  t.equal(outcome.kind, 'allow')
  if (outcome.kind !== 'allow') return
  t.same(outcome.upstream, { base: 'http://127.0.0.1:9001/base/x', query: '?q=1', htu: '/base/x?q=1', url: 'http://127.0.0.1:9001/base/x?q=1' })
  t.equal(outcome.identityHeaders['x-auth-assertion'], 'signed:app:GET:/base/x?q=1', 'htu is the path and query the upstream receives')
  t.equal(outcome.identityHeaders['x-auth-user-id'], cookieUser.user.id)
  t.same(reported, [outcome], 'reported exactly once')
})

t.test('refusals carry status, code, outcome label and what was learnt before', async (t) => {
  const cases: Array<[string, Identity | null | Error, Partial<GateRequest>, number, string, string]> = [
    ['no route', cookieUser, { target: '/nowhere' }, 404, 'GH_NOT_FOUND', 'error'],
    ['reserved path', cookieUser, { target: '/auth/me' }, 404, 'GH_NOT_FOUND', 'error'],
    ['bad path', cookieUser, { target: '/app/%2F' }, 400, 'GH_BAD_PATH', 'error'],
    ['method', cookieUser, { target: '/admin', method: 'POST' }, 405, 'GH_METHOD_NOT_ALLOWED', 'error'],
    ['no credential', null, {}, 401, 'GH_UNAUTHENTICATED', 'unauthenticated'],
    ['bad credential', new GatehouseError('GH_UNAUTHENTICATED'), {}, 401, 'GH_UNAUTHENTICATED', 'unauthenticated'],
    ['ambiguous', new GatehouseError('GH_AMBIGUOUS_CREDENTIALS'), {}, 400, 'GH_AMBIGUOUS_CREDENTIALS', 'unauthenticated'],
    ['store down', new Error('ECONNREFUSED'), {}, 500, 'GH_INTERNAL', 'error'],
    ['permission', cookieUser, { target: '/admin' }, 403, 'GH_FORBIDDEN', 'forbidden'],
    ['cross-site post', cookieUser, { method: 'POST', headers: { origin: 'https://evil.test' } }, 403, 'GH_CSRF', 'forbidden'],
  ]
  for (const [what, identity, overrides, status, code, label] of cases) {
    const reported: GateOutcome[] = []
    const outcome = await gateFor(identity, reported).evaluate(request(overrides))
    t.equal(outcome.kind, 'refuse', what)
    if (outcome.kind !== 'refuse') continue
    t.equal(outcome.error.statusCode, status, `${what}: status`)
    t.equal(outcome.error.code, code, `${what}: code`)
    t.equal(outcome.outcome, label, `${what}: decisions_total outcome`)
    t.equal(reported.length, 1, `${what}: reported once`)
  }
  const refused = await gateFor(cookieUser).evaluate(request({ target: '/admin', method: 'DELETE' }))
  t.equal(refused.responseHeaders.allow, 'GET', '405 names the allowed methods')
  const forbidden = await gateFor(cookieUser).evaluate(request({ target: '/admin' }))
  t.match(forbidden, { route: { name: 'admin' }, identity: { user: { id: cookieUser.user.id } }, decision: { missing_permissions: ['users:manage'] } })
})

t.test('a browser navigation without a credential gets the login redirect, with the normalised target', async (t) => {
  const html = { accept: 'text/html,application/xhtml+xml' }
  const navigation = await gateFor(null).evaluate(request({ target: '/app//y/../x?q=1', headers: html }))
  t.equal(navigation.kind === 'refuse' && navigation.loginRedirect, `/auth/login?next=${encodeURIComponent('/app/x?q=1')}`)
  const post = await gateFor(null).evaluate(request({ method: 'POST', headers: html }))
  t.equal(post.kind === 'refuse' && post.loginRedirect, null, 'not for a POST')
  const bad = await gateFor(new GatehouseError('GH_UNAUTHENTICATED')).evaluate(request({ headers: html }))
  t.equal(bad.kind === 'refuse' && bad.loginRedirect, null, 'not for a bad credential')
})

t.test('origin rules per caller: WebSocket handshakes and forward auth (SPEC §4a, §4b)', async (t) => {
  const allowedOrigin = { origin: PUBLIC_URL }
  const cases: Array<[string, Partial<GateRequest>, Identity, boolean]> = [
    ['proxy GET from another origin', { headers: { origin: 'https://evil.test' } }, cookieUser, true],
    ['websocket without Origin', { kind: 'websocket' }, cookieUser, false],
    ['websocket from another origin', { kind: 'websocket', headers: { origin: 'https://evil.test' } }, cookieUser, false],
    ['websocket from an allowed origin', { kind: 'websocket', headers: allowedOrigin }, cookieUser, true],
    ['websocket with a bearer credential', { kind: 'websocket' }, testIdentity({ via: 'header' }), true],
    ['forward auth GET naming another origin', { kind: 'forward_auth', headers: { origin: 'https://evil.test' } }, cookieUser, false],
    ['forward auth without Origin', { kind: 'forward_auth' }, cookieUser, true],
    ['a route host is an allowed origin', { host: 'a.tenants.example.com', target: '/x', method: 'POST', headers: { origin: 'https://a.tenants.example.com' } }, cookieUser, true],
    ['another tenant is not', { host: 'a.tenants.example.com', target: '/x', method: 'POST', headers: { origin: 'https://b.tenants.example.com' } }, cookieUser, false],
  ]
  for (const [what, overrides, identity, allowed] of cases) {
    const outcome = await gateFor(identity).evaluate(request(overrides))
    t.equal(outcome.kind, allowed ? 'allow' : 'refuse', what)
    if (!allowed) t.equal(outcome.kind === 'refuse' && outcome.error.code, 'GH_CSRF', `${what}: GH_CSRF`)
  }
})

t.test('rate limits: x-ratelimit-* on every answer, 429 with Retry-After over the limit', async (t) => {
  const gate = gateFor(cookieUser)
  const tenant = request({ host: 'a.tenants.example.com', target: '/x' })
  const first = await gate.evaluate(tenant)
  t.same(first.responseHeaders, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '1', 'x-ratelimit-reset': '31' })
  await gate.evaluate(tenant)
  const third = await gate.evaluate(tenant)
  t.equal(third.kind, 'refuse')
  if (third.kind !== 'refuse') return
  t.equal(third.outcome, 'rate_limited')
  t.equal(third.error.code, 'GH_RATE_LIMITED')
  t.equal(third.error.retryAfter, 31)
  t.equal(third.responseHeaders['x-ratelimit-remaining'], '0')
})

t.test('a public route never reads credentials', async (t) => {
  const outcome = await gateFor(new Error('must not be called')).evaluate(request({ target: '/open/x' }))
  t.match(outcome, { kind: 'allow', identity: null, identityHeaders: {} })
})
