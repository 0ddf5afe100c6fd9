/**
 * The built `gatehouse` command as a real process (SPEC §8): `node dist/src/bin.js …` in a
 * temporary directory holding a gateway.yml and its embedded database. Exit codes (0 ok,
 * 1 failure, 2 bad usage), stdout for results, stderr for errors; every operator command
 * against a running `serve` through its control socket; and `serve` stopping with 0 on SIGTERM.
 */
import { once } from 'node:events'
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import yaml from 'js-yaml'
import t from 'tap'
import { systemClock } from '../src/core/clock.js'
import { KeyRing } from '../src/core/identity-keys.js'
import { databaseBackends } from './helpers/backends.js'
import { lines, PAT_LINE, run, serve, type Run } from './helpers/cli-process.js'
import type { RawConfig } from './helpers/gateway.js'

const PASSWORD = 'correct horse battery staple'
const ADMIN = 'admin@example.com'
const VIEWER = 'viewer@example.com'

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
    // info: the control socket's command lines are checked (and that no password is among them).
    logging: { level: 'info' },
  }
  overrides(raw)
  return yaml.dump(raw)
}

// Some forty node processes, most opening PGlite one after another: minutes on a loaded machine.
t.setTimeout(900_000)

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

  await t.test('while serve holds the embedded database, every command goes through its control socket; SIGTERM exits 0', async (t) => {
    const server = await serve(t, work)
    const socketPath = path.join(work, 'data', 'db.control', 'gatehouse.sock')
    t.equal((await stat(socketPath)).mode & 0o777, 0o600, 'the control socket is 0600')
    t.equal((await stat(path.dirname(socketPath))).mode & 0o777, 0o700, 'in a 0700 directory')
    const ok = (result: Run, what: string) => t.equal(result.code, 0, what, { stderr: result.stderr })

    const listed = await run(['user', 'list', '--json'], inWork)
    ok(listed, 'user list --json while the gateway runs: 0')
    const users = JSON.parse(listed.stdout) as { email: string; disabled: boolean; roles: string[] }[]
    t.match(users.find((u) => u.email === ADMIN), { roles: ['admin'], disabled: false }, 'the admin, as JSON')
    t.match(users.find((u) => u.email === VIEWER), { disabled: true })

    // What the CLI made works through the gateway it serves.
    const login = async (email: string, password = PASSWORD) =>
      fetch(`${server.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
      })
    t.equal((await login(ADMIN)).status, 200, 'the admin created with --password-stdin logs in')
    t.equal((await login(VIEWER)).status, 401, 'the user disabled by the CLI cannot')
    const me = await fetch(`${server.url}/auth/me`, { headers: { authorization: `Bearer ${adminToken}` } })
    t.equal(me.status, 200, 'the token printed by token create authenticates')
    t.same(((await me.json()) as { auth: { method: string } }).auth.method, 'pat')
    const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] }
    const current = (await KeyRing.open(keyFile, { clock: systemClock, assertionTtlMs: 60_000 })).current.kid
    t.ok(jwks.keys.some((key) => key.kid === current), 'the served JWKS has the rotated kid')

    // Users, while it runs.
    const NEW_PASSWORD = 'a freshly reset passphrase'
    const BOT = 'bot@example.com'
    ok(await run(['user', 'enable', '--email', VIEWER], inWork), 'user enable')
    ok(await run(['user', 'reset-password', '--email', VIEWER, '--password-stdin'], { ...inWork, input: `${NEW_PASSWORD}\n` }), 'user reset-password')
    t.equal((await login(VIEWER, PASSWORD)).status, 401, 'the old password no longer works')
    t.equal((await login(VIEWER, NEW_PASSWORD)).status, 200, 'the enabled user logs in with the new password')
    const resetMfa = await run(['user', 'reset-mfa', '--email', VIEWER], inWork)
    ok(resetMfa, 'user reset-mfa, through the control socket')
    t.match(resetMfa.stdout, /^viewer@example\.com: had no second factor, \d+ session\(s\) ended\n$/)
    ok(await run(['user', 'create', '--email', BOT, '--no-password', '--role', 'operator'], inWork), 'user create --no-password')
    t.equal((await login(BOT, PASSWORD)).status, 401, 'a user without a password has none to log in with')
    const noChoice = await run(['user', 'create', '--email', 'x@example.com'], inWork)
    t.equal(noChoice.code, 2, 'user create without --password-stdin or --no-password: bad usage')
    const both = await run(['user', 'create', '--email', 'x@example.com', '--password-stdin', '--no-password'], { ...inWork, input: PASSWORD })
    t.equal(both.code, 2, 'user create with both: bad usage')
    t.equal((await run(['user', 'reset-password', '--email', VIEWER], inWork)).code, 2, 'reset-password without --password-stdin: bad usage')

    // Tokens, while it runs: an automation token reaches the admin API; revoked, it stops at once.
    const automation = await run(['token', 'create', '--email', ADMIN, '--name', 'automation', '--permission', 'users:manage'], inWork)
    ok(automation, 'token create --permission users:manage')
    t.match(automation.stdout, PAT_LINE, 'only the token on stdout')
    const pat = automation.stdout.trim()
    const adminUsers = async () => (await fetch(`${server.url}/auth/admin/users`, { headers: { authorization: `Bearer ${pat}` } })).status
    t.equal(await adminUsers(), 200, 'the automation token lists users')
    const unknown = await run(['token', 'create', '--email', ADMIN, '--name', 'typo', '--permission', 'app:raed'], inWork)
    t.equal(unknown.code, 1, 'a permission no role grants: 1')
    t.match(unknown.stderr, /app:raed/, 'named on stderr')
    t.equal(unknown.stdout, '', 'and no token')
    const tokens = await run(['token', 'list', '--email', ADMIN, '--json'], inWork)
    ok(tokens, 'token list --json')
    const listedTokens = JSON.parse(tokens.stdout) as { id: string; name: string; token: string; permissions: string[] | null }[]
    const listedAutomation = listedTokens.find((p) => p.name === 'automation')
    t.match(listedAutomation, { token: `${pat.slice(0, 8)}…${pat.slice(-4)}`, permissions: ['users:manage'] }, 'masked, with its permissions')
    t.notOk(tokens.stdout.includes(pat), 'never the token itself')
    const table = await run(['token', 'list', '--email', ADMIN], inWork)
    ok(table, 'token list')
    t.match(table.stdout, /automation/)
    ok(await run(['token', 'revoke', '--id', listedAutomation!.id], inWork), 'token revoke')
    t.equal(await adminUsers(), 401, 'the revoked token is refused at once by the running gateway')
    t.equal((await run(['token', 'revoke', '--id', listedAutomation!.id], inWork)).code, 1, 'revoking it again: 1')

    // The audit trail, while it runs.
    const audit = await run(['audit', 'list', '--email', ADMIN, '--type', 'token', '--json'], inWork)
    ok(audit, 'audit list --json')
    const events = JSON.parse(audit.stdout) as { type: string; email: string }[]
    t.same(events.slice(0, 2).map((e) => e.type), ['token.revoked', 'token.created'], 'newest first')
    t.ok(events.every((e) => e.email === ADMIN && e.type.startsWith('token.')), 'filtered')
    const failures = await run(['audit', 'list', '--type', 'login.failed', '--limit', '1'], inWork)
    ok(failures, 'audit list as a table')
    t.equal(lines(failures.stdout).length, 2, 'a header and one event')
    t.match(failures.stdout, /no_password/, 'with the reason (the password-less user’s attempt)')
    t.equal((await run(['audit', 'list', '--limit', '0'], inWork)).code, 2, '--limit 0: bad usage')

    // And the rest.
    ok(await run(['user', 'delete', '--email', BOT], inWork), 'user delete')
    const again = await run(['user', 'delete', '--email', BOT], inWork)
    t.equal(again.code, 1, 'deleting a user who is gone: 1')
    t.match(again.stderr, /no user/)
    const explained = await run(['explain', '--method', 'GET', '--path', '/admin/x', '--email', ADMIN], inWork)
    ok(explained, 'explain --email')
    t.match(explained.stdout, /\ballow\b/i)
    const migrated = await run(['migrate'], inWork)
    ok(migrated, 'migrate')
    t.match(migrated.stdout, /up to date/)
    t.notOk(server.output().includes(NEW_PASSWORD), 'the gateway never logs a password it was sent')
    t.match(server.output(), /control socket command/, 'it logs the commands it ran')

    const exited = once(server.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
    server.child.kill('SIGTERM')
    const [code, signal] = await exited
    t.equal(code, 0, 'serve exits 0 on SIGTERM', { output: server.output().slice(-2000) })
    t.equal(signal, null)
    await t.rejects(stat(socketPath), { code: 'ENOENT' }, 'and removes its control socket')
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
