/**
 * SPEC §8: start-up failures name the component and the key. The real `gatehouse serve`
 * runs as a process against each failure: PostgreSQL and Redis that do not answer, the
 * public and metrics ports already taken, a certificate without its key or with another
 * certificate's key, and a broken identity key file. Each exits 1 with one line on stderr
 * that starts with the key path, never shows a password from a URL, and writes nothing but
 * JSON on stdout.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import yaml from 'js-yaml'
import t, { type Test } from 'tap'

import { ensureDevCertificate } from '../src/dev-certificate.js'
import { databaseBackends } from './helpers/backends.js'
import type { RawConfig } from './helpers/gateway.js'
import { freePort } from './helpers/private-redis.js'

const BIN = fileURLToPath(new URL('../src/bin.js', import.meta.url))
/** A password with every character that would break a URL, spliced in with |url. */
const SECRET = 'Pw@/:?#-start-up-secret-7f3a'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

async function serve(dir: string, env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [BIN, 'serve'], {
    cwd: dir,
    env: { ...process.env, GATEHOUSE_CONFIG: join(dir, 'gateway.yml'), SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // A start that fails must fail by itself; one that runs is stopped (and the test fails below).
  const timer = setTimeout(() => child.kill('SIGTERM'), 60_000)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const [code] = (await once(child, 'close')) as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** A port nothing listens on (taken from the system, then released). */
async function closedPort(): Promise<number> {
  return freePort()
}

async function occupy(t: Test): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as { port: number }).port
}

// PostgreSQL when the machine has it (it starts faster than PGlite), else PGlite.
const database = databaseBackends().at(-1)!

async function workDir(t: Test, configure: (raw: RawConfig) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-startup-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const raw: RawConfig = {
    server: { host: '127.0.0.1', port: 0 },
    storage: { database: await database.url(t), sessions: 'memory' },
    identity: { signing_key_file: join(dir, 'keys', 'identity-keys.json') },
    roles: { viewer: ['app:read'], admin: ['*'] },
    routes: [{ name: 'app', match: '/app', upstream: 'http://127.0.0.1:9', permissions: ['app:read'] }],
    metrics: { host: '127.0.0.1', port: 0 },
    logging: { level: 'info' },
  }
  configure(raw)
  await writeFile(join(dir, 'gateway.yml'), yaml.dump(raw))
  return dir
}

function expectFailure(t: Test, run: Run, line: RegExp): void {
  t.equal(run.code, 1, `exit 1\n${run.stderr}`)
  t.match(run.stderr, line, 'one line naming the key')
  t.equal(run.stderr.trimEnd().split('\n').length, 1, 'and nothing else on stderr')
  t.notMatch(run.stdout + run.stderr, /start-up-secret/, 'no password anywhere')
  for (const text of run.stdout.split('\n').filter((l) => l !== '')) {
    t.doesNotThrow(() => JSON.parse(text), `stdout holds JSON only: ${text.slice(0, 80)}`)
  }
}

t.test('storage.database: PostgreSQL not answering', async (t) => {
  const port = await closedPort()
  const dir = await workDir(t, (raw) => {
    raw.storage.database = `postgres://gatehouse:\${SECRET|url}@127.0.0.1:${port}/gatehouse`
  })
  const run = await serve(dir)
  expectFailure(t, run, new RegExp(`^storage\\.database: cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)\\n$`))
})

t.test('storage.sessions: Redis not answering', async (t) => {
  const port = await closedPort()
  const dir = await workDir(t, (raw) => {
    raw.storage.sessions = `redis://:\${SECRET|url}@127.0.0.1:${port}/0`
  })
  const run = await serve(dir)
  expectFailure(t, run, new RegExp(`^storage\\.sessions: cannot connect to Redis at 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)\\n$`))
})

t.test('server.port and metrics.port already in use', async (t) => {
  const taken = await occupy(t)
  const publicTaken = await serve(await workDir(t, (raw) => (raw.server.port = taken)))
  expectFailure(t, publicTaken, new RegExp(`^server\\.port: cannot listen on 127\\.0\\.0\\.1:${taken} \\(EADDRINUSE\\)\\n$`))
  const metricsTaken = await serve(await workDir(t, (raw) => (raw.metrics.port = taken)))
  expectFailure(t, metricsTaken, new RegExp(`^metrics\\.port: cannot listen on 127\\.0\\.0\\.1:${taken} \\(EADDRINUSE\\)\\n$`))
})

t.test('server.tls.cert and server.tls.key: a file missing, or a key of another certificate', async (t) => {
  const dir = await workDir(t, (raw) => (raw.server.tls = { cert: 'tls/tls.crt', key: 'tls/tls.key' }))
  await ensureDevCertificate(join(dir, 'other', 'tls.crt'), join(dir, 'other', 'tls.key'))
  await ensureDevCertificate(join(dir, 'tls', 'tls.crt'), join(dir, 'tls', 'tls.key'))
  await rm(join(dir, 'tls', 'tls.key'))
  expectFailure(t, await serve(dir), /^server\.tls\.key: cannot read .*tls\.key \(ENOENT: no such file\) while .*tls\.crt exists/)

  await writeFile(join(dir, 'tls', 'tls.key'), await readFile(join(dir, 'other', 'tls.key')))
  expectFailure(t, await serve(dir), /^server\.tls\.key: .*tls\.key does not belong to the certificate .*tls\.crt/)
})

t.test('identity.signing_key_file: a broken key file', async (t) => {
  const dir = await workDir(t, (raw) => (raw.identity.signing_key_file = 'identity-keys.json'))
  await writeFile(join(dir, 'identity-keys.json'), '{"keys": [')
  expectFailure(t, await serve(dir), /^identity\.signing_key_file: identity key file .*identity-keys\.json is malformed: not valid JSON/)
})
