/**
 * SPEC §2: what `check-config` (and every start) refuses beyond a key's own type, each
 * problem on a line of its own starting with its key path: two routes answering the same
 * requests, a route permission that no role grants, an upstream that is not an http(s) URL,
 * and, by the real `gatehouse check-config`, a certificate and key that cannot be read or do
 * not pair.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import yaml from 'js-yaml'
import t, { type Test } from 'tap'

import { ConfigError, parseConfig } from '../src/config/index.js'
import { checkRouteConflicts, type RouteKey } from '../src/config/route-checks.js'
import { ensureDevCertificate } from '../src/dev-certificate.js'

const BIN = fileURLToPath(new URL('../src/bin.js', import.meta.url))
const UPSTREAM = 'http://127.0.0.1:9001'
const ROLES = { viewer: ['app:read'], operator: ['app:read', 'app:write'], admin: ['*'] }

function problemsOf(document: Record<string, unknown>): readonly string[] {
  try {
    parseConfig(JSON.stringify(document), { source: '/etc/gatehouse/gateway.yml', env: {} })
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

const route = (name: string, fields: Record<string, unknown> = {}) => ({ name, match: `/${name}`, upstream: UPSTREAM, ...fields })

t.test('two routes with the same match and overlapping methods', async (t) => {
  const conflicting = problemsOf({
    roles: ROLES,
    routes: [
      route('app', { match: '/app/' }),
      route('other', { match: '/other', methods: ['GET', 'POST'] }),
      route('again', { match: '/app' }),
      route('reads', { match: '/other', methods: ['post', 'DELETE'] }),
    ],
  })
  t.same(conflicting, [
    'routes[2].match: conflicts with routes[0] (app): same no host, match /app and methods (all); the second could never be reached: give them different methods or matches, or remove one',
    'routes[3].match: conflicts with routes[1] (other): same no host, match /other and methods (POST); the second could never be reached: give them different methods or matches, or remove one',
  ], 'a trailing slash does not make a match different; methods compare case-insensitively')

  t.match(problemsOf({ routes: [route('a', { match: '/x', methods: ['GET'] }), route('b', { match: '/x' })] }),
    [/^routes\[1\]\.match: conflicts with routes\[0\] \(a\): .*methods \(GET\)/], 'no methods means all, which overlaps GET')
  t.same(problemsOf({ routes: [route('a', { match: '/x', methods: ['GET', 'HEAD'] }), route('b', { match: '/x', methods: ['POST'] })] }), [],
    'the same match with disjoint methods is fine')
  t.same(problemsOf({ routes: [route('a', { match: '/x' }), route('b', { match: '/x/y' })] }), [], 'a longer match is another route')

  // Routes naming a host compare it too, case-insensitively (the key is host, match, methods).
  const found: string[] = []
  const keys: RouteKey[] = [
    { name: 'a', host: 'app.example.com', match: '/', methods: null, permissions: [] },
    { name: 'b', host: 'API.example.com', match: '/', methods: null, permissions: [] },
    { name: 'c', host: null, match: '/', methods: null, permissions: [] },
    { name: 'd', host: 'APP.example.com', match: '/', methods: ['GET'], permissions: [] },
  ]
  checkRouteConflicts(keys, (message, index, key) => found.push(`routes${index}.${key}: ${message}`))
  t.equal(found.length, 1, 'only the two routes of one host conflict')
  t.match(found[0], /^routes\[3\]\.match: conflicts with routes\[0\] \(a\): same host APP\.example\.com, match \/ and methods \(GET\)/)
})

t.test('a route permission that no role grants', async (t) => {
  const problems = problemsOf({
    roles: ROLES,
    routes: [
      route('typo', { permissions: ['app:raed'] }),
      route('fine', { permissions: ['app:read', 'app:write'] }),
      route('unknown', { permissions: ['app:read', 'billing:export'] }),
    ],
  })
  t.same(problems, [
    'routes[0].permissions[0]: permission "app:raed" is granted by no role in roles, so only roles holding "*" could reach this route; did you mean app:read?',
    'routes[2].permissions[1]: permission "billing:export" is granted by no role in roles, so only roles holding "*" could reach this route; roles grant: app:read, app:write',
  ], '"*" does not count as granting a misspelt permission')
  t.same(problemsOf({ roles: { ...ROLES, billing: ['billing:export'] }, routes: [route('unknown', { permissions: ['billing:export'] })] }), [],
    'granted once a role lists it')
  t.same(problemsOf({ roles: ROLES, routes: [route('open', { permissions: [] })] }), [], 'a route needing nothing is fine')
  t.match(problemsOf({ roles: { viewer: ['*'] }, routes: [route('a', { permissions: ['x:y'] })] }), [/roles grant: nothing but "\*"/])
})

t.test('second factors: auth.mfa and route mfa are checked like every other key', async (t) => {
  t.same(problemsOf({ roles: ROLES, auth: { mfa: { issuer_name: 'Example', required_roles: ['admin'], passkey_login: false } }, routes: [route('a', { mfa: 'required' })] }), [])
  t.match(problemsOf({ roles: ROLES, auth: { mfa: { required_roles: ['admins'] } } }), [/^auth\.mfa\.required_roles\[0\]: /], 'a role that does not exist')
  t.match(problemsOf({ auth: { mfa: { requires_roles: ['admin'] } } }), [/^auth\.mfa\.requires_roles: /], 'an unknown key')
  t.match(problemsOf({ routes: [route('a', { mfa: 'always' })] }), [/^routes\[0\]\.mfa: /], 'a value that is neither optional nor required')
  t.match(problemsOf({ auth: { mfa: { passkey_login: 'yes' } } }), [/^auth\.mfa\.passkey_login: /], 'a wrong type')
})

t.test('an upstream that is not an http(s) URL', async (t) => {
  for (const upstream of ['ftp://files.example.com', 'unix:/run/app.sock', '127.0.0.1:9001', 'http://', 'http://user:pw@host']) {
    const problems = problemsOf({ routes: [route('app', { upstream })] })
    t.equal(problems.length, 1, upstream)
    t.match(problems[0], /^routes\[0\]\.upstream: /, `${upstream} names routes[0].upstream`)
  }
})

async function checkConfig(cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { ...process.env }
  delete env.GATEHOUSE_CONFIG
  const child = spawn(process.execPath, [BIN, 'check-config'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr }
}

async function workDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-check-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const config = {
    server: { host: '127.0.0.1', port: 0, tls: { cert: 'tls/tls.crt', key: 'tls/tls.key' } },
    storage: { database: 'embedded:./data/db', sessions: 'memory' },
    roles: ROLES,
    routes: [route('app', { permissions: ['app:read'] })],
  }
  await writeFile(join(dir, 'gateway.yml'), yaml.dump(config))
  return dir
}

t.test('gatehouse check-config refuses a certificate and key that cannot be read or do not pair', async (t) => {
  const dir = await workDir(t)
  const cert = join(dir, 'tls', 'tls.crt')
  const key = join(dir, 'tls', 'tls.key')

  const fresh = await checkConfig(dir)
  t.equal(fresh.code, 0, 'neither file yet: serve creates a development certificate there')
  t.match(fresh.stdout, /: ok \(1 routes\)/)

  await ensureDevCertificate(cert, key)
  const paired = await checkConfig(dir)
  t.equal(paired.code, 0, `a pair: ok ${paired.stderr}`)

  // Another certificate's key.
  const other = join(dir, 'other')
  await ensureDevCertificate(join(other, 'tls.crt'), join(other, 'tls.key'))
  await rm(key)
  await writeFile(key, await import('node:fs/promises').then((fs) => fs.readFile(join(other, 'tls.key'))))
  const mismatched = await checkConfig(dir)
  t.equal(mismatched.code, 1, 'a key of another certificate: exit 1')
  t.match(mismatched.stderr, new RegExp(`^server\\.tls\\.key: ${key.replaceAll('.', '\\.')} does not belong to the certificate .*do not pair\\n$`))
  t.equal(mismatched.stdout, '', 'nothing on stdout')

  await writeFile(cert, 'not a certificate\n')
  const garbage = await checkConfig(dir)
  t.equal(garbage.code, 1)
  t.match(garbage.stderr, /^server\.tls\.cert: .*tls\.crt is not a PEM certificate/)

  await rm(cert)
  const onlyKey = await checkConfig(dir)
  t.equal(onlyKey.code, 1, 'the key without its certificate')
  t.match(onlyKey.stderr, /^server\.tls\.cert: cannot read .*tls\.crt \(ENOENT: no such file\)\n$/)

  await mkdir(cert)
  const directory = await checkConfig(dir)
  t.equal(directory.code, 1, 'a directory where the certificate should be')
  t.match(directory.stderr, /^server\.tls\.cert: cannot read .*tls\.crt \(EISDIR: it is a directory\)\n$/)
})

t.test('gatehouse check-config lists every problem, one per line, each with its key path', async (t) => {
  const dir = await workDir(t)
  await writeFile(join(dir, 'gateway.yml'), yaml.dump({
    roles: ROLES,
    server: { port: 'eighty' },
    routes: [route('app', { permissions: ['app:raed'] }), route('dup', { match: '/app' })],
  }))
  const result = await checkConfig(dir)
  t.equal(result.code, 1)
  t.same(result.stderr.trimEnd().split('\n').map((line) => line.split(':')[0]), ['server.port', 'routes[1].match', 'routes[0].permissions[0]'],
    'a bad value, a route conflict and an ungranted permission together')
  t.equal(result.stdout, '')
})
