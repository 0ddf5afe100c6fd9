/**
 * The processes `npm run bench` measures, one server per process so that each has a core's
 * worth of event loop and its CPU time is its own: `upstream`, `bare` (Fastify +
 * @fastify/http-proxy) and `gateway` (the real gateway from startGateway, plain HTTP). The
 * upstream is also a WebSocket echo; the gateway's `/socket` route tunnels to it.
 * Each sends `{ ready, port, … }` over IPC once listening and answers `stats` with its CPU
 * time and resident memory.
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import proxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import { WebSocketServer } from 'ws'

export interface ProcessStats {
  cpuMicros: number
  rss: number
  /** V8's heap (JavaScript objects) and memory outside it (buffers, WebAssembly), in bytes. */
  heapTotal: number
  external: number
}

export type ReadyMessage = { ready: true; port: number; pat?: string; session?: string; loginEmail?: string; loginPassword?: string; database?: string }

function send(message: unknown): void {
  process.send?.(message)
}

process.on('message', (message) => {
  if (message === 'stats') {
    const cpu = process.cpuUsage()
    const memory = process.memoryUsage()
    send({ stats: { cpuMicros: cpu.user + cpu.system, rss: memory.rss, heapTotal: memory.heapTotal, external: memory.external } satisfies ProcessStats })
  }
})
process.on('disconnect', () => process.exit(0))
// An orderly exit, so that `--cpu-prof` writes its profile.
process.on('SIGTERM', () => process.exit(0))

const [kind = '', upstreamUrl = '', option = ''] = process.argv.slice(2)

if (kind === 'upstream') {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': '11' }).end('{"ok":true}')
  })
  server.keepAliveTimeout = 60_000
  // A WebSocket echo on the same port, for the round-trip measurement.
  const sockets = new WebSocketServer({ server })
  sockets.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })))
  server.listen(0, '127.0.0.1', () => send({ ready: true, port: (server.address() as AddressInfo).port }))
} else if (kind === 'bare') {
  const bare = Fastify({ logger: false })
  await bare.register(proxy, { upstream: upstreamUrl })
  await bare.listen({ host: '127.0.0.1', port: 0 })
  send({ ready: true, port: (bare.server.address() as AddressInfo).port })
} else if (kind === 'auth-responder') {
  // The minimal auth_request responder nginx is measured with: 200 and one identity header for
  // the expected bearer token, 401 otherwise. `option` is the token.
  const expected = `Bearer ${option}`
  const server = createServer((request, response) => {
    if (request.headers.authorization === expected) response.writeHead(200, { 'x-auth-user-id': 'bench', 'content-length': '0' }).end()
    else response.writeHead(401, { 'content-length': '0' }).end()
  })
  server.keepAliveTimeout = 60_000
  server.listen(0, '127.0.0.1', () => send({ ready: true, port: (server.address() as AddressInfo).port }))
} else if (kind === 'gateway') {
  // Imported here, so that the other processes (the bare proxy above all) load only what they use.
  const [{ default: yaml }, { loadConfig }, { permissionsFor }, { startGateway }] = await Promise.all([
    import('js-yaml'),
    import('../src/config/index.js'),
    import('../src/core/permissions.js'),
    import('../src/server.js'),
  ])
  // `option`: a comma-separated list of `unbound` (bind_to_request: false), `tls` (HTTPS with a
  // self-signed certificate made at start, HTTP/2 offered by ALPN), `redis` (sessions and
  // counters in Redis, BENCH_REDIS_URL) and `postgres` (a fresh database on BENCH_DATABASE_URL).
  const flags = new Set(option.split(',').filter(Boolean))
  const bind = !flags.has('unbound')
  const tls = flags.has('tls')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-bench-'))
  const database = flags.has('postgres') ? await freshDatabase() : `embedded:${path.join(dir, 'db')}`
  const sessions = flags.has('redis') ? (process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/0') : 'memory'
  const configPath = path.join(dir, 'gateway.yml')
  await writeFile(
    configPath,
    yaml.dump({
      server: {
        host: '127.0.0.1',
        port: 0,
        public_url: tls ? 'https://localhost' : 'http://localhost',
        ...(tls ? { tls: { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') }, http2: true } : {}),
      },
      storage: { database, sessions },
      identity: { signing_key_file: path.join(dir, 'identity-keys.json'), bind_to_request: bind },
      auth: { login_rate_limit: { max: 1_000_000, window: '1m' } },
      rate_limits: { generous: { max: 100_000_000, window: '1m', key: 'user' } },
      metrics: { port: 0 },
      forward_auth: { trusted: ['127.0.0.1/32'], headers: 'original' },
      logging: { level: process.env.BENCH_LOG_LEVEL ?? 'info' },
      routes: [
        { name: 'public', match: '/public', upstream: upstreamUrl, auth: 'public' },
        { name: 'pat', match: '/pat', upstream: upstreamUrl, auth: 'required', permissions: ['app:read'], rate_limit: 'generous' },
        { name: 'session', match: '/session', upstream: upstreamUrl, auth: 'required', permissions: ['app:read'] },
        // Forward auth (GET /auth/verify from nginx): the same checks as /pat, no upstream.
        { name: 'verified', match: '/verified', auth: 'required', permissions: ['app:read'], rate_limit: 'generous' },
        { name: 'socket', match: '/socket', upstream: upstreamUrl, auth: 'required', permissions: ['app:read'], websocket: true },
      ],
    }),
  )
  // The access log goes where a container's stdout would: written, then discarded.
  const gateway = await startGateway(await loadConfig(configPath))
  const { runtime } = gateway
  const loginEmail = 'bench@example.com'
  const loginPassword = 'a long enough bench passphrase'
  const user = await runtime.users.register({ email: loginEmail, password: loginPassword, name: null }, { roles: ['viewer'] })
  const { token: pat } = await runtime.pats.create({ id: user.id, permissions: permissionsFor(user.roles, gateway.config.roles) }, { name: 'bench' })
  const session = await runtime.sessions.create(user.id, { amr: 'pwd' })
  send({ ready: true, port: gateway.port, pat, session: session.token, loginEmail, loginPassword, ...(flags.has('postgres') ? { database } : {}) })
} else {
  process.stderr.write(`unknown bench process kind "${kind}"\n`)
  process.exit(2)
}

/** A new database on BENCH_DATABASE_URL's server, named after this process; run.ts drops it. */
async function freshDatabase(): Promise<string> {
  const admin = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
  const name = `gatehouse_bench_${process.pid}`
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: admin })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
  const url = new URL(admin)
  url.pathname = `/${name}`
  return url.toString()
}
