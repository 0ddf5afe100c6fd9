/**
 * The built `gatehouse` command as a real process (SPEC §8): `node dist/src/bin.js …` in a
 * temporary directory holding a gateway.yml and its embedded database. Exit codes (0 ok,
 * 1 failure, 2 bad usage), stdout for results, stderr for errors; the embedded-storage lock
 * against a running `serve`; and `serve` stopping with 0 on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import yaml from 'js-yaml'
import t, { type Test } from 'tap'
import { systemClock } from '../src/core/clock.js'
import { KeyRing } from '../src/core/identity-keys.js'
import { databaseBackends } from './helpers/backends.js'
import type { RawConfig } from './helpers/gateway.js'

const BIN = fileURLToPath(new URL('../src/bin.js', import.meta.url))
const PAT_LINE = /^pat_[0-9A-Za-z]{49}\n$/
const PASSWORD = 'correct horse battery staple'
const ADMIN = 'admin@example.com'
const VIEWER = 'viewer@example.com'

interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

interface RunOptions {
  cwd: string
  env?: Record<string, string>
  /** Written to stdin, which is then closed; without it stdin is empty and closed. */
  input?: string
}

/** Runs the CLI to completion (at most 60 s). GATEHOUSE_CONFIG is unset unless `env` sets it. */
async function run(args: string[], options: RunOptions): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
  if (options.env?.GATEHOUSE_CONFIG === undefined) delete env.GATEHOUSE_CONFIG
  const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdin.end(options.input ?? '')
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null]
  clearTimeout(timer)
  return { code, signal, stdout, stderr }
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim() !== '')
}

function config(overrides: (raw: RawConfig) => void = () => {}): string {
  const raw: RawConfig = {
    server: { host: '127.0.0.1', port: 0, public_url: 'https://gatehouse.test' },
    storage: { database: 'embedded:./data/db', sessions: 'memory' },
    identity: { signing_key_file: './keys/identity-keys.json' },
    auth: { argon2: { memory_kib: 8192, time_cost: 1, parallelism: 1 }, password: { min_length: 15 } },
    // admin:access is granted by a role of its own (check-config refuses a permission no role lists).
    roles: { viewer: ['app:read'], operator: ['app:read', 'app:write'], auditor: ['admin:access'], admin: ['*'] },
    default_roles: ['viewer'],
    routes: [
      { name: 'app', match: '/app', upstream: 'http://127.0.0.1:9', auth: 'required', permissions: ['app:read'] },
      { name: 'admin', match: '/admin', upstream: 'http://127.0.0.1:9', auth: 'required', permissions: ['admin:access'] },
      { name: 'public', match: '/public', upstream: 'http://127.0.0.1:9', auth: 'public' },
    ],
    metrics: { port: 0 },
    logging: { level: 'warn' },
  }
  overrides(raw)
  return yaml.dump(raw)
}

/** Starts `serve` and resolves its URL once it says it listens (rejects if it exits first). */
async function serve(t: Test, cwd: string): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [BIN, 'serve'], { cwd, env: { ...process.env, GATEHOUSE_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start within 20 s: ${output}`)), 20_000)
    // The banner is on stderr: stdout carries the JSON log only.
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk
      const found = /listening on (https?:\/\/\S+)/i.exec(output)
      if (found?.[1]) {
        clearTimeout(timer)
        resolve(found[1])
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`serve exited with ${code} before listening: ${output}`))
    })
  })
  return { child, url, output: () => output }
}

t.test('the gatehouse command', async (t) => {
  // Embedded databases are copies of the shared templates (no initdb here), moved under each
  // working directory as ./data/db. Scratch space is /dev/shm when it has room: PGlite opens
  // several times faster there, and every command that needs the database opens it.
  const pglite = databaseBackends()[0]!
  const copyOfTemplate = async (migrated: boolean): Promise<string> => (await pglite.url(t, { migrated })).slice('embedded:'.length)
  const placeDatabase = async (dir: string, cwd: string): Promise<void> => {
    await mkdir(path.join(cwd, 'data'), { recursive: true })
    await rename(dir, path.join(cwd, 'data', 'db'))
  }
  const workDatabase = await copyOfTemplate(true)
  const scratch = path.dirname(workDatabase)
  const work = await mkdtemp(path.join(scratch, 'gatehouse-cli-'))
  t.teardown(() => rm(work, { recursive: true, force: true }))
  await placeDatabase(workDatabase, work)
  await writeFile(path.join(work, 'gateway.yml'), config())
  const elsewhere = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-cli-cwd-'))
  t.teardown(() => rm(elsewhere, { recursive: true, force: true }))
  const inWork = { cwd: work }
  const keyFile = path.join(work, 'keys', 'identity-keys.json')

  // Commands that do not need the main database run alongside the ones that do (each of
  // those keeps one core busy opening PGlite); their results are checked at the end.
  const withoutDatabase = (async () => {
    const bad = path.join(elsewhere, 'bad.yml')
    await writeFile(
      bad,
      config((raw) => {
        raw.server.port = 'eighty'
        raw.server.colour = 'blue'
        raw.sessions = { idle_timeout: 'forever' }
      }),
    )
    // `fresh`: no key file yet, and an unmigrated database of its own for `migrate`.
    const fresh = await mkdtemp(path.join(scratch, 'gatehouse-cli-fresh-'))
    t.teardown(() => rm(fresh, { recursive: true, force: true }))
    await placeDatabase(await copyOfTemplate(false), fresh)
    await writeFile(path.join(fresh, 'gateway.yml'), config())
    const migrations = (async () => [await run(['migrate'], { cwd: fresh }), await run(['migrate'], { cwd: fresh })])()

    return Promise.all([
      run(['check-config'], inWork),
      run(['check-config'], { cwd: elsewhere, env: { GATEHOUSE_CONFIG: path.join(work, 'gateway.yml') } }),
      run(['check-config', '--config', path.join(work, 'gateway.yml')], { cwd: elsewhere, env: { GATEHOUSE_CONFIG: bad } }),
      run(['check-config', '--config', bad], inWork),
      run(['frobnicate'], inWork),
      run(['user', 'create', '--name', 'No Email'], inWork),
      run(['explain', '--method', 'GET', '--path', '/app/x'], inWork),
      run(['explain', '--method', 'GET', '--path', '/app/x', '--email', ADMIN, '--anonymous'], inWork),
      run(['explain', '--method', 'GET', '--path', '/app/x?q=1', '--anonymous'], inWork),
      run(['explain', '--method', 'GET', '--path', '/public/..%2Fadmin/x', '--anonymous'], inWork),
      run(['explain', '--method', 'GET', '--path', '/public//../admin/x', '--anonymous'], inWork),
      run(['keys', 'rotate'], { cwd: fresh }),
    ]).then(async (results) => ({ results, fresh, migrations: await migrations }))
  })()
  // Checked in the last subtest; a rejection before then must not go unhandled.
  withoutDatabase.catch(() => {})

  await t.test('user create', async (t) => {
    const admin = await run(['user', 'create', '--email', ADMIN, '--role', 'admin', '--password-stdin'], { ...inWork, input: `${PASSWORD}\n` })
    t.equal(admin.code, 0, 'an admin with a piped password: 0', { stderr: admin.stderr })
    t.equal(admin.stderr, '')
    const viewer = await run(['user', 'create', '--email', VIEWER, '--name', 'Vi', '--password-stdin'], { ...inWork, input: PASSWORD })
    t.equal(viewer.code, 0, 'a user with the default roles: 0', { stderr: viewer.stderr })

    const duplicate = await run(['user', 'create', '--email', ` ${ADMIN.toUpperCase()} `, '--password-stdin'], { ...inWork, input: PASSWORD })
    t.equal(duplicate.code, 1, 'the same email (trimmed, any case): 1')
    t.ok(duplicate.stderr.trim(), 'with a message on stderr')
    t.equal(duplicate.stdout, '')
    const short = await run(['user', 'create', '--email', 'short@example.com', '--password-stdin'], { ...inWork, input: 'too short' })
    t.equal(short.code, 1, 'a password under min_length: 1')
    t.ok(short.stderr.trim())
  })

  let adminToken = ''
  await t.test('token create prints only the token', async (t) => {
    const created = await run(['token', 'create', '--email', ADMIN, '--name', 'ci'], inWork)
    t.equal(created.code, 0, 'token create: 0', { stderr: created.stderr })
    t.match(created.stdout, PAT_LINE, 'stdout is one line: the token and nothing else')
    adminToken = created.stdout.trim()

    const lacking = await run(['token', 'create', '--email', VIEWER, '--name', 'ci', '--permission', 'app:write'], inWork)
    t.equal(lacking.code, 1, 'a permission the owner lacks: 1')
    t.equal(lacking.stdout, '', 'and no token')
    t.ok(lacking.stderr.trim())
    const badDays = await run(['token', 'create', '--email', VIEWER, '--name', 'ci', '--expires-days', 'soon'], inWork)
    t.equal(badDays.code, 2, '--expires-days soon: bad usage')
    t.equal(badDays.stdout, '')
  })

  await t.test('explain for a user', async (t) => {
    const viewer = await run(['explain', '--method', 'GET', '--path', '/admin/x', '--email', VIEWER], inWork)
    t.equal(viewer.code, 0, { stderr: viewer.stderr })
    t.match(viewer.stdout, /\badmin\b/, 'the route')
    t.match(viewer.stdout, /\/admin\/x/, 'the normalised path')
    t.match(viewer.stdout, /admin:access/, 'the permission needed')
    t.match(viewer.stdout, /\bdeny\b/i, 'a viewer: deny')
    t.match(viewer.stdout, /missing[^\n]*admin:access/i, 'naming the missing permission')
    const admin = await run(['explain', '--method', 'GET', '--path', '/admin/x', '--email', ADMIN], inWork)
    t.equal(admin.code, 0, { stderr: admin.stderr })
    t.match(admin.stdout, /\ballow\b/i, 'an admin: allow')
    t.notMatch(admin.stdout, /\bdeny\b/i)
  })

  await t.test('user set-roles and disable, then user list (via $GATEHOUSE_CONFIG)', async (t) => {
    const unknownRole = await run(['user', 'set-roles', '--email', VIEWER, '--role', 'superuser'], inWork)
    t.equal(unknownRole.code, 1, 'an unknown role: 1')
    t.ok(unknownRole.stderr.trim())
    const noRole = await run(['user', 'set-roles', '--email', VIEWER], inWork)
    t.equal(noRole.code, 2, 'no --role at all: bad usage')
    const promoted = await run(['user', 'set-roles', '--email', VIEWER, '--role', 'operator', '--role', 'viewer'], inWork)
    t.equal(promoted.code, 0, 'set-roles: 0', { stderr: promoted.stderr })
    const disabled = await run(['user', 'disable', '--email', VIEWER], inWork)
    t.equal(disabled.code, 0, 'disable: 0', { stderr: disabled.stderr })

    const list = await run(['user', 'list'], { cwd: elsewhere, env: { GATEHOUSE_CONFIG: path.join(work, 'gateway.yml') } })
    t.equal(list.code, 0, 'user list: 0', { stderr: list.stderr })
    const rows = lines(list.stdout)
    const row = (email: string) => rows.find((line) => line.split(/\s+/).includes(email))
    t.match(row(ADMIN), /\badmin\b/, 'the admin, with role admin')
    t.match(row(ADMIN), /\bfalse\b/, 'not disabled')
    t.match(row(VIEWER), /operator/, 'the viewer, with the new roles')
    t.match(row(VIEWER), /\btrue\b/, 'shown disabled')
    t.notOk(row('short@example.com'), 'the refused user was not created')
    t.equal(rows.filter((line) => line.includes(ADMIN)).length, 1, 'the duplicate was not created')
    t.notMatch(list.stdout, /\$argon2/, 'no password hashes')
  })

  await t.test('keys rotate: a new current kid; the old one stays published', async (t) => {
    const before = await KeyRing.open(keyFile, { clock: systemClock, assertionTtlMs: 60_000 })
    const rotated = await run(['keys', 'rotate'], inWork)
    t.equal(rotated.code, 0, { stderr: rotated.stderr })
    const after = await KeyRing.open(keyFile, { clock: systemClock, assertionTtlMs: 60_000 })
    t.not(after.current.kid, before.current.kid, 'the current kid changed')
    const kids = after.publicJwks().keys.map((key) => key.kid)
    t.ok(kids.includes(before.current.kid) && kids.includes(after.current.kid), 'both are published')
  })

  await t.test('while serve holds the embedded database, other commands refuse; SIGTERM exits 0', async (t) => {
    const server = await serve(t, work)
    const listed = await run(['user', 'list'], inWork)
    t.equal(listed.code, 1, 'user list while the gateway runs: 1')
    t.match(listed.stderr, /in use/i, 'the database is in use')
    t.equal(listed.stdout, '', 'nothing on stdout')

    // What the CLI made works through the gateway it serves.
    const login = async (email: string) =>
      fetch(`${server.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: PASSWORD }),
      })
    t.equal((await login(ADMIN)).status, 200, 'the admin created with --password-stdin logs in')
    t.equal((await login(VIEWER)).status, 401, 'the user disabled by the CLI cannot')
    const me = await fetch(`${server.url}/auth/me`, { headers: { authorization: `Bearer ${adminToken}` } })
    t.equal(me.status, 200, 'the token printed by token create authenticates')
    t.same(((await me.json()) as { auth: { method: string } }).auth.method, 'pat')
    const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }
    const current = (await KeyRing.open(keyFile, { clock: systemClock, assertionTtlMs: 60_000 })).current.kid
    t.ok(jwks.keys.some((key) => key.kid === current), 'the served JWKS has the rotated kid')

    const exited = once(server.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
    server.child.kill('SIGTERM')
    const [code, signal] = await exited
    t.equal(code, 0, 'serve exits 0 on SIGTERM', { output: server.output().slice(-2000) })
    t.equal(signal, null)
  })

  await t.test('check-config, usage errors, explain --anonymous, migrate and keys rotate (run alongside the rest)', async (t) => {
    const {
      results: [ok, viaEnv, viaFlag, broken, unknown, missingOption, neither, both, anonymous, refused, normalised, rotated],
      fresh,
      migrations: [first, second],
    } = await withoutDatabase
    t.equal(ok.code, 0, 'check-config of ./gateway.yml: 0')
    t.equal(ok.stderr, '')
    t.equal(viaEnv.code, 0, 'from $GATEHOUSE_CONFIG: 0')
    t.equal(viaFlag.code, 0, '--config wins over $GATEHOUSE_CONFIG')

    t.equal(broken.code, 1, 'a config with 3 mistakes: 1')
    const problems = lines(broken.stderr)
    t.equal(problems.length, 3, 'one line per mistake', { stderr: broken.stderr })
    for (const [key, line] of ['server.colour', 'server.port', 'sessions.idle_timeout'].map((key) => [key, problems.find((l) => l.startsWith(`${key}:`))])) {
      t.ok(line, `a line starting with ${key}:`, { stderr: broken.stderr })
    }
    t.equal(broken.stdout, '', 'nothing on stdout')

    for (const [what, result] of [
      ['an unknown command', unknown],
      ['a missing required option', missingOption],
      ['explain with neither --email nor --anonymous', neither],
      ['explain with both', both],
    ] as const) {
      t.equal(result.code, 2, `${what}: 2`, { stderr: result.stderr })
      t.ok(result.stderr.trim(), `${what}: says so on stderr`)
      t.equal(result.stdout, '', `${what}: nothing on stdout`)
    }

    t.equal(anonymous.code, 0, 'explain --anonymous: 0')
    t.match(anonymous.stdout, /\bapp\b/, 'names the route')
    t.match(anonymous.stdout, /\/app\/x/, 'the normalised path')
    t.match(anonymous.stdout, /app:read/, 'its permissions')
    t.match(anonymous.stdout, /\bdeny\b/i, 'deny')
    t.match(anonymous.stdout, /unauthenticated|no_credential|401/i, 'because there is no credential')
    t.notMatch(anonymous.stdout, /\ballow\b/i)

    t.equal(refused.code, 0, 'explain of a bypass path: 0')
    t.match(refused.stdout, /refused|400|GH_BAD_PATH/i, 'an encoded slash is refused')
    t.notMatch(refused.stdout, /\ballow\b|proxied/i, 'never proxied')
    t.equal(normalised.code, 0)
    t.match(normalised.stdout, /\/admin\/x/, '/public//../admin/x is judged as /admin/x')
    t.match(normalised.stdout, /admin:access/, 'under the admin route’s permissions')
    t.match(normalised.stdout, /\bdeny\b/i)

    t.equal(first?.code, 0, 'migrate: 0', { stderr: first?.stderr })
    t.notMatch(first?.stdout, /up to date/i, 'the first run applies migrations')
    t.equal(second?.code, 0, 'migrate again: 0')
    t.match(second?.stdout, /up to date/i, 'the second says the database is up to date')

    t.equal(rotated.code, 0, 'keys rotate without a key file: 0', { stderr: rotated.stderr })
    const created = await KeyRing.open(path.join(fresh, 'keys', 'identity-keys.json'), { clock: systemClock, assertionTtlMs: 60_000 })
    t.ok(created.current.kid, 'it created the key file')
  })
})
