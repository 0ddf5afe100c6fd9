import t from 'tap'
import { normalizeTarget } from '../src/core/paths.js'
import { RouteTable, type RouteMatch } from '../src/core/route-table.js'
import { routeConfig } from './helpers/fixtures.js'

const route = routeConfig

/** 'name upstreamPath', 'not_found' or '405 ALLOW,LIST' */
function summary(m: RouteMatch): string {
  if (m.kind === 'route') return `${m.route.name} ${m.upstreamPath}`
  if (m.kind === 'not_found') return 'not_found'
  return `405 ${m.allow.join(',')}`
}

t.test('longest whole-segment prefix, order among equals, 405 with the allow union', async (t) => {
  const table = new RouteTable([
    route('root', '/', { auth: 'public' }),
    route('app', '/app'),
    route('app-write', '/app', { methods: ['POST', 'PUT'] }),
    route('app-api', '/app/api', { methods: ['GET', 'HEAD'] }),
    route('app-api-write', '/app/api', { methods: ['POST', 'DELETE'] }),
    route('app-api-first', '/app/api/v1', { methods: ['GET'] }),
    route('app-api-second', '/app/api/v1', { methods: ['GET', 'POST'] }),
    route('admin', '/admin', { methods: ['GET'] }),
  ])
  const cases: Array<[string, string, string]> = [
    ['/', 'GET', 'root /'],
    ['/anything/else', 'DELETE', 'root /anything/else'],
    ['/app', 'GET', 'app /app'],
    ['/app/', 'GET', 'app /app/'],
    ['/app/x', 'POST', 'app /app/x'], // 'app' (all methods) comes first in config order
    ['/apple', 'GET', 'root /apple'],
    ['/app-x', 'GET', 'root /app-x'],
    ['/app.x', 'GET', 'root /app.x'],
    ['/APP', 'GET', 'root /APP'],
    ['/App/x', 'GET', 'root /App/x'],
    ['/app/api', 'GET', 'app-api /app/api'],
    ['/app/api/', 'HEAD', 'app-api /app/api/'],
    ['/app/api/x', 'DELETE', 'app-api-write /app/api/x'],
    ['/app/apiary', 'DELETE', 'app /app/apiary'],
    ['/app/api', 'PATCH', '405 DELETE,GET,HEAD,POST'],
    ['/app/api/deep/x', 'PUT', '405 DELETE,GET,HEAD,POST'],
    ['/app/api/v1', 'GET', 'app-api-first /app/api/v1'],
    ['/app/api/v1/x', 'POST', 'app-api-second /app/api/v1/x'],
    ['/app/api/v1/x', 'DELETE', '405 GET,POST'], // no fall-back to /app/api, which allows DELETE
    ['/admin', 'GET', 'admin /admin'],
    ['/admin/users', 'POST', '405 GET'], // no fall-back to the public catch-all
    ['/admin/users', 'get', '405 GET'], // methods are case-sensitive
    ['/administrator', 'POST', 'root /administrator'],
  ]
  for (const [path, method, expected] of cases) {
    t.equal(summary(table.match(path, method)), expected, `${method} ${path}`)
  }
})

t.test('without a catch-all, unmatched paths are not found', async (t) => {
  const table = new RouteTable([route('app', '/app', { methods: ['GET'] }), route('guide', '/guide/v2')])
  const cases: Array<[string, string, string]> = [
    ['/', 'GET', 'not_found'],
    ['/apple', 'GET', 'not_found'],
    ['/ap', 'GET', 'not_found'],
    ['/guide', 'GET', 'not_found'],
    ['/guide/v2', 'GET', 'guide /guide/v2'],
    ['/guide/v20', 'GET', 'not_found'],
    ['/app/x', 'POST', '405 GET'],
  ]
  for (const [path, method, expected] of cases) {
    t.equal(summary(table.match(path, method)), expected, `${method} ${path}`)
  }
  t.equal(summary(new RouteTable([]).match('/', 'GET')), 'not_found', 'an empty table')
})

t.test('strip_prefix', async (t) => {
  const table = new RouteTable([
    route('root', '/', { strip_prefix: true }),
    route('app', '/app', { strip_prefix: true }),
    route('nested', '/a/b/c', { strip_prefix: true }),
    route('kept', '/kept'),
  ])
  const cases: Array<[string, string]> = [
    ['/app', 'app /'],
    ['/app/', 'app /'],
    ['/app/x', 'app /x'],
    ['/app/x/', 'app /x/'],
    ['/app/app/x', 'app /app/x'],
    ['/a/b/c', 'nested /'],
    ['/a/b/c/d', 'nested /d'],
    ['/a/b', 'root /a/b'], // '/' strips nothing
    ['/', 'root /'],
    ['/kept/x', 'kept /kept/x'],
    ['/kept', 'kept /kept'],
  ]
  for (const [path, expected] of cases) t.equal(summary(table.match(path, 'GET')), expected, path)
})

t.test('a prefix written with a trailing slash behaves as without', async (t) => {
  const table = new RouteTable([route('app', '/app/', { strip_prefix: true }), route('apple', '/apple')])
  t.equal(summary(table.match('/app', 'GET')), 'app /')
  t.equal(summary(table.match('/app/x', 'GET')), 'app /x')
  t.equal(summary(table.match('/apple', 'GET')), 'apple /apple')
})

t.test('matching runs on normalised paths: bypass attempts land on the route they resolve to', async (t) => {
  const table = new RouteTable([
    route('public', '/public', { auth: 'public' }),
    route('admin', '/admin', { methods: ['GET'] }),
  ])
  const cases: Array<[string, string]> = [
    ['/public//../admin/x', 'admin /admin/x'],
    ['/public/%2e%2e/admin', 'admin /admin'],
    ['/public/.%2E/admin/', 'admin /admin/'],
    ['//admin', 'admin /admin'],
    ['/%61dmin', 'admin /admin'],
    ['/public/%252e%252e/admin', 'public /public/%252e%252e/admin'],
    ['/public/%c0%ae%c0%ae/admin', 'public /public/%C0%AE%C0%AE/admin'],
    ['/public?/../admin', 'public /public'],
    ['/admin/../public', 'public /public'],
  ]
  for (const [target, expected] of cases) {
    t.equal(summary(table.match(normalizeTarget(target).path, 'GET')), expected, target)
  }
})

t.test('the allow list is a fresh copy each time; routes are kept in config order', async (t) => {
  const routes = [route('a', '/a', { methods: ['GET'] }), route('b', '/b')]
  const table = new RouteTable(routes)
  const first = table.match('/a', 'POST')
  if (first.kind !== 'method_not_allowed') throw new Error('expected 405')
  first.allow.push('POST')
  t.same(table.match('/a', 'POST'), { kind: 'method_not_allowed', allow: ['GET'] })
  t.same(table.routes.map((r) => r.name), ['a', 'b'])
})

t.test("the gateway's own paths match no route, even under a catch-all", async (t) => {
  const table = new RouteTable([route('all', '/')])
  for (const path of ['/auth', '/auth/me', '/auth/admin/users', '/health', '/health/ready', '/docs', '/docs/json', '/.well-known/jwks.json']) {
    t.same(table.match(path, 'GET'), { kind: 'not_found' }, path)
  }
  for (const path of ['/authx', '/healthz', '/.well-known/other', '/app/auth/me']) {
    t.equal(table.match(path, 'GET').kind, 'route', `${path} is an ordinary path`)
  }
})

t.test('hosts: exact tier, then wildcard tier, then host-less; the first tier with a path match decides (SPEC §2)', async (t) => {
  const table = new RouteTable([
    route('any-root', '/', { auth: 'public' }),
    route('any-api', '/api'),
    route('any-docs', '/guide'),
    route('wild-api', '/api', { host: '*.example.com' }),
    route('wild-admin', '/admin', { host: '*.example.com', methods: ['GET'] }),
    route('app-api', '/api/v1', { host: 'app.example.com' }),
    route('app-read', '/data', { host: 'app.example.com', methods: ['GET'] }),
    route('ipv6', '/v6', { host: '[::1]' }),
  ])
  const cases: Array<[string | null, string, string, string]> = [
    // exact tier first, longest match inside it
    ['app.example.com', '/api/v1/x', 'GET', 'app-api /api/v1/x'],
    ['APP.Example.com:8443', '/api/v1', 'GET', 'app-api /api/v1'], // case and port ignored
    ['app.example.com.', '/api/v1', 'GET', 'app-api /api/v1'], // a trailing dot is the same host
    // the exact tier has no path match: the wildcard tier decides, not the host-less one
    ['app.example.com', '/api/other', 'GET', 'wild-api /api/other'],
    // a path match with no method match is 405 in its tier, never a fall-through
    ['app.example.com', '/data', 'POST', '405 GET'],
    ['app.example.com', '/admin/x', 'DELETE', '405 GET'],
    ['app.example.com', '/guide', 'GET', 'any-docs /guide'], // neither host tier matches the path
    // the wildcard covers exactly one label
    ['other.example.com', '/api', 'GET', 'wild-api /api'],
    ['Other.Example.COM', '/admin', 'GET', 'wild-admin /admin'],
    ['a.b.example.com', '/api', 'GET', 'any-api /api'],
    ['example.com', '/api', 'GET', 'any-api /api'],
    ['other.example.com', '/api/v1', 'GET', 'wild-api /api/v1'], // the exact route is for app. only
    // a foreign host, no host at all, an IPv6 literal
    ['evil.test', '/api/v1', 'GET', 'any-api /api/v1'],
    ['evil.test', '/admin', 'POST', 'any-root /admin'],
    [null, '/admin', 'GET', 'any-root /admin'],
    ['[::1]:8443', '/v6/x', 'GET', 'ipv6 /v6/x'],
    ['127.0.0.1:8443', '/v6/x', 'GET', 'any-root /v6/x'],
    // reserved paths on every host
    ['app.example.com', '/auth/me', 'GET', 'not_found'],
  ]
  for (const [host, path, method, expected] of cases) {
    t.equal(summary(table.match(path, method, host)), expected, `${method} ${host ?? '(no host)'} ${path}`)
  }
})

t.test('without host-less routes, a foreign host matches nothing', async (t) => {
  const table = new RouteTable([route('app', '/', { host: 'app.example.com' }), route('wild', '/', { host: '*.corp.example' })])
  t.equal(summary(table.match('/x', 'GET', 'app.example.com')), 'app /x')
  t.equal(summary(table.match('/x', 'GET', 'eu.corp.example')), 'wild /x')
  t.equal(summary(table.match('/x', 'GET', 'evil.test')), 'not_found')
  t.equal(summary(table.match('/x', 'GET', null)), 'not_found')
  t.equal(summary(table.match('/x', 'GET', 'app.example.com.evil.test')), 'not_found')
})
