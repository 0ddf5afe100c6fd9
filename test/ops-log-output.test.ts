/**
 * SPEC §2 `logging`, as an operator piping `gatehouse serve` into jq sees it: the real
 * process, its stdout read line by line. Every line is JSON with an ISO 8601 `time` and the
 * level by name; the human-readable banner is on stderr; `logging.level: debug` adds the
 * stores it connected to, each route decision and what a reload changed; a failed login is
 * logged with its reason (unknown_email, wrong_password, disabled, locked) and never with
 * the password. `logging.format: pretty` writes human-readable lines instead.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import yaml from 'js-yaml'
import t, { type Test } from 'tap'
import { request } from 'undici'

import { isoTime } from '../src/logging.js'
import { databaseBackends } from './helpers/backends.js'
import type { RawConfig } from './helpers/gateway.js'

const BIN = fileURLToPath(new URL('../src/bin.js', import.meta.url))
const PASSWORD = 'log-test-password-9d1c correct horse'
const WRONG = 'log-test-wrong-password-77ab battery'
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal']

interface Serving {
  child: ChildProcess
  url: string
  stdout: () => string
  stderr: () => string
  exited: Promise<number | null>
}

async function startUpstream(t: Test): Promise<string> {
  const server: Server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'text/plain' }).end('ok'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function serve(t: Test, configPath: string): Promise<Serving> {
  const env = { ...process.env }
  delete env.GATEHOUSE_CONFIG
  const child = spawn(process.execPath, [BIN, 'serve', '--config', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 60_000)
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      const found = /listening on (http:\/\/\S+)/.exec(stderr)
      if (found?.[1]) {
        clearTimeout(timer)
        resolve(found[1])
      }
    })
    void exited.then((code) => reject(new Error(`serve exited with ${code}: ${stderr}`)))
  })
  return { child, url, stdout: () => stdout, stderr: () => stderr, exited }
}

async function until(t: Test, what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(check(), what)
}

async function post(url: string, body: unknown): Promise<number> {
  const response = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await response.body.dump()
  return response.statusCode
}

const database = databaseBackends().at(-1)!

async function workDir(t: Test, upstream: string, logging: RawConfig): Promise<{ dir: string; raw: RawConfig; write: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-log-output-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const raw: RawConfig = {
    server: { host: '127.0.0.1', port: 0 },
    storage: { database: await database.url(t), sessions: 'memory' },
    identity: { signing_key_file: join(dir, 'identity-keys.json') },
    auth: {
      argon2: { memory_kib: 8192, time_cost: 1, parallelism: 1 },
      lockout: { max_failures: 2, window: '15m' },
      login_rate_limit: { max: 1000, window: '1m' },
    },
    roles: { viewer: ['app:read'], admin: ['*'] },
    default_roles: ['viewer', 'admin'],
    routes: [{ name: 'app', match: '/app', upstream, permissions: ['app:read'] }],
    metrics: { host: '127.0.0.1', port: 0 },
    logging,
  }
  const write = () => writeFile(join(dir, 'gateway.yml'), yaml.dump(raw))
  await write()
  return { dir, raw, write }
}

t.test('gatehouse serve at logging.level debug: JSON lines only on stdout, with the details an operator needs', async (t) => {
  const upstream = await startUpstream(t)
  const work = await workDir(t, upstream, { level: 'debug', format: 'json' })
  const gateway = await serve(t, join(work.dir, 'gateway.yml'))
  t.match(gateway.stderr(), /Gatehouse .* is listening on http:\/\/127\.0\.0\.1:\d+\n/, 'the banner is on stderr')

  const ids = new Map<string, string>()
  for (const email of ['ok@example.com', 'off@example.com', 'lock@example.com']) {
    const registered = await request(`${gateway.url}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    })
    t.equal(registered.statusCode, 201, `registered ${email}`)
    ids.set(email, ((await registered.body.json()) as { id: string }).id)
  }
  const session = await request(`${gateway.url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'ok@example.com', password: PASSWORD }),
  })
  const { token } = (await session.body.json()) as { token: string }
  // Everyone registered here is an admin (default_roles), so ok@ can disable off@.
  const disabled = await request(`${gateway.url}/auth/admin/users/${ids.get('off@example.com')}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ disabled: true }),
  })
  await disabled.body.dump()
  t.equal(disabled.statusCode, 200, 'off@example.com disabled')

  const login = (email: string, password: string) => post(`${gateway.url}/auth/login`, { email, password })
  t.equal(await login('nobody@example.com', WRONG), 401)
  t.equal(await login('ok@example.com', WRONG), 401)
  t.equal(await login('off@example.com', PASSWORD), 401)
  t.equal(await login('not an email', WRONG), 401)
  t.equal(await login('lock@example.com', WRONG), 401)
  t.equal(await login('lock@example.com', WRONG), 401)
  t.equal(await login('lock@example.com', PASSWORD), 429, 'locked after two failures')

  const allowed = await request(`${gateway.url}/app/x`, { headers: { authorization: `Bearer ${token}` } })
  await allowed.body.dump()
  t.equal(allowed.statusCode, 200)
  const anonymous = await request(`${gateway.url}/app/x`)
  await anonymous.body.dump()
  t.equal(anonymous.statusCode, 401)

  work.raw.routes.push({ name: 'extra', match: '/extra', upstream, auth: 'public' })
  await work.write()
  gateway.child.kill('SIGHUP')
  await until(t, 'the reload is logged', () => gateway.stdout().includes('reloaded the configuration'))
  gateway.child.kill('SIGTERM')
  t.equal(await gateway.exited, 0, 'exits 0 on SIGTERM')

  const text = gateway.stdout()
  const lines = text.split('\n').filter((line) => line !== '')
  t.ok(lines.length > 10, `${lines.length} lines`)
  const parsed: Array<Record<string, unknown>> = []
  for (const line of lines) {
    try {
      parsed.push(JSON.parse(line) as Record<string, unknown>)
    } catch {
      t.fail(`not JSON: ${line.slice(0, 120)}`)
    }
  }
  t.equal(parsed.length, lines.length, 'every stdout line is JSON')
  t.ok(parsed.every((line) => typeof line.time === 'string' && ISO_TIME.test(line.time)), 'every line has an ISO 8601 time')
  t.ok(parsed.every((line) => LEVELS.includes(String(line.level))), 'every line names its level')
  t.notMatch(text, /log-test-(wrong-)?password/, 'no password, right or wrong, is logged')
  t.notMatch(text, new RegExp(token), 'no session token is logged')

  const byMessage = (msg: string) => parsed.filter((line) => line.msg === msg)
  const failures = byMessage('login failed')
  t.same(failures.map((line) => [line.reason, line.email ?? null]), [
    ['unknown_email', 'nobody@example.com'],
    ['wrong_password', 'ok@example.com'],
    ['disabled', 'off@example.com'],
    ['invalid_email', null],
    ['wrong_password', 'lock@example.com'],
    ['wrong_password', 'lock@example.com'],
    ['locked', 'lock@example.com'],
  ], 'each failed login with its reason; a malformed email is not logged')
  t.ok(failures.every((line) => line.level === 'info' && typeof line.reqId === 'string'), 'at info, with the request id')

  const stores = byMessage('stores connected')[0]
  const databaseShown = database.name === 'postgres' ? /^postgres(ql)?:\/\/[^@/]+:\d+$/ : /^embedded:\//
  t.match(stores, { level: 'debug', database: databaseShown, sessions: 'memory' }, 'the stores, without credentials')
  t.match(byMessage('configuration loaded')[0], { level: 'debug', routes: 1 })
  const decisions = byMessage('route decision')
  t.ok(decisions.some((line) => line.route === 'app' && line.outcome === 'allow' && line.auth_method === 'session' && line.upstream === upstream),
    'an allowed request: route, user, method and upstream')
  t.ok(decisions.some((line) => line.route === 'app' && line.outcome === 'unauthenticated'), 'a refused one, with its outcome')
  t.match(byMessage('configuration reload details')[0], { level: 'debug', changed: ['routes.extra (added)'], routes: 2 }, 'what the reload changed')
})

t.test('logging.format: pretty writes human-readable lines; level info leaves the debug lines out', async (t) => {
  const upstream = await startUpstream(t)
  const work = await workDir(t, upstream, { level: 'info', format: 'pretty' })
  const gateway = await serve(t, join(work.dir, 'gateway.yml'))
  await until(t, 'the listening line is written', () => gateway.stdout().includes('gatehouse is listening'))
  gateway.child.kill('SIGTERM')
  t.equal(await gateway.exited, 0)
  const lines = gateway.stdout().split('\n').filter((line) => line !== '')
  const listening = lines.find((line) => line.includes('gatehouse is listening'))
  t.match(listening, /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} [+-]\d{4}\] INFO: gatehouse is listening$/, 'time, level name and message')
  t.throws(() => JSON.parse(listening ?? ''), 'not JSON')
  t.notMatch(gateway.stdout(), /DEBUG|stores connected/, 'nothing below info')
})

t.test('the time field is pino\'s isoTime, made once per millisecond and never stale', async (t) => {
  for (let checked = 0; checked < 5;) {
    const before = Date.now()
    const field = isoTime()
    const again = isoTime()
    if (Date.now() !== before) continue // the millisecond turned meanwhile: try again
    t.equal(field, `,"time":"${new Date(before).toISOString()}"`)
    t.equal(again, field, 'the same millisecond, the same text')
    checked++
    await new Promise((resolve) => setTimeout(resolve, 3))
  }
})
