import t from 'tap'
import type { AuthMode } from '../src/config/types.js'
import type { Identity } from '../src/core/identity.js'
import { decide, type Decision } from '../src/core/policy.js'
import { RouteTable } from '../src/core/route-table.js'
import { explain } from '../src/core/pipeline/index.js'
import { routeConfig, testIdentity } from './helpers/fixtures.js'

const route = routeConfig

const identity = (permissions: string[]): Identity =>
  testIdentity({ permissions, method: 'pat', amr: ['pat'], via: 'header' }, { roles: ['viewer'] })

const allow = (reason: Decision['reason']): Decision => ({ allow: true, outcome: 'allow', reason, missing_permissions: [] })
const unauthenticated: Decision = { allow: false, outcome: 'unauthenticated', reason: 'no_credential', missing_permissions: [] }
const forbidden = (...missing: string[]): Decision => ({
  allow: false,
  outcome: 'forbidden',
  reason: 'missing_permission',
  missing_permissions: missing,
})

t.test('every mode × identity × permissions', async (t) => {
  const needs = ['app:read', 'app:write']
  // [mode, route permissions, identity permissions (null: no identity), expected]
  const cases: Array<[AuthMode, string[], string[] | null, Decision]> = [
    ['public', [], null, allow('public_route')],
    ['public', [], ['app:read'], allow('public_route')],
    ['public', needs, null, allow('public_route')],
    ['public', needs, [], allow('public_route')], // the edge never authenticates on public routes
    ['public', needs, ['*'], allow('public_route')],

    ['optional', [], null, allow('anonymous')],
    ['optional', [], [], allow('authenticated')],
    ['optional', needs, null, allow('anonymous')],
    ['optional', needs, ['app:read', 'app:write'], allow('authenticated')],
    ['optional', needs, ['*'], allow('authenticated')],
    ['optional', needs, ['app:read'], forbidden('app:write')], // never downgraded to anonymous
    ['optional', needs, [], forbidden('app:read', 'app:write')],

    ['required', [], null, unauthenticated],
    ['required', [], [], allow('authenticated')],
    ['required', needs, null, unauthenticated],
    ['required', needs, ['app:write', 'app:read', 'other'], allow('authenticated')],
    ['required', needs, ['*'], allow('authenticated')],
    ['required', needs, ['app:read', '*'], allow('authenticated')],
    ['required', needs, ['app:read'], forbidden('app:write')],
    ['required', needs, ['app:write'], forbidden('app:read')],
    ['required', needs, [], forbidden('app:read', 'app:write')],
    ['required', needs, ['app:*'], forbidden('app:read', 'app:write')], // only the bare * is a wildcard
    ['required', ['b', 'a', 'c'], ['c'], forbidden('b', 'a')], // config order
    ['required', ['a', 'a'], [], forbidden('a')],
  ]
  for (const [auth, permissions, granted, expected] of cases) {
    const who = granted === null ? 'anonymous' : `[${granted.join(',')}]`
    t.same(decide(route('r', '/r', { auth, permissions }), granted && identity(granted)), expected, `${auth} [${permissions.join(',')}] ${who}`)
  }
})

t.test('explain runs normalise, match and decide like the edge', async (t) => {
  const table = new RouteTable([
    route('public', '/', { auth: 'public', upstream: 'http://127.0.0.1:9000' }),
    route('app', '/app', { methods: ['GET', 'HEAD'], permissions: ['app:read'], strip_prefix: true }),
    route('admin', '/admin', { permissions: ['users:manage'] }),
  ])
  const viewer = identity(['app:read'])

  const proxied = await explain(table, '/public//../app/%2e/x?q=/../admin', 'get', viewer)
  t.match(proxied, {
    method: 'GET',
    target: '/public//../app/%2e/x?q=/../admin',
    path: '/app/x',
    query: '?q=/../admin',
    path_refusal: null,
    match: { kind: 'route', route: { name: 'app' }, upstreamPath: '/x' },
    identity: { user_id: viewer.user.id, email: 'alice@example.com', roles: ['viewer'], permissions: ['app:read'], method: 'pat' },
    decision: allow('authenticated'),
    answer: { status: null, code: null, upstream_url: 'http://127.0.0.1:9001/x?q=/../admin' },
  })

  t.match(await explain(table, '/admin/users', 'GET', viewer), {
    path: '/admin/users',
    decision: forbidden('users:manage'),
    answer: { status: 403, code: 'GH_FORBIDDEN', upstream_url: null },
  })
  t.match(await explain(table, '/admin', 'GET', null), {
    identity: null,
    decision: unauthenticated,
    answer: { status: 401, code: 'GH_UNAUTHENTICATED' },
  })
  t.match(await explain(table, '/app/x', 'POST', viewer), {
    match: { kind: 'method_not_allowed', allow: ['GET', 'HEAD'] },
    decision: null,
    answer: { status: 405, code: 'GH_METHOD_NOT_ALLOWED' },
  })
  t.match(await explain(table, '/elsewhere', 'DELETE', viewer), {
    match: { kind: 'route', route: { name: 'public' } },
    decision: allow('public_route'),
    answer: { status: null, upstream_url: 'http://127.0.0.1:9000/elsewhere' },
  })
  t.match(await explain(table, '/app/%2F', 'GET', viewer), {
    path: null,
    query: null,
    path_refusal: { reason: 'encoded_slash' },
    match: null,
    decision: null,
    answer: { status: 400, code: 'GH_BAD_PATH', upstream_url: null },
  })
  t.match(await explain(new RouteTable([route('app', '/app')]), '/other', 'GET', null), {
    match: { kind: 'not_found' },
    answer: { status: 404, code: 'GH_NOT_FOUND' },
  })
})

t.test('explain refuses a path the proxy cannot forward, as the edge does', async (t) => {
  const table = new RouteTable([route('files', '/files', { auth: 'public' })])
  for (const target of ['/files/..x/y', '/files/x../y', '/files/...', '/files/%C0%AE']) {
    const e = await explain(table, target, 'GET', null)
    t.equal(e.path_refusal?.reason, 'not_forwardable', target)
    t.equal(e.answer.code, 'GH_BAD_PATH', target)
  }
  t.equal((await explain(table, '/files/a..b/c', 'GET', null)).answer.status, null, 'two dots inside a segment are fine')
  t.equal((await explain(table, '/auth/me', 'GET', null)).answer.code, 'GH_NOT_FOUND', 'reserved paths are not proxied')
})
