/**
 * SPEC §2: values from outside gateway.yml. `${file:/path}` (a secret file's content, one
 * trailing newline dropped), the `|url` filter (a password with `@`, `/` or `:` spliced into a
 * connection URL), and `GATEHOUSE__` overrides of any scalar key, which win over the file,
 * while a variable naming no key is an error and other GATEHOUSE_ variables are ignored.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'
import t, { type Test } from 'tap'

import { ConfigError, parseConfig, type GatewayConfig } from '../src/config/index.js'

const UPSTREAM = 'http://127.0.0.1:9001'
const SOURCE = '/etc/gatehouse/gateway.yml'

async function workDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-config-env-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

type Document = string | Record<string, unknown>

function parse(document: Document, env: NodeJS.ProcessEnv = {}, source = SOURCE): GatewayConfig {
  return parseConfig(typeof document === 'string' ? document : JSON.stringify(document), { source, env })
}

function problemsOf(document: Document, env: NodeJS.ProcessEnv = {}, source = SOURCE): readonly string[] {
  try {
    parse(document, env, source)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

const routes = [
  { name: 'app', match: '/app', upstream: UPSTREAM, permissions: ['app:read'] },
  { name: 'public', match: '/public', upstream: UPSTREAM, auth: 'public' },
]

t.test('${file:/path} reads a secret file, one trailing newline dropped', async (t) => {
  const dir = await workDir(t)
  const source = join(dir, 'gateway.yml')
  await writeFile(join(dir, 'client_secret'), 's3cret value\n')
  await writeFile(join(dir, 'two_newlines'), 'kept\n\n')
  await writeFile(join(dir, 'crlf'), 'windows\r\n')
  await writeFile(join(dir, 'port'), '9443\n')
  await mkdir(join(dir, 'secrets'))
  await writeFile(join(dir, 'secrets', 'pg'), 'p@ss/w:rd\n')
  const provider = { name: 'corp', issuer: 'https://idp.example.com', client_id: '${file:crlf}', client_secret: `\${file:${join(dir, 'client_secret')}}` }
  const config = parse({
    server: { port: `\${file:${join(dir, 'port')}}` },
    storage: { database: 'postgres://app:${file:secrets/pg|url}@db.internal:5432/app' },
    auth: { oidc: [provider, { ...provider, name: 'other', client_id: '${file:two_newlines}' }] },
  }, {}, source)
  t.equal(config.auth.oidc[0]?.client_secret, 's3cret value', 'the content without its trailing newline')
  t.equal(config.auth.oidc[0]?.client_id, 'windows', 'a trailing CRLF counts as one newline')
  t.equal(config.auth.oidc[1]?.client_id, 'kept\n', 'only one newline is dropped')
  t.equal(config.server.port, 9443, 'a whole file reference takes the type of its key')
  t.equal(config.storage.database, 'postgres://app:p%40ss%2Fw%3Ard@db.internal:5432/app', 'a relative path is read beside the config file, |url applies')

  const missing = join(dir, 'absent')
  t.same(problemsOf({ auth: { oidc: [{ ...provider, client_secret: `\${file:${missing}}` }] } }, {}, source),
    [`auth.oidc[0].client_secret: cannot read the file ${missing} of \${file:${missing}}: no such file`], 'a missing file names the key')
  t.match(problemsOf({ server: { host: '${file:secrets}' } }, {}, source), [/^server\.host: cannot read the file .*secrets.*: it is a directory$/])
  t.match(problemsOf({ server: { host: '${file:}' } }, {}, source), [/^server\.host: invalid reference/], 'a file reference needs a path')
  t.notMatch(problemsOf({ server: { port: '${file:client_secret}' } }, {}, source).join('\n'), /s3cret/, 'a bad value read from a file is never echoed')
})

t.test('|url percent-encodes a password spliced into a database URL', async (t) => {
  const password = 'p@ss/w:rd?#%20 ü'
  const document = { storage: { database: 'postgres://gatehouse:${PGPASSWORD|url}@db.internal:5432/gatehouse' } }
  const database = parse(document, { PGPASSWORD: password }).storage.database
  t.equal(database, `postgres://gatehouse:${encodeURIComponent(password)}@db.internal:5432/gatehouse`)
  // What the pg driver itself makes of the URL: the password intact, the host unchanged.
  const client = new pg.Client({ connectionString: database })
  t.equal(client.password, password, 'pg reads back the exact password')
  t.equal(client.host, 'db.internal', 'and the host the URL names')
  t.equal(client.database, 'gatehouse')
  t.equal(client.user, 'gatehouse')

  // Without the filter the same password breaks the URL: `@` and `/` move the host.
  const raw = parse({ storage: { database: 'postgres://gatehouse:${PGPASSWORD}@db.internal:5432/gatehouse' } }, { PGPASSWORD: 'p@ss/w' })
  t.not(new pg.Client({ connectionString: raw.storage.database }).host, 'db.internal', 'unfiltered, the URL means something else')

  t.match(problemsOf({ server: { host: '${HOST:-local host|url}' } }), [/^server\.host: expected/], 'the default is filtered too (local%20host)')
  t.match(problemsOf({ server: { host: '${HOST|base64}' } }, { HOST: 'x' }), [/^server\.host: invalid reference/], 'an unknown filter is refused')
  t.equal(parse({ sessions: { idle_timeout: '${IDLE|url}' } }, { IDLE: '5m' }).sessions.idle_timeout, 300_000, 'a whole filtered reference is typed')
})

t.test('GATEHOUSE__ overrides win over the file', async (t) => {
  const file = { sessions: { idle_timeout: '30m' }, routes }
  const env = {
    GATEHOUSE__SESSIONS__IDLE_TIMEOUT: '1h',
    GATEHOUSE__SESSIONS__ABSOLUTE_TIMEOUT: '12h',
    GATEHOUSE__SERVER__PORT: '9443',
    GATEHOUSE__ROUTES__0__UPSTREAM: 'http://10.0.0.5:8080',
    GATEHOUSE__ROUTES__1__AUTH: 'optional',
    GATEHOUSE__IDENTITY__BIND_TO_REQUEST: 'false',
    GATEHOUSE__SERVER__TRUST_PROXY: '10.0.0.0/8,fd00::/8',
    GATEHOUSE__ROLES__VIEWER: 'app:read,app:list',
    GATEHOUSE__LOGGING__LEVEL: 'debug',
    GATEHOUSE_CONFIG: '/somewhere/else.yml',
    GATEHOUSE_REQUIRE_BACKENDS: '1',
  }
  const config = parse({ ...file, roles: { viewer: ['app:read'], admin: ['*'] } }, env)
  t.equal(config.sessions.idle_timeout, 3_600_000, 'the variable wins over the file')
  t.equal(config.sessions.absolute_timeout, 12 * 3_600_000, 'a key absent from the file is set')
  t.equal(config.server.port, 9443, 'a number')
  t.equal(config.server.public_url, 'http://localhost:9443', 'and what follows from it')
  t.equal(config.routes[0]?.upstream, 'http://10.0.0.5:8080', 'a list item by index')
  t.equal(config.routes[0]?.name, 'app', 'the rest of the item stays')
  t.equal(config.routes[1]?.auth, 'optional')
  t.equal(config.identity.bind_to_request, false, 'a boolean')
  t.same(config.server.trust_proxy, ['10.0.0.0/8', 'fd00::/8'], 'a list, comma-separated')
  t.same(config.roles.viewer, ['app:read', 'app:list'], 'an entry of a mapping of names')
  t.equal(config.logging.level, 'debug')

  const sectionAbsent = parse({}, { GATEHOUSE__METRICS__PORT: '9999', GATEHOUSE__SERVER__REDIRECT_HTTP_PORT: '8080' })
  t.equal(sectionAbsent.metrics.port, 9999, 'a section absent from the file is created')
  t.equal(sectionAbsent.server.redirect_http_port, 8080)
  t.equal(parse({ server: { redirect_http_port: 8080 } }, { GATEHOUSE__SERVER__REDIRECT_HTTP_PORT: '' }).server.redirect_http_port, null,
    'an empty override turns an optional setting off')
})

t.test('a GATEHOUSE__ variable that names no key, a section, or a missing item is refused', async (t) => {
  const file = { routes }
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ GATEHOUSE__SESIONS__IDLE_TIMEOUT: '1h' }, /^GATEHOUSE__SESIONS__IDLE_TIMEOUT: names no key: gateway.yml has no key sesions; did you mean sessions\?$/],
    [{ GATEHOUSE__SESSIONS__IDLE_TIMOUT: '1h' }, /^GATEHOUSE__SESSIONS__IDLE_TIMOUT: names no key: sessions has no key idle_timout; did you mean idle_timeout\?$/],
    [{ GATEHOUSE__SERVER: 'x' }, /^GATEHOUSE__SERVER: server is a section, not a value/],
    [{ GATEHOUSE__SERVER__TLS: 'x' }, /^GATEHOUSE__SERVER__TLS: server\.tls is a section/],
    [{ GATEHOUSE__ROUTES__2__UPSTREAM: UPSTREAM }, /^GATEHOUSE__ROUTES__2__UPSTREAM: routes has 2 items in the file/],
    [{ GATEHOUSE__ROUTES__X__UPSTREAM: UPSTREAM }, /^GATEHOUSE__ROUTES__X__UPSTREAM: names no key/],
    [{ GATEHOUSE__ROUTES__0__UPSTREM: UPSTREAM }, /^GATEHOUSE__ROUTES__0__UPSTREM: names no key: routes\[n\] has no key upstrem; did you mean upstream\?$/],
    [{ GATEHOUSE__SESSIONS____IDLE_TIMEOUT: '1h' }, /^GATEHOUSE__SESSIONS____IDLE_TIMEOUT: write the key path with __/],
    [{ GATEHOUSE__: '1' }, /^GATEHOUSE__: write the key path/],
  ]
  for (const [env, expected] of cases) {
    const problems = problemsOf(file, env)
    t.equal(problems.length, 1, `${Object.keys(env)[0]}: one problem`, { problems })
    t.match(problems[0], expected)
  }

  const wrongType = problemsOf(file, { GATEHOUSE__SERVER__PORT: 'eighty', GATEHOUSE__SESSIONS__IDLE_TIMEOUT: 'hunter2-secret' })
  t.same(wrongType, [
    'server.port: expected an integer from 0 to 65535, got the value of GATEHOUSE__SERVER__PORT',
    'sessions.idle_timeout: expected a duration like 30s, 5m, 1h, got the value of GATEHOUSE__SESSIONS__IDLE_TIMEOUT; write a whole number and one of ms, s, m, h, d',
  ], 'a bad value names the key and the variable, never the value')
  t.match(problemsOf(file, { GATEHOUSE__SERVER__HOST: '${NOT_EXPANDED}', NOT_EXPANDED: '127.0.0.1' }), [/^server\.host: expected/],
    'an override is final text: references in it are not expanded')
  t.same(problemsOf(file, { GATEHOUSE_CONFIG: 'x.yml', GATEHOUSE_REQUIRE_BACKENDS: '1', GATEHOUSE_ANYTHING: 'x' }), [],
    'GATEHOUSE_ with one underscore is not an override')
})
