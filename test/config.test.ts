import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import t from 'tap'

import {
  ConfigError, describeSchema, loadConfig, parseConfig, parseDuration, parseSize, resolveConfigPath,
  type GatewayConfig,
} from '../src/config/index.js'

/** The repository's own gateway.yml (tests run from dist/test). */
const COMMITTED = fileURLToPath(new URL('../../gateway.yml', import.meta.url))
const SOURCE = '/etc/gatehouse/gateway.yml'
const UPSTREAM = 'http://127.0.0.1:9001'

type Document = string | Record<string, unknown>

/** JSON is YAML, so most documents are written as objects. */
function parse(document: Document, env: NodeJS.ProcessEnv = {}, source = SOURCE): GatewayConfig {
  return parseConfig(typeof document === 'string' ? document : JSON.stringify(document), { source, env })
}

function problemsOf(document: Document, env: NodeJS.ProcessEnv = {}): readonly string[] {
  try {
    parse(document, env)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

async function loadProblems(path: string): Promise<readonly string[]> {
  try {
    await loadConfig(path, {})
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

function route(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'app', match: '/app', upstream: UPSTREAM, ...fields }
}

t.test('the committed gateway.yml', async (t) => {
  const config = await loadConfig(COMMITTED, {})
  const root = resolve(COMMITTED, '..')
  t.equal(config.source, COMMITTED)
  t.same(config.server, {
    host: '0.0.0.0',
    port: 8443,
    public_url: 'https://localhost:8443',
    tls: { cert: join(root, 'certs/tls.crt'), key: join(root, 'certs/tls.key') },
    http2: true,
    hsts: 180 * 24 * 3_600_000,
    redirect_http_port: null,
    trust_proxy: [],
    proxy_protocol: false,
    drain_timeout: 10_000,
    body_limit: 1024 * 1024,
    cors: null,
  })
  t.same(config.storage, { database: `embedded:${join(root, 'data/db')}`, pool: null, sessions: 'memory' })
  t.equal(config.identity.signing_key_file, join(root, 'certs/identity-keys.json'))
  t.same(config.roles, { viewer: ['app:read'], operator: ['app:read', 'app:write'], admin: ['*'] })
  t.same(config.default_roles, ['viewer'])
  t.same(config.rate_limits, { default: { max: 100, window: 60_000, key: 'ip' } })
  t.same(config.routes.map((r) => [r.name, r.match, r.auth, r.permissions, r.upstream, r.rate_limit_name]), [
    ['whoami', '/whoami', 'required', ['app:read'], UPSTREAM, 'default'],
    ['public', '/public', 'public', [], UPSTREAM, 'default'],
  ])
  t.same(config.metrics, { host: '127.0.0.1', port: 9464 })
  t.same(config.logging, { level: 'info', format: 'json', slow_request_threshold: 5000 })

  const moved = await loadConfig(COMMITTED, { PORT: '9443', WHOAMI_PORT: '9100' })
  t.equal(moved.server.port, 9443)
  t.equal(moved.server.public_url, 'https://localhost:9443')
  t.equal(moved.routes[0]?.upstream, 'http://127.0.0.1:9100')
})

t.test('every default, from a file that sets almost nothing', async (t) => {
  const config = parse({ logging: {} })
  t.same(config, {
    source: SOURCE,
    server: {
      host: '0.0.0.0',
      port: 8443,
      public_url: 'http://localhost:8443',
      tls: null,
      http2: true,
      hsts: 180 * 24 * 3_600_000,
      redirect_http_port: null,
      trust_proxy: [],
      proxy_protocol: false,
      drain_timeout: 10_000,
      body_limit: 1048576,
      cors: null,
    },
    storage: { database: 'embedded:/etc/gatehouse/data/db', pool: null, sessions: 'memory' },
    identity: {
      signing_key_file: '/etc/gatehouse/certs/identity-keys.json',
      data_key_file: '/etc/gatehouse/certs/data-keys.json',
      assertion_ttl: 60_000,
      bind_to_request: true,
    },
    sessions: { idle_timeout: 30 * 60_000, absolute_timeout: 24 * 3_600_000, cookie_domain: null, refresh_tokens: false, refresh_ttl: 30 * 86_400_000 },
    auth: {
      registration: 'open',
      email_verification: 'off',
      password: { min_length: 15, require_classes: false },
      argon2: { memory_kib: 19456, time_cost: 2, parallelism: 1 },
      lockout: { max_failures: 5, window: 15 * 60_000 },
      login_rate_limit: { max: 30, window: 60_000 },
      mfa: { issuer_name: 'Gatehouse', required_roles: [], passkey_login: true },
      oidc: [],
      jwt_bearer: [],
    },
    email: null,
    roles: { viewer: ['app:read'], operator: ['app:read', 'app:write'], admin: ['*'] },
    default_roles: ['viewer'],
    rate_limits: {},
    routes: [],
    forward_auth: null,
    metrics: { host: '127.0.0.1', port: 9464 },
    logging: { level: 'info', format: 'json', slow_request_threshold: 5000 },
  })
})

t.test('defaults that depend on other keys', async (t) => {
  const tls = parse({ server: { port: 9000, tls: { cert: 'a.crt', key: 'a.key' } } })
  t.equal(tls.server.public_url, 'https://localhost:9000')
  t.equal(parse({ server: { port: 9000 } }).server.public_url, 'http://localhost:9000')
  t.equal(parse({ server: { public_url: 'https://Gate.Example.com/' } }).server.public_url, 'https://gate.example.com')

  const custom = parse({ roles: { reader: ['docs:read'] } })
  t.same(custom.roles, { reader: ['docs:read'] })
  t.same(custom.default_roles, [], 'no default_roles when roles are given')
  t.same(parse({ roles: { reader: ['docs:read'] }, default_roles: ['reader'] }).default_roles, ['reader'])
  t.same(parse({ roles: {} }).roles, {})

  const [provider] = parse({
    auth: { oidc: [{ name: 'dev', issuer: 'http://127.0.0.1:8080/realms/x', client_id: 'id', client_secret: 'secret' }] },
  }).auth.oidc
  t.same(provider, {
    name: 'dev',
    issuer: 'http://127.0.0.1:8080/realms/x',
    client_id: 'id',
    client_secret: 'secret',
    scopes: ['openid', 'email', 'profile'],
    allowed_email_domains: null,
    create_users: false,
    link_existing_users: false,
    trust_unverified_email: false,
    roles_claim: null,
    role_map: {},
    allowed_groups: null,
    refresh_interval: null,
    provider_logout: false,
  })

  const [defaults] = parse({ routes: [route()] }).routes
  t.same(defaults, {
    name: 'app', host: null, match: '/app', methods: null, upstream: UPSTREAM, servers: [UPSTREAM], load_balancing: 'round_robin',
    health_check: null, preserve_host: false, auth: 'required', permissions: [],
    rate_limit: null, rate_limit_name: null, strip_prefix: false, timeout: 30_000, csrf: true, mfa: 'optional', websocket: false, cors: null,
  })
})

t.test('an empty value is the same as an absent key', async (t) => {
  const config = parse('server:\n  port:\n  tls:\nroutes:\n')
  t.equal(config.server.port, 8443)
  t.equal(config.server.tls, null)
  t.same(config.routes, [])
})

t.test('environment references', async (t) => {
  const yaml = [
    'server:',
    '  port: ${PORT:-8443}',
    '  redirect_http_port: ${REDIRECT_PORT:-}',
    '  trust_proxy: ${TRUSTED:-}',
    'identity:',
    '  bind_to_request: ${BIND:-false}',
    'auth:',
    '  oidc:',
    '    - name: corp',
    '      issuer: https://${IDP_HOST}/realms/corp',
    '      client_id: ${CLIENT_ID}',
    '      client_secret: "$${NOT_A_REFERENCE} and $$ and $PLAIN"',
  ].join('\n')
  const base = { IDP_HOST: 'idp.example.com', CLIENT_ID: '12345' }

  const defaults = parse(yaml, base)
  t.equal(defaults.server.port, 8443, 'the default of a whole reference is typed')
  t.equal(defaults.server.redirect_http_port, null, 'an empty whole reference is an absent value')
  t.same(defaults.server.trust_proxy, [], 'an empty list reference is an empty list')
  t.equal(defaults.identity.bind_to_request, false)
  t.equal(defaults.auth.oidc[0]?.issuer, 'https://idp.example.com/realms/corp', 'substituted inside a longer string')
  t.equal(defaults.auth.oidc[0]?.client_id, '12345', 'a string key keeps digits as a string')
  t.equal(defaults.auth.oidc[0]?.client_secret, '${NOT_A_REFERENCE} and $ and $PLAIN', '$$ is a literal $')

  const set = parse(yaml, { ...base, PORT: '9000', REDIRECT_PORT: '8080', TRUSTED: '10.0.0.0/8, fd00::/8,192.168.1.1', BIND: 'TRUE' })
  t.equal(set.server.port, 9000, 'a whole reference to a number is a number')
  t.equal(set.server.redirect_http_port, 8080)
  t.same(set.server.trust_proxy, ['10.0.0.0/8', 'fd00::/8', '192.168.1.1/32'], 'a list reference is split on commas')
  t.equal(set.identity.bind_to_request, true, 'a whole reference to a boolean is a boolean')

  t.equal(parse(yaml, { ...base, PORT: '' }).server.port, 8443, ':- also covers an empty variable')

  const missing = problemsOf(yaml, { IDP_HOST: 'idp.example.com' })
  t.same(missing, ['auth.oidc[0].client_id: environment variable CLIENT_ID is not set'])

  t.match(problemsOf(yaml, { ...base, PORT: 'eighty' }), [/^server\.port: /])
  t.match(problemsOf(yaml, { ...base, BIND: 'yes' }), [/^identity\.bind_to_request: /])
  t.match(problemsOf({ server: { port: '84${X:-43}' } }), [/^server\.port: /], 'only a whole reference is typed')
  t.match(problemsOf({ server: { port: '8443' } }), [/^server\.port: /], 'a quoted number is a string')
  t.match(problemsOf({ server: { host: '${1BAD}' } }), [/^server\.host: /])
  t.match(problemsOf({ server: { host: '${UNCLOSED' } }), [/^server\.host: /])
  t.same(problemsOf({ server: { host: '${A}', public_url: '${B}' } }).map((line) => line.split(':')[0]),
    ['server.host', 'server.public_url'], 'every missing variable is reported')
  for (const issuer of ['http://localhost:9000', 'http://[::1]:9000/realms/x', 'http://127.0.0.2:9000']) {
    t.equal(parse({ auth: { oidc: [{ name: 'dev', issuer, client_id: 'id', client_secret: 'secret' }] } }).auth.oidc[0]?.issuer, issuer,
      `plain http is allowed for the loopback issuer ${issuer}`)
  }
  t.notMatch(problemsOf({ server: { host: '${H}' } }, { H: '' }).join('\n'), /not set/, 'set but empty is not missing')
})

t.test('each kind of mistake names its key path', async (t) => {
  const provider = { name: 'corp', issuer: 'https://idp.example.com', client_id: 'id', client_secret: 'secret' }
  const cases: Array<[string, Document, string]> = [
    ['string for a number', { server: { port: '8443' } }, 'server.port'],
    ['port out of range', { server: { port: 70000 } }, 'server.port'],
    ['negative port', { metrics: { port: -1 } }, 'metrics.port'],
    ['bad host', { server: { host: 'not a host!' } }, 'server.host'],
    ['public_url with a path', { server: { public_url: 'https://gate.example.com/app' } }, 'server.public_url'],
    ['public_url not http', { server: { public_url: 'ftp://gate.example.com' } }, 'server.public_url'],
    ['public_url not absolute', { server: { public_url: 'gate.example.com' } }, 'server.public_url'],
    ['IPv4 prefix too long', { server: { trust_proxy: ['10.0.0.0/33'] } }, 'server.trust_proxy[0]'],
    ['IPv6 prefix too long', { server: { trust_proxy: ['fd00::/129'] } }, 'server.trust_proxy[0]'],
    ['not an address', { server: { trust_proxy: ['10.0.0.0/8', '300.1.1.1'] } }, 'server.trust_proxy[1]'],
    ['size without unit', { server: { body_limit: 10 } }, 'server.body_limit'],
    ['CORS wildcard', { server: { cors: { origins: ['*'] } } }, 'server.cors.origins[0]'],
    ['CORS origin with a path', { server: { cors: { origins: ['https://app.example.com/x'] } } }, 'server.cors.origins[0]'],
    ['CORS without origins', { server: { cors: { origins: [] } } }, 'server.cors.origins'],
    ['CORS origins missing', { server: { cors: {} } }, 'server.cors.origins'],
    ['TLS key missing', { server: { tls: { cert: 'a.crt' } } }, 'server.tls.key'],
    ['listeners on one port', { server: { port: 9000, redirect_http_port: 9000 } }, 'server.redirect_http_port'],
    ['metrics on the public port', { metrics: { host: '127.0.0.1', port: 8443 } }, 'metrics.port'],
    ['unknown database', { storage: { database: 'mysql://db/x' } }, 'storage.database'],
    ['embedded without directory', { storage: { database: 'embedded:' } }, 'storage.database'],
    ['unknown session store', { storage: { sessions: 'redis' } }, 'storage.sessions'],
    ['sentinel URL without a master name', { storage: { sessions: 'redis-sentinel://h1:26379,h2:26379' } }, 'storage.sessions'],
    ['sentinel URL with a bad host', { storage: { sessions: 'redis-sentinel://h1:26379,,h2/mymaster' } }, 'storage.sessions'],
    ['sentinel URL with a port out of range', { storage: { sessions: 'redis-sentinel://h1:70000/mymaster' } }, 'storage.sessions'],
    ['sentinel URL with a bad database', { storage: { sessions: 'redis-sentinel://h1/mymaster/zero' } }, 'storage.sessions'],
    ['sentinel URL with a query', { storage: { sessions: 'redis-sentinel://h1/mymaster/0?tls=1' } }, 'storage.sessions'],
    ['pool of no connections', { storage: { pool: { max: 0 } } }, 'storage.pool.max'],
    ['pool timeout without unit', { storage: { pool: { connect_timeout: 5 } } }, 'storage.pool.connect_timeout'],
    ['pool unknown key', { storage: { pool: { min: 2 } } }, 'storage.pool.min'],
    ['PROXY protocol without trusted proxies', { server: { proxy_protocol: true } }, 'server.proxy_protocol'],
    ['zero ttl', { identity: { assertion_ttl: '0s' } }, 'identity.assertion_ttl'],
    ['YAML 1.1 boolean', 'identity:\n  bind_to_request: yes\n', 'identity.bind_to_request'],
    ['idle longer than absolute', { sessions: { idle_timeout: '2d', absolute_timeout: '1d' } }, 'sessions.idle_timeout'],
    ['unknown enum value', { auth: { registration: 'invite' } }, 'auth.registration'],
    ['password too short', { auth: { password: { min_length: 7 } } }, 'auth.password.min_length'],
    ['password too long', { auth: { password: { min_length: 129 } } }, 'auth.password.min_length'],
    ['argon2 memory', { auth: { argon2: { memory_kib: 1024 } } }, 'auth.argon2.memory_kib'],
    ['argon2 time cost', { auth: { argon2: { time_cost: 0 } } }, 'auth.argon2.time_cost'],
    ['argon2 parallelism', { auth: { argon2: { parallelism: 17 } } }, 'auth.argon2.parallelism'],
    ['lockout failures', { auth: { lockout: { max_failures: 0 } } }, 'auth.lockout.max_failures'],
    ['bad duration', { auth: { login_rate_limit: { window: '1y' } } }, 'auth.login_rate_limit.window'],
    ['plain http issuer', { auth: { oidc: [{ ...provider, issuer: 'http://idp.example.com' }] } }, 'auth.oidc[0].issuer'],
    ['plain http issuer named like loopback', { auth: { oidc: [{ ...provider, issuer: 'http://127.0.0.1.example.com' }] } }, 'auth.oidc[0].issuer'],
    ['plain http issuer on a private address', { auth: { oidc: [{ ...provider, issuer: 'http://10.0.0.5:8080' }] } }, 'auth.oidc[0].issuer'],
    ['duplicate provider', { auth: { oidc: [provider, provider] } }, 'auth.oidc[1].name'],
    ['scopes without openid', { auth: { oidc: [{ ...provider, scopes: ['email'] }] } }, 'auth.oidc[0].scopes'],
    ['secret missing', { auth: { oidc: [{ ...provider, client_secret: undefined }] } }, 'auth.oidc[0].client_secret'],
    ['email domain with @', { auth: { oidc: [{ ...provider, allowed_email_domains: ['@example.com'] }] } },
      'auth.oidc[0].allowed_email_domains[0]'],
    ['permission with a space', { roles: { viewer: ['app read'] } }, 'roles.viewer[0]'],
    ['empty role name', { roles: { '': ['x'] } }, 'roles[""]'],
    ['undefined default role', { default_roles: ['ghost'] }, 'default_roles[0]'],
    ['default role of the default set', { roles: { reader: ['x'] }, default_roles: ['viewer'] }, 'default_roles[0]'],
    ['policy max', { rate_limits: { strict: { max: 0, window: '1m' } } }, 'rate_limits.strict.max'],
    ['policy key', { rate_limits: { strict: { max: 1, window: '1m', key: 'usr' } } }, 'rate_limits.strict.key'],
    ['policy window missing', { rate_limits: { strict: { max: 1 } } }, 'rate_limits.strict.window'],
    ['undefined policy', { routes: [route({ rate_limit: 'strict' })] }, 'routes[0].rate_limit'],
    ['duplicate route', { routes: [route(), route({ match: '/other' })] }, 'routes[1].name'],
    ['route name', { routes: [route({ name: 'my app' })] }, 'routes[0].name'],
    ['match without /', { routes: [route({ match: 'app' })] }, 'routes[0].match'],
    ['match not normalised', { routes: [route({ match: '/a/../b' })] }, 'routes[0].match'],
    ['match with //', { routes: [route({ match: '//' })] }, 'routes[0].match'],
    ['unknown method', { routes: [route({ methods: ['get', 'FETCH'] })] }, 'routes[0].methods[1]'],
    ['no methods', { routes: [route({ methods: [] })] }, 'routes[0].methods'],
    ['upstream not http', { routes: [route({ upstream: 'ftp://files' })] }, 'routes[0].upstream'],
    ['upstream missing', { routes: [route({ upstream: undefined })] }, 'routes[0].upstream'],
    ['auth mode', { routes: [route({ auth: 'maybe' })] }, 'routes[0].auth'],
    ['empty permission', { routes: [route({ permissions: [''] })] }, 'routes[0].permissions[0]'],
    ['timeout without unit', { routes: [route({ timeout: 30 })] }, 'routes[0].timeout'],
    ['log level', { logging: { level: 'verbose' } }, 'logging.level'],
    ['threshold with a space', { logging: { slow_request_threshold: '5 s' } }, 'logging.slow_request_threshold'],
    ['section of the wrong type', { server: [] }, 'server'],
  ]
  for (const [label, document, path] of cases) {
    const problems = problemsOf(document)
    t.equal(problems.length, 1, `${label}: one problem`, { problems })
    t.ok(problems[0]?.startsWith(`${path}: `), `${label}: ${path}`, { problems })
  }
})

t.test('the SPEC example: routes[2].rate_limit.window', async (t) => {
  const problems = problemsOf({
    routes: [route({ name: 'a', match: '/a' }), route({ name: 'b', match: '/b' }),
      route({ name: 'c', match: '/c', rate_limit: { max: 5, window: '5 minutes' } })],
  })
  t.equal(problems.length, 1)
  t.ok(problems[0]?.startsWith('routes[2].rate_limit.window: expected a duration like 30s, 5m, 1h'), problems[0] ?? '')
})

t.test('all problems are reported together', async (t) => {
  const problems = problemsOf({
    server: { port: 'x', public_url: 'https://gate.example.com/path' },
    auth: { password: { min_length: 3 } },
    default_roles: ['ghost'],
    routes: [route({ timeout: 'soon', rate_limit: 'missing' })],
  })
  t.same(problems.map((line) => line.slice(0, line.indexOf(': '))).sort(), [
    'default_roles[0]', 'auth.password.min_length', 'routes[0].rate_limit', 'routes[0].timeout', 'server.port', 'server.public_url',
  ].sort())

  try {
    parse({ server: { port: 'x' }, logging: { level: 'loud' } })
    t.fail('should throw')
  } catch (error) {
    t.ok(error instanceof ConfigError)
    if (error instanceof ConfigError) t.equal(error.message, error.problems.join('\n'))
  }
})

t.test('a mistake inside a defining section does not hide references to it', async (t) => {
  const problems = problemsOf({
    roles: { viewer: ['bad permission'], editor: ['x'] },
    default_roles: ['editor', 'ghost'],
    rate_limits: { strict: { max: 0, window: '1m' } },
    routes: [route({ rate_limit: 'strict' }), route({ name: 'b', match: '/b', rate_limit: 'lax' })],
  })
  t.same(problems.map((line) => line.slice(0, line.indexOf(': '))).sort(),
    ['default_roles[1]', 'rate_limits.strict.max', 'roles.viewer[0]', 'routes[1].rate_limit'])
})

t.test('unknown keys at every depth', async (t) => {
  const problems = problemsOf({
    serve: {},
    server: { prot: 8443 },
    auth: { argon2: { memory: 19456 }, oidc: [{ name: 'x', issuer: 'https://x.example.com', client_id: 'a', client_secret: 'b', secret: 'c' }] },
    rate_limits: { p: { max: 1, window: '1s', burst: 2 } },
    routes: [route({ nme: 'x', rate_limit: { max: 1, window: '1s', per: 'ip' } })],
  })
  const paths = problems.map((line) => line.slice(0, line.indexOf(': ')))
  t.same(paths.sort(), [
    'auth.argon2.memory', 'auth.oidc[0].secret', 'rate_limits.p.burst', 'routes[0].nme', 'routes[0].rate_limit.per', 'serve', 'server.prot',
  ])
  t.ok(problems.every((line) => line.includes('unknown key')))
  t.match(problems.find((line) => line.startsWith('server.prot')), /did you mean port\?/)
  t.match(problems.find((line) => line.startsWith('serve:')), /did you mean server\?/)
  t.match(problems.find((line) => line.startsWith('routes[0].nme')), /did you mean name\?/)
})

t.test('durations', async (t) => {
  const good: Array<[string, number]> = [
    ['500ms', 500], ['0s', 0], ['30s', 30_000], ['5m', 300_000], ['1h', 3_600_000], ['1d', 86_400_000], ['90m', 5_400_000], ['007s', 7000],
  ]
  for (const [text, ms] of good) t.equal(parseDuration(text), ms, text)
  for (const text of ['10', '5 m', '-1s', '1y', 'abc', '', '1.5h', '1h30m', '5M', ' 5m', '5m ', 's', `${Number.MAX_SAFE_INTEGER}d`]) {
    t.equal(parseDuration(text), null, JSON.stringify(text))
  }
})

t.test('sizes', async (t) => {
  const good: Array<[string, number]> = [
    ['10b', 10], ['512kb', 512 * 1024], ['1mb', 1024 * 1024], ['1MB', 1024 * 1024], ['2Gb', 2 * 1024 ** 3], ['0b', 0],
  ]
  for (const [text, bytes] of good) t.equal(parseSize(text), bytes, text)
  for (const text of ['10', '5 mb', '-1kb', '1tb', 'abc', '', '1.5mb', '1k', 'mb']) {
    t.equal(parseSize(text), null, JSON.stringify(text))
  }
})

t.test('route match and methods are normalised', async (t) => {
  const routes = parse({
    routes: [
      route({ name: 'a', match: '/app/', methods: ['get', 'Head', 'GET'] }),
      route({ name: 'b', match: '/' }),
      route({ name: 'c', match: '/a/b/', methods: ['POST'] }),
      route({ name: 'd', match: '/a/b', methods: ['GET'] }),
    ],
  }).routes
  t.same(routes.map((r) => r.match), ['/app', '/', '/a/b', '/a/b'])
  t.same(routes[0]?.methods, ['GET', 'HEAD'])
})

t.test('named and inline rate limits', async (t) => {
  const config = parse({
    rate_limits: { strict: { max: 10, window: '1m', key: 'user' } },
    routes: [
      route({ name: 'named', rate_limit: 'strict' }),
      route({ name: 'inline', match: '/b', rate_limit: { max: 5, window: '30s' } }),
      route({ name: 'none', match: '/c' }),
    ],
  })
  const [named, inline, none] = config.routes
  t.same(named?.rate_limit, { max: 10, window: 60_000, key: 'user' })
  t.equal(named?.rate_limit_name, 'strict')
  t.same(inline?.rate_limit, { max: 5, window: 30_000, key: 'ip' })
  t.equal(inline?.rate_limit_name, null)
  t.equal(none?.rate_limit, null)
  t.equal(none?.rate_limit_name, null)
  t.match(problemsOf({ routes: [route({ rate_limit: 5 })] }), [/^routes\[0\]\.rate_limit: /])
})

t.test('the result is deeply frozen', async (t) => {
  const config = parse({
    rate_limits: { p: { max: 1, window: '1s' } },
    routes: [route({ rate_limit: 'p', methods: ['GET'] })],
  })
  const mutations: Array<[string, () => void]> = [
    ['top level', () => Object.assign(config, { source: 'x' })],
    ['section', () => Object.assign(config.server, { port: 1 })],
    ['list', () => (config.routes as GatewayConfig['routes'][number][]).push(config.routes[0] as GatewayConfig['routes'][number])],
    ['nested list', () => (config.routes[0]?.methods as string[]).push('POST')],
    ['role map', () => Object.assign(config.roles, { hacker: ['*'] })],
    ['role permissions', () => (config.roles.admin as string[]).push('x')],
    ['resolved policy', () => Object.assign(config.routes[0]?.rate_limit ?? {}, { max: 1000 })],
    ['auth section', () => Object.assign(config.auth.argon2, { memory_kib: 1 })],
  ]
  for (const [label, mutate] of mutations) t.throws(mutate, TypeError, label)
  t.equal(config.server.port, 8443)
})

t.test('relative paths are resolved against the directory of the config file', async (t) => {
  const config = parse({
    server: { tls: { cert: 'tls/cert.pem', key: '/secure/key.pem' } },
    storage: { database: 'embedded:../state/db' },
    identity: { signing_key_file: 'keys.json' },
  }, {}, '/srv/gate/conf/gateway.yml')
  t.equal(config.server.tls?.cert, '/srv/gate/conf/tls/cert.pem')
  t.equal(config.server.tls?.key, '/secure/key.pem')
  t.equal(config.storage.database, 'embedded:/srv/gate/state/db')
  t.equal(config.identity.signing_key_file, '/srv/gate/conf/keys.json')
  t.equal(parse({ storage: { database: 'postgres://u:p@db:5432/gate' } }).storage.database, 'postgres://u:p@db:5432/gate')
  t.same(parse({ storage: { database: 'postgres://u:p@db:5432/gate', pool: { max: 25 } } }).storage.pool, { max: 25, connect_timeout: 5_000 })
  const sentinel = 'redis-sentinel://:s%40cret@10.0.0.1:26379,[::1]:26380,sentinel-3/mymaster/2'
  t.equal(parse({ storage: { sessions: sentinel } }).storage.sessions, sentinel, 'a Sentinel URL is kept as written')
})

t.test('file-level problems', async (t) => {
  const lines = (text: string): readonly string[] => problemsOf(text)
  for (const text of ['', '# only a comment\n', '~\n']) {
    const problems = lines(text)
    t.equal(problems.length, 1)
    t.ok(problems[0]?.startsWith(`${SOURCE}: `), JSON.stringify(text))
  }
  t.match(lines('- a\n- b\n'), [new RegExp(`^${SOURCE}: `)], 'a list is not a mapping')
  t.match(lines('just text\n'), [new RegExp(`^${SOURCE}: `)], 'a scalar is not a mapping')
  t.match(lines('server:\n  port: 1\n  tls: [\n'), [new RegExp(`^${SOURCE}:\\d+:\\d+: `)], 'syntax errors have a line and column')
  t.match(lines('server:\n  port: 1\n  port: 2\n'), [new RegExp(`^${SOURCE}:3:\\d+: `)], 'duplicate keys are refused')

  const dir = t.testdir({ 'gateway.yml': 'server:\n  port: 1234\n' })
  t.equal((await loadConfig(join(dir, 'gateway.yml'), {})).server.port, 1234)
  const missing = join(dir, 'nope.yml')
  await t.rejects(loadConfig(missing, {}), ConfigError)
  t.match(await loadProblems(missing), [new RegExp(`^${missing}: `)], 'a missing file is one problem naming it')
  writeFileSync(join(dir, 'bad.yml'), 'server: { port: x }\n')
  t.match(await loadProblems(join(dir, 'bad.yml')), [/^server\.port: /])
})

t.test('resolveConfigPath', async (t) => {
  t.equal(resolveConfigPath('/a/b.yml', { GATEHOUSE_CONFIG: '/c/d.yml' }), '/a/b.yml')
  t.equal(resolveConfigPath(undefined, { GATEHOUSE_CONFIG: '/c/d.yml' }), '/c/d.yml')
  t.equal(resolveConfigPath(undefined, { GATEHOUSE_CONFIG: '' }), resolve('gateway.yml'))
  t.equal(resolveConfigPath(undefined, {}), resolve('gateway.yml'))
  t.equal(resolveConfigPath('conf/g.yml', {}), resolve('conf/g.yml'))
})

t.test('describeSchema documents every key', async (t) => {
  const entries = describeSchema()
  const byPath = new Map(entries.map((entry) => [entry.path, entry]))
  t.equal(byPath.size, entries.length, 'paths are unique')
  t.ok(entries.every((entry) => entry.description.length > 0 && entry.type.length > 0), 'every key has a type and a description')
  t.match(byPath.get('routes[].rate_limit.window'), { type: 'duration', default: null })
  t.match(byPath.get('server.port'), { type: 'port', default: '8443' })
  t.match(byPath.get('routes[].timeout'), { default: '30s' })
  t.match(byPath.get('roles.<name>'), { type: 'list of permission' })
  t.match(byPath.get('auth.oidc[].scopes'), { default: '[openid, email, profile]' })
  t.equal(byPath.get('routes[].match')?.default, null, 'required keys have no default')

  // Every key of a full config appears in the reference.
  const config = parse({
    server: { tls: { cert: 'a', key: 'b' }, cors: { origins: ['https://a.example.com'] } },
    auth: { oidc: [{ name: 'x', issuer: 'https://x.example.com', client_id: 'a', client_secret: 'b' }] },
    rate_limits: { p: { max: 1, window: '1s' } },
    routes: [route({ rate_limit: { max: 1, window: '1s' } })],
  })
  const missing: string[] = []
  const walk = (value: unknown, path: string): void => {
    if (path !== '' && !byPath.has(path)) missing.push(path)
    if (Array.isArray(value)) value.forEach((item) => walk(item, `${path}[]`))
    else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        const named = path === 'roles' || path === 'rate_limits'
        walk(item, named ? `${path}.<name>` : path === '' ? key : `${path}.${key}`)
      }
    }
  }
  const { source: _source, ...documented } = config
  walk({ ...documented, routes: documented.routes.map(({ rate_limit_name: _name, servers: _servers, ...rest }) => rest) }, '')
  t.same(missing.filter((path) => !path.endsWith('[]')), [])
})

t.test('route host: exact or one-label wildcard, lower-cased, port dropped; bad ones refused with their key path', async (t) => {
  const routes = parse({
    routes: [
      route({ name: 'exact', host: 'App.Example.COM' }),
      route({ name: 'wild', host: '*.example.com' }),
      route({ name: 'port', host: 'api.example.com:8443' }),
      route({ name: 'any' , match: '/other' }),
    ],
  }).routes
  t.same(routes.map((r) => r.host), ['app.example.com', '*.example.com', 'api.example.com', null])
  for (const bad of ['*', '*.com', 'a.*.example.com', 'app..example.com', 'http://app.example.com', 'app example.com', '*example.com']) {
    t.match(problemsOf({ routes: [route({ host: bad })] }), [/^routes\[0\]\.host: /], JSON.stringify(bad))
  }
})

t.test('check-config refuses two routes with the same host, match and overlapping methods (SPEC §2)', async (t) => {
  const conflicts: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ['same match, both all methods', {}, {}],
    ['a trailing slash does not make another match', { match: '/app/' }, { match: '/app' }],
    ['hosts compared ignoring case', { host: 'App.example.com' }, { host: 'app.EXAMPLE.com' }],
    ['one method in common', { methods: ['GET', 'POST'] }, { methods: ['post'] }],
    ['all methods overlap any list', {}, { methods: ['DELETE'] }],
    ['the same wildcard', { host: '*.example.com' }, { host: '*.Example.com' }],
  ]
  for (const [what, first, second] of conflicts) {
    const problems = problemsOf({ routes: [route({ name: 'x', match: '/x' }), route({ name: 'a', ...first }), route({ name: 'b', ...second })] })
    t.match(problems, [/^routes\[2\]\.match: conflicts with routes\[1\]/], what)
  }
  const distinct: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
    ['other methods', { methods: ['GET'] }, { methods: ['POST'] }],
    ['another host', { host: 'a.example.com' }, { host: 'b.example.com' }],
    ['a host and no host', { host: 'a.example.com' }, {}],
    ['exact and wildcard', { host: 'a.example.com' }, { host: '*.example.com' }],
    ['another match', { match: '/app' }, { match: '/app/x' }],
  ]
  for (const [what, first, second] of distinct) {
    t.doesNotThrow(() => parse({ routes: [route({ name: 'a', ...first }), route({ name: 'b', ...second })] }), what)
  }
})

t.test('email and auth.email_verification (SPEC §2)', async (t) => {
  const defaults = parse({})
  t.equal(defaults.email, null, 'no email section: no email')
  t.equal(defaults.auth.email_verification, 'off', 'verification is off by default')
  const smtp = parse({ email: { smtp: 'smtp://user:s3cret@mail.example.com:587' }, auth: { email_verification: 'required' } })
  t.same(smtp.email, { smtp: 'smtp://user:s3cret@mail.example.com:587', from: 'Gatehouse <no-reply@example.com>' }, 'from has its default')
  t.same(parse({ email: { smtp: 'log', from: 'Me <me@example.com>' } }).email, { smtp: 'log', from: 'Me <me@example.com>' })

  t.same(problemsOf({ auth: { email_verification: 'required' } }), ['auth.email_verification: required needs an email section to send the links with'],
    'required without an email section is an error naming the key')
  t.match(problemsOf({ auth: { email_verification: 'sometimes' } }), [/^auth\.email_verification: /])
  t.match(problemsOf({ email: {} }), [/^email\.smtp: required key is missing/])
  const bad = problemsOf({ email: { smtp: 'http://user:s3cret@mail.example.com' } })
  t.match(bad, [/^email\.smtp: expected log or an smtp:\/\//])
  t.notMatch(bad.join('\n'), /s3cret/, 'the problem never quotes the password')
  t.match(problemsOf({ email: { smtp: 'log', extra: 1 } }), [/^email\.extra: unknown key/])
})

t.test('route upstream: one URL or a list of servers sharing scheme and base path (SPEC §2)', async (t) => {
  const [one] = parse({ routes: [route()] }).routes
  t.same(one?.servers, [UPSTREAM])
  const [many] = parse({ routes: [route({
    upstream: ['http://10.0.0.1:9001/base', 'http://10.0.0.2:9001/base/'],
    load_balancing: 'least_request',
    health_check: { path: '/healthz', interval: '5s' },
  })] }).routes
  t.equal(many?.upstream, 'http://10.0.0.1:9001/base')
  t.same(many?.servers, ['http://10.0.0.1:9001/base', 'http://10.0.0.2:9001/base/'])
  t.equal(many?.load_balancing, 'least_request')
  t.same(many?.health_check, { path: '/healthz', interval: 5000, timeout: 2000, unhealthy_after: 3, healthy_after: 2 })
  t.same(problemsOf({ routes: [route({ upstream: ['http://10.0.0.1:9001', 'https://10.0.0.2:9001'] })] }),
    ['routes[0].upstream[1]: must use the scheme of upstream[0] (http)'])
  t.same(problemsOf({ routes: [route({ upstream: ['http://10.0.0.1:9001/a', 'http://10.0.0.2:9001/b'] })] }),
    ['routes[0].upstream[1]: must have the base path of upstream[0] (/a)'])
  t.same(problemsOf({ routes: [route({ upstream: ['http://10.0.0.1:9001', 'http://10.0.0.1:9001/'] })] }),
    ['routes[0].upstream[1]: 10.0.0.1:9001 is listed twice'])
  t.same(problemsOf({ routes: [route({ upstream: [] })] }), ['routes[0].upstream: must not be empty'])
  t.same(problemsOf({ routes: [route({ upstream: ['ftp://x'] })] }).length, 1)
  t.same(problemsOf({ routes: [route({ load_balancing: 'random' })] }).length, 1)
  t.same(problemsOf({ routes: [route({ health_check: { interval: '1s', timeout: '2s' } })] }),
    ['routes[0].health_check.timeout: must not be longer than interval'])
})

t.test('server.http2, server.hsts, route preserve_host and cors', async (t) => {
  const config = parse({ routes: [route({ preserve_host: true, cors: { origins: ['https://spa.example.com'], headers: ['Content-Type'] } })] })
  t.equal(config.server.http2, true)
  t.equal(config.server.hsts, 180 * 24 * 3600 * 1000)
  t.equal(parse({ server: { hsts: 0 } }).server.hsts, 0)
  t.equal(parse({ server: { hsts: '0' } }).server.hsts, 0)
  t.equal(parse({ server: { hsts: '1h' } }).server.hsts, 3600 * 1000)
  t.equal(problemsOf({ server: { hsts: 'forever' } }).length, 1)
  const [r] = config.routes
  t.equal(r?.preserve_host, true)
  t.same(r?.cors, { origins: ['https://spa.example.com'], methods: ['GET', 'POST'], headers: ['content-type'], max_age: 600_000 })
  t.same(problemsOf({ routes: [route({ cors: { origins: ['*'] } })] }).length, 1)
  t.same(problemsOf({ routes: [route({ cors: {} })] }), ['routes[0].cors.origins: required key is missing'])
})
