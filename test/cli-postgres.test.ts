/**
 * The CLI as real processes against PostgreSQL (SPEC §8), next to a running `gatehouse serve`
 * on the same database and a private Redis: no lock and no control socket, the commands open
 * the database themselves; what they change reaches the running gateway (a revoked token on
 * the invalidation channel within a second).
 */
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import yaml from 'js-yaml'
import t from 'tap'
import { databaseBackends, requireBackends } from './helpers/backends.js'
import { PAT_LINE, run, serve, type Run } from './helpers/cli-process.js'
import { haveRedisServer, startPrivateRedis } from './helpers/private-redis.js'

const PASSWORD = 'correct horse battery staple'
const ADMIN = 'admin@example.com'
const BOT = 'bot@example.com'

const postgres = databaseBackends().find((backend) => backend.name === 'postgres')
if (postgres === undefined && requireBackends()) throw new Error('GATEHOUSE_REQUIRE_BACKENDS=1 but TEST_DATABASE_URL is not set')
const redisServer = haveRedisServer('the CLI test against PostgreSQL')
// A dozen node processes one after another: minutes on a loaded machine.
t.setTimeout(300_000)

t.test(
  'the gatehouse command with PostgreSQL, while serve runs',
  { skip: postgres === undefined ? 'TEST_DATABASE_URL is not set' : !redisServer && 'redis-server is not on PATH' },
  async (t) => {
    const database = await postgres!.url(t, { migrated: false })
    const redis = await startPrivateRedis(t)
    const work = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-cli-pg-'))
    t.teardown(() => rm(work, { recursive: true, force: true }))
    await writeFile(
      path.join(work, 'gateway.yml'),
      yaml.dump({
        server: { host: '127.0.0.1', port: 0, public_url: 'https://gatehouse.test' },
        storage: { database, sessions: redis.url },
        identity: { signing_key_file: './keys/identity-keys.json' },
        auth: { argon2: { memory_kib: 8192, time_cost: 1, parallelism: 1 }, password: { min_length: 15 } },
        roles: { viewer: ['app:read'], admin: ['*'] },
        default_roles: ['viewer'],
        routes: [{ name: 'app', match: '/app', upstream: 'http://127.0.0.1:9', auth: 'required', permissions: ['app:read'] }],
        metrics: { port: 0 },
        logging: { level: 'warn' },
      }),
    )
    const inWork = { cwd: work }
    const ok = (result: Run, what: string) => t.equal(result.code, 0, what, { stderr: result.stderr })

    const migrated = await run(['migrate'], inWork)
    ok(migrated, 'migrate')
    t.notMatch(migrated.stdout, /up to date/, 'applied the migrations')
    const server = await serve(t, work)
    t.teardown(() => {
      if (server.child.exitCode === null) server.child.kill('SIGTERM')
    })

    ok(await run(['user', 'create', '--email', ADMIN, '--role', 'admin', '--password-stdin'], { ...inWork, input: PASSWORD }), 'user create')
    ok(await run(['user', 'create', '--email', BOT, '--no-password'], inWork), 'user create --no-password')
    const login = await fetch(`${server.url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: ADMIN, password: PASSWORD }),
    })
    t.equal(login.status, 200, 'the running gateway signs in the user the CLI created')

    const created = await run(['token', 'create', '--email', ADMIN, '--name', 'automation', '--permission', 'users:manage', '--expires-days', '7'], inWork)
    ok(created, 'token create')
    t.match(created.stdout, PAT_LINE, 'only the token on stdout')
    const pat = created.stdout.trim()
    const adminUsers = async () => (await fetch(`${server.url}/auth/admin/users`, { headers: { authorization: `Bearer ${pat}` } })).status
    t.equal(await adminUsers(), 200, 'an automation token of the CLI reaches the admin API')

    const listed = await run(['user', 'list', '--json'], inWork)
    ok(listed, 'user list --json')
    t.same((JSON.parse(listed.stdout) as { email: string }[]).map((u) => u.email).sort(), [ADMIN, BOT])
    ok(await run(['user', 'disable', '--email', BOT], inWork), 'user disable')
    ok(await run(['user', 'enable', '--email', BOT], inWork), 'user enable')
    ok(await run(['user', 'set-roles', '--email', BOT, '--role', 'admin'], inWork), 'user set-roles')

    const tokens = await run(['token', 'list', '--email', ADMIN, '--json'], inWork)
    ok(tokens, 'token list --json')
    const [token] = JSON.parse(tokens.stdout) as { id: string; permissions: string[]; expires_at: string }[]
    t.match(token, { permissions: ['users:manage'], expires_at: /^\d{4}-/ })
    ok(await run(['token', 'revoke', '--id', token!.id], inWork), 'token revoke')
    // Another process revoked it: the gateway hears of it on the Redis channel.
    const deadline = Date.now() + 5_000
    let status = await adminUsers()
    while (status === 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      status = await adminUsers()
    }
    t.equal(status, 401, 'the running gateway refuses the token the CLI revoked')

    const audit = await run(['audit', 'list', '--json', '--email', BOT], inWork)
    ok(audit, 'audit list --json --email')
    t.same(
      (JSON.parse(audit.stdout) as { type: string }[]).map((e) => e.type),
      ['user.roles_changed', 'user.enabled', 'user.disabled', 'user.registered'],
      "the bot's trail, newest first",
    )
    ok(await run(['user', 'delete', '--email', BOT], inWork), 'user delete')
    t.equal((await run(['user', 'delete', '--email', BOT], inWork)).code, 1, 'again: 1')

    const exited = once(server.child, 'exit')
    server.child.kill('SIGTERM')
    t.same((await exited)[0], 0, 'serve exits 0')
  },
)
