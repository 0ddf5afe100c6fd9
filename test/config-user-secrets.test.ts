/**
 * SPEC §2 route `user_secret`: what check-config refuses, one line per problem naming its key
 * path and saying why: a header name that is not a token or that the gateway owns already, and
 * a route that could never hand the secret to its owner's upstream.
 */
import t from 'tap'
import { ConfigError, parseConfig } from '../src/config/index.js'

const UPSTREAM = 'http://127.0.0.1:9001'

function problemsOf(routes: unknown[], extra: Record<string, unknown> = {}): readonly string[] {
  try {
    parseConfig(JSON.stringify({ routes, ...extra }), { source: '/etc/gatehouse/gateway.yml', env: {} })
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

t.test('a valid user_secret is kept as written; omitted, it is null', async (t) => {
  const config = parseConfig(JSON.stringify({
    routes: [
      { name: 'db', match: '/db', upstream: UPSTREAM, user_secret: { header: 'X-Db-Credentials' } },
      { name: 'plain', match: '/plain', upstream: UPSTREAM },
    ],
  }), { source: '/etc/gatehouse/gateway.yml', env: {} })
  t.same(config.routes.map((route) => route.user_secret), [{ header: 'X-Db-Credentials' }, null])
})

t.test('header names that cannot carry a secret, each explained', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['X Db', /must be a header name/],
    ['X-Db:', /must be a header name/],
    ['X-Auth-Db', /x-auth-: those are the gateway's identity headers/],
    ['x_auth_db', /x-auth-/],
    ['X-Forwarded-Secret', /x-forwarded-/],
    ['Connection', /hop-by-hop/],
    ['Transfer-Encoding', /hop-by-hop/],
    ['Proxy-Authorization', /hop-by-hop/],
    ['Authorization', /gateway credentials/],
    ['Cookie', /session cookie/],
    ['Host', /frames or addresses/],
    ['Content-Length', /frames or addresses/],
    ['X-Request-Id', /strips or sets itself/],
    ['Remote_User', /strips or sets itself/],
  ]
  for (const [header, reason] of cases) {
    const problems = problemsOf([{ name: 'db', match: '/db', upstream: UPSTREAM, user_secret: { header } }])
    t.equal(problems.length, 1, `${header}: one problem`)
    t.match(problems[0], /^routes\[0\]\.user_secret\.header: /, `${header}: names the key path`)
    t.match(problems[0], reason, `${header}: says why`)
  }
  t.same(problemsOf([{ name: 'db', match: '/db', upstream: UPSTREAM, user_secret: {} }]), ['routes[0].user_secret.header: required key is missing'])
  t.match(problemsOf([{ name: 'db', match: '/db', upstream: UPSTREAM, user_secret: { header: 'X-A', extra: 1 } }]), [/^routes\[0\]\.user_secret\.extra: unknown key/])
})

t.test('a route that could never hand the secret to its owner\'s upstream', async (t) => {
  t.same(problemsOf([{ name: 'open', match: '/open', upstream: UPSTREAM, auth: 'public', user_secret: { header: 'X-Key' } }]), [
    'routes[0].user_secret: needs auth: required or optional: a public route has no user to take the secret of',
  ])
  t.same(problemsOf([{ name: 'fa', match: '/fa', user_secret: { header: 'X-Key' } }], { forward_auth: { trusted: ['127.0.0.1/32'] } }), [
    'routes[0].user_secret: needs an upstream: forward auth never hands user secrets to the proxy in front',
  ])
  t.same(problemsOf([{ name: 'opt', match: '/opt', upstream: UPSTREAM, auth: 'optional', user_secret: { header: 'X-Key' } }]), [], 'optional is fine')
})
