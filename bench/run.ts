/**
 * `npm run bench`: the gateway against a bare Fastify + @fastify/http-proxy, measured in the
 * same run. A minimal upstream, the bare proxy and two gateways (request-bound assertions and
 * `bind_to_request: false`) each run in their own process (bench/servers.ts); autocannon runs
 * in another, in interleaved rounds so that machine drift hits every target alike. Everything
 * is plain HTTP on loopback so that TLS does not hide the gateway's own cost.
 *
 * Per target: median requests/s (min–max over rounds), p50/p99 latency, the ratio to the bare
 * proxy and to the upstream, and the serving process's CPU microseconds per request (steadier
 * than requests/s on a machine with CPU steal). Then logins/s at the default argon2 parameters,
 * and the gateways' resident memory after the run.
 *
 * WebSockets: the round-trip time of one message at a time (send 32 bytes, wait for the echo)
 * on one socket through the gateway (PAT, `/socket`) next to one straight to the upstream's
 * echo, BENCH_WS_MESSAGES per round (default 2000), interleaved in the same rounds.
 *
 * Also, in the same rounds: a gateway on PostgreSQL and Redis (BENCH_DATABASE_URL, an account
 * that may CREATE DATABASE; BENCH_REDIS_URL), skipped when they do not answer; nginx with
 * `auth_request` to Gatehouse's /auth/verify beside nginx with a minimal responder, skipped
 * without nginx; and with BENCH_BASELINE=<another build's dist/bench/servers.js>, that build's
 * gateway ("before" rows).
 *
 * HTTP/2: the gateway on TLS with server.http2, loaded by a node:http2 client in this process
 * (autocannon speaks HTTP/1.1 only): requests/s over h2, upstream still HTTP/1.1.
 *
 * Env: BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (default 64), BENCH_ROUNDS (default 3),
 * BENCH_LOG_LEVEL (the gateways' logging.level, default info: one access line per request).
 * Results: bench/results/latest.{json,md}.
 */
import { execFile, spawn } from 'node:child_process'
import { connect as connectH2 } from 'node:http2'
import { once } from 'node:events'
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { connect as connectTcp } from 'node:net'
import path from 'node:path'
import os from 'node:os'
import { createRequire } from 'node:module'
import { promisify } from 'node:util'
import pg from 'pg'
import { freePort } from '../test/helpers/ports.js'
import { WebSocket } from 'ws'
import { startServer, type Server } from './processes.js'
import type { ProcessStats } from './servers.js'

const run = promisify(execFile)
const duration = Number(process.env.BENCH_DURATION ?? 10)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 64)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const wsMessages = Number(process.env.BENCH_WS_MESSAGES ?? 2000)
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js')

interface Sample {
  /** Socket errors seen by the load generator, and answers that were not 2xx. */
  errors: number
  non2xx: number
  requests: number
  rps: number
  p50: number
  p99: number
  cpuMicrosPerRequest: number
}

interface Load {
  url: string
  headers?: Record<string, string>
  method?: string
  body?: string
  connections?: number
}

async function autocannon(load: Load, server: Server): Promise<Sample> {
  const args = [AUTOCANNON, '-j', '-c', String(load.connections ?? connections), '-d', String(duration)]
  for (const [name, value] of Object.entries(load.headers ?? {})) args.push('-H', `${name}=${value}`)
  if (load.method) args.push('-m', load.method)
  if (load.body) args.push('-b', load.body)
  args.push(load.url)
  const before = await server.stats()
  const { stdout } = await run(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 })
  const after = await server.stats()
  const result = JSON.parse(stdout) as {
    requests: { average: number; total: number }
    latency: { p50: number; p99: number }
    non2xx: number
    errors: number
    statusCodeStats?: Record<string, { count: number }>
  }
  // Every answer should be a 2xx: anything else is counted with its status and shown beside the
  // figures (a run is not thrown away for it, since a refusal under load is itself a finding).
  const refused = Object.entries(result.statusCodeStats ?? {}).filter(([code]) => !code.startsWith('2'))
  if (result.non2xx > 0 || result.errors > 0) {
    process.stderr.write(`\nbench: ${load.url}: ${result.non2xx} non-2xx (${refused.map(([c, v]) => `${c}×${v.count}`).join(', ')}), ${result.errors} socket errors\n`)
  }
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuMicrosPerRequest: (after.cpuMicros - before.cpuMicros) / Math.max(1, result.requests.total),
    errors: result.errors,
    non2xx: result.non2xx,
    requests: result.requests.total,
  }
}

interface RoundTrips {
  p50: number
  p99: number
  mean: number
}

/** `wsMessages` round trips, one at a time, on one socket; milliseconds. */
async function roundTrips(url: string, headers: Record<string, string> = {}): Promise<RoundTrips> {
  const socket = new WebSocket(url, { headers })
  await once(socket, 'open')
  const payload = Buffer.alloc(32, 7)
  const times: number[] = []
  for (let i = 0; i < wsMessages; i++) {
    const started = process.hrtime.bigint()
    const echoed = once(socket, 'message')
    socket.send(payload)
    await echoed
    times.push(Number(process.hrtime.bigint() - started) / 1e6)
  }
  socket.close()
  times.sort((a, b) => a - b)
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(times.length * q))] ?? 0
  return { p50: at(0.5), p99: at(0.99), mean: times.reduce((a, b) => a + b, 0) / Math.max(1, times.length) }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0
const round1 = (value: number) => Math.round(value * 10) / 10

const upstream = await startServer('upstream', [])
const bare = await startServer('bare', [upstream.url])
const bound = await startServer('gateway', [upstream.url, 'bound'])
const unbound = await startServer('gateway', [upstream.url, 'unbound'])
const tlsGateway = await startServer('gateway', [upstream.url, 'tls'])
const servers: Server[] = [upstream, bare, bound, unbound, tlsGateway]

// Sessions and counters in Redis, users and tokens in PostgreSQL: the replicas' configuration.
const backed = await startServer('gateway', [upstream.url, 'postgres,redis']).catch((err: Error) => {
  process.stderr.write(`bench: no PostgreSQL/Redis target (${err.message})\n`)
  return null
})
if (backed) servers.push(backed)

// BENCH_BASELINE: another build's dist/bench/servers.js, measured in the same rounds ("before").
const baselineServers = process.env.BENCH_BASELINE
const baseline = baselineServers ? await startServer('gateway', [upstream.url, 'bound'], { serversModule: baselineServers }) : null
const baselineUnbound = baselineServers ? await startServer('gateway', [upstream.url, 'unbound'], { serversModule: baselineServers }) : null
for (const server of [baseline, baselineUnbound]) if (server) servers.push(server)

// Forward auth: nginx in front of the upstream asking Gatehouse's /auth/verify, beside the same
// nginx asking a minimal responder (bench/servers.ts auth-responder).
const responder = await startServer('auth-responder', ['', bound.ready.pat ?? ''])
servers.push(responder)
const nginxWithGatehouse = await startNginx(upstream.ready.port, bound, '/auth/verify')
const nginxWithResponder = nginxWithGatehouse ? await startNginx(upstream.ready.port, responder, '/') : null
for (const server of [nginxWithGatehouse, nginxWithResponder]) if (server) servers.push(server)

/**
 * nginx (one worker) with `auth_request` to `auth`; null when nginx is not installed. Its
 * `stats` add the auth server's CPU time to nginx's, so that CPU per request is the pair's.
 */
async function startNginx(upstreamPort: number, auth: Server, authPath: string): Promise<Server | null> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-bench-nginx-'))
  const port = await freePort()
  const conf = `
events { worker_connections 4096; }
http {
  access_log off;
  # autocannon keeps its connections for the whole run: nginx's default closes one after 1,000 requests.
  keepalive_requests 100000000;
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 64; keepalive_requests 100000000; }
  upstream auth { server 127.0.0.1:${auth.ready.port}; keepalive 64; keepalive_requests 100000000; }
  server {
    listen 127.0.0.1:${port};
    location = /_auth {
      internal;
      proxy_pass http://auth${authPath};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URL http://$http_host$request_uri;
    }
    location / {
      auth_request /_auth;
      auth_request_set $auth_user_id $upstream_http_x_auth_user_id;
      auth_request_set $auth_assertion $upstream_http_x_auth_assertion;
      proxy_set_header X-Auth-User-Id $auth_user_id;
      proxy_set_header X-Auth-Assertion $auth_assertion;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://app;
    }
  }
}
`
  await writeFile(path.join(dir, 'nginx.conf'), conf)
  const main = `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log stderr error;${process.getuid?.() === 0 ? ' user root;' : ''}`
  const child = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', main], { stdio: ['ignore', 'ignore', 'inherit'] })
  try {
    await Promise.race([once(child, 'spawn'), once(child, 'error').then(([err]) => Promise.reject(err as Error))])
    await waitForPort(port)
  } catch (err) {
    process.stderr.write(`bench: no forward-auth target (nginx: ${(err as Error).message})\n`)
    child.kill()
    return null
  }
  const pid = child.pid ?? 0
  return {
    child,
    ready: { ready: true, port },
    url: `http://127.0.0.1:${port}`,
    stats: async () => {
      const authStats = await auth.stats()
      return { ...authStats, cpuMicros: authStats.cpuMicros + (await treeCpuMicros(pid)) }
    },
  }
}

/** User plus system CPU time of a process and its children (from /proc), in microseconds. */
async function treeCpuMicros(pid: number): Promise<number> {
  const ticksPerSecond = 100 // USER_HZ on Linux
  const one = async (p: number): Promise<number> => {
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 1e6) / ticksPerSecond
  }
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean).map(Number)
  let total = await one(pid)
  for (const c of children) total += await one(c)
  return total
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connectTcp(port, '127.0.0.1', () => {
        socket.end()
        resolve(true)
      }).on('error', () => resolve(false))
    })
    if (open) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`nothing listens on ${port}`)
}

/**
 * Requests/s over h2: `sessions` connections, each keeping `streams` requests in flight for
 * `seconds`. The certificate is the bench's own throw-away self-signed one.
 */
async function h2Load(port: number, path: string, headers: Record<string, string>, seconds: number, sessions = 4, streams = 16): Promise<{ rps: number; errors: number }> {
  const deadline = Date.now() + seconds * 1000
  let done = 0
  let errors = 0
  await Promise.all(Array.from({ length: sessions }, async () => {
    const session = connectH2(`https://localhost:${port}`, { rejectUnauthorized: false })
    session.on('error', () => undefined)
    const one = () => new Promise<void>((resolve) => {
      const stream = session.request({ ':path': path, ...headers })
      stream.on('response', (head) => {
        if (head[':status'] !== 200) errors++
      })
      stream.resume()
      stream.on('end', () => resolve())
      stream.on('error', () => {
        errors++
        resolve()
      })
    })
    await Promise.all(Array.from({ length: streams }, async () => {
      while (Date.now() < deadline) {
        await one()
        done++
      }
    }))
    session.close()
  }))
  return { rps: done / seconds, errors }
}

const pat = (server: Server) => ({ authorization: `Bearer ${server.ready.pat}` })
const session = (server: Server) => ({ authorization: `Bearer ${server.ready.session}` })
const targets: Array<{ name: string; server: Server; load: Load }> = [
  { name: 'upstream (direct)', server: upstream, load: { url: `${upstream.url}/` } },
  { name: 'bare @fastify/http-proxy', server: bare, load: { url: `${bare.url}/` } },
  { name: 'gateway public route', server: bound, load: { url: `${bound.url}/public` } },
  { name: 'gateway PAT route, bound assertions', server: bound, load: { url: `${bound.url}/pat`, headers: pat(bound) } },
  { name: 'gateway PAT route, bind_to_request: false', server: unbound, load: { url: `${unbound.url}/pat`, headers: pat(unbound) } },
  { name: 'gateway session route', server: bound, load: { url: `${bound.url}/session`, headers: session(bound) } },
]
if (backed) {
  targets.push(
    { name: 'PostgreSQL + Redis: public route', server: backed, load: { url: `${backed.url}/public` } },
    { name: 'PostgreSQL + Redis: PAT route, bound', server: backed, load: { url: `${backed.url}/pat`, headers: pat(backed) } },
    { name: 'PostgreSQL + Redis: session route', server: backed, load: { url: `${backed.url}/session`, headers: session(backed) } },
  )
}
if (baseline && baselineUnbound) {
  targets.push(
    { name: 'before: public route', server: baseline, load: { url: `${baseline.url}/public` } },
    { name: 'before: PAT route, bound', server: baseline, load: { url: `${baseline.url}/pat`, headers: pat(baseline) } },
    { name: 'before: PAT route, unbound', server: baselineUnbound, load: { url: `${baselineUnbound.url}/pat`, headers: pat(baselineUnbound) } },
    { name: 'before: session route', server: baseline, load: { url: `${baseline.url}/session`, headers: session(baseline) } },
  )
}
if (nginxWithGatehouse && nginxWithResponder) {
  targets.push(
    { name: 'nginx + minimal auth responder', server: nginxWithResponder, load: { url: `${nginxWithResponder.url}/verified`, headers: pat(bound) } },
    { name: 'nginx + Gatehouse /auth/verify (PAT)', server: nginxWithGatehouse, load: { url: `${nginxWithGatehouse.url}/verified`, headers: pat(bound) } },
  )
}

const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
for (let round = 0; round < rounds; round++) {
  for (const target of targets) {
    samples.get(target.name)?.push(await autocannon(target.load, target.server))
    process.stderr.write('.')
  }
}
process.stderr.write('\n')

const wsTargets: { name: string; url: string; headers: Record<string, string> }[] = [
  { name: 'WebSocket direct to the upstream', url: upstream.url.replace('http', 'ws') + '/', headers: {} },
  { name: 'WebSocket through the gateway (PAT)', url: bound.url.replace('http', 'ws') + '/socket', headers: { authorization: `Bearer ${bound.ready.pat}` } },
]
const wsSamples = new Map<string, RoundTrips[]>(wsTargets.map((t) => [t.name, []]))
for (let round = 0; round < rounds; round++) {
  for (const target of wsTargets) wsSamples.get(target.name)?.push(await roundTrips(target.url, target.headers))
}
const round3 = (value: number) => Math.round(value * 1000) / 1000
const wsRows = wsTargets.map((target) => {
  const s = wsSamples.get(target.name) ?? []
  return { target: target.name, messages_per_round: wsMessages, rtt_p50_ms: round3(median(s.map((x) => x.p50))), rtt_p99_ms: round3(median(s.map((x) => x.p99))), rtt_mean_ms: round3(median(s.map((x) => x.mean))) }
})

// Logins: few connections, since each login is ~30 ms of argon2 and the hashing queue is bounded.
const login = await autocannon(
  {
    url: `${bound.url}/auth/login`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: bound.ready.loginEmail, password: bound.ready.loginPassword }),
    connections: os.cpus().length * 2,
  },
  bound,
)

const h2Public = await h2Load(tlsGateway.ready.port, '/public', {}, duration)
const h2Pat = await h2Load(tlsGateway.ready.port, '/pat', { authorization: `Bearer ${tlsGateway.ready.pat}` }, duration)
if (h2Public.errors + h2Pat.errors > 0) throw new Error(`h2: ${h2Public.errors + h2Pat.errors} errors or non-200 answers`)

const bareSamples = samples.get('bare @fastify/http-proxy') ?? []
const directSamples = samples.get('upstream (direct)') ?? []
const bareRps = median(bareSamples.map((s) => s.rps))
const bareP99 = median(bareSamples.map((s) => s.p99))
const directRps = median(directSamples.map((s) => s.rps))
const rows = targets.map((target) => {
  const s = samples.get(target.name) ?? []
  const rps = s.map((x) => x.rps)
  const cpu = s.map((x) => x.cpuMicrosPerRequest)
  return {
    target: target.name,
    rps_median: Math.round(median(rps)),
    rps_min: Math.round(Math.min(...rps)),
    rps_max: Math.round(Math.max(...rps)),
    p50_ms: median(s.map((x) => x.p50)),
    p99_ms: median(s.map((x) => x.p99)),
    p99_vs_bare_ms: median(s.map((x) => x.p99)) - bareP99,
    vs_bare: Number((median(rps) / bareRps).toFixed(3)),
    vs_direct: Number((median(rps) / directRps).toFixed(3)),
    cpu_us_per_request_median: round1(median(cpu)),
    cpu_us_per_request_min: round1(Math.min(...cpu)),
    cpu_us_per_request_max: round1(Math.max(...cpu)),
    socket_errors: s.reduce((sum, x) => sum + x.errors, 0),
    non_2xx: s.reduce((sum, x) => sum + x.non2xx, 0),
    requests: s.reduce((sum, x) => sum + x.requests, 0),
  }
})
const memoryOf: Record<string, ProcessStats> = { bare: await bare.stats(), bound: await bound.stats(), unbound: await unbound.stats() }
if (backed) memoryOf.postgres_redis = await backed.stats()
if (baseline && baselineUnbound) {
  memoryOf.before_bound = await baseline.stats()
  memoryOf.before_unbound = await baselineUnbound.stats()
}
const memory = Object.fromEntries(Object.entries(memoryOf).map(([k, v]) => [k, v.rss]))
const mib = (bytes: number) => Math.round(bytes / 1048576)
const ratio = (name: string, to = 'bare @fastify/http-proxy') => {
  const a = rows.find((r) => r.target === name)
  const b = rows.find((r) => r.target === to)
  return a && b ? Number((a.rps_median / b.rps_median).toFixed(3)) : null
}
const p99Over = (name: string) => rows.find((r) => r.target === name)?.p99_vs_bare_ms ?? null
/** Issue 15's targets beside what this run measured. */
const goals = [
  { goal: 'public route ≥ 0.85 of the bare proxy', value: ratio('gateway public route'), min: 0.85 },
  { goal: 'PAT route, bind_to_request: false ≥ 0.75', value: ratio('gateway PAT route, bind_to_request: false'), min: 0.75 },
  { goal: 'PAT route, request-bound ≥ 0.60', value: ratio('gateway PAT route, bound assertions'), min: 0.6 },
  { goal: 'session route ≥ 0.70', value: ratio('gateway session route'), min: 0.7 },
  { goal: 'PostgreSQL + Redis PAT route, request-bound ≥ 0.60', value: ratio('PostgreSQL + Redis: PAT route, bound'), min: 0.6 },
  { goal: 'PostgreSQL + Redis session route ≥ 0.70', value: ratio('PostgreSQL + Redis: session route'), min: 0.7 },
  { goal: 'forward auth: nginx + Gatehouse ≥ 0.8 of nginx + minimal responder', value: ratio('nginx + Gatehouse /auth/verify (PAT)', 'nginx + minimal auth responder'), min: 0.8 },
  { goal: 'p99 within 2 ms of the bare proxy (PAT, bound)', value: p99Over('gateway PAT route, bound assertions'), max: 2 },
  { goal: 'p99 within 2 ms of the bare proxy (session)', value: p99Over('gateway session route'), max: 2 },
  { goal: 'resident memory, PostgreSQL-backed ≤ 1.3× the bare proxy', value: memory.postgres_redis ? Number((memory.postgres_redis / (memory.bare ?? 1)).toFixed(2)) : null, max: 1.3 },
].map((g) => ({ ...g, met: g.value === null ? null : 'min' in g ? g.value >= (g.min ?? 0) : g.value <= (g.max ?? Infinity) }))
const report = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: os.cpus().length,
  duration,
  connections,
  rounds,
  log_level: process.env.BENCH_LOG_LEVEL ?? 'info',
  rows,
  websocket_round_trips: wsRows,
  h2_requests_per_second: { public_route: Math.round(h2Public.rps), pat_route: Math.round(h2Pat.rps) },
  logins_per_second: Math.round(login.rps * 10) / 10,
  login_p99_ms: login.p99,
  goals,
  rss_mib: Object.fromEntries(Object.entries(memory).map(([k, v]) => [k, mib(v)])),
  memory_mib: Object.fromEntries(Object.entries(memoryOf).map(([k, v]) => [k, { rss: mib(v.rss), v8_heap: mib(v.heapTotal), external: mib(v.external) }])),
}
await mkdir('bench/results', { recursive: true })
await writeFile('bench/results/latest.json', JSON.stringify(report, null, 2) + '\n')
const md = [
  `${rounds} interleaved rounds of ${duration} s at ${connections} connections, ${report.cpus} CPUs, Node ${report.node}, gateway logging.level ${report.log_level}.`,
  '',
  `| target | req/s (median) | min–max | p50 ms | p99 ms | vs bare proxy | vs upstream | CPU µs/request (median, min–max) |`,
  `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ...rows.map(
    (r) =>
      `| ${r.target} | ${r.rps_median} | ${r.rps_min}–${r.rps_max} | ${r.p50_ms} | ${r.p99_ms} | ${r.vs_bare} | ${r.vs_direct} | ${r.cpu_us_per_request_median} (${r.cpu_us_per_request_min}–${r.cpu_us_per_request_max}) |`,
  ),
  '',
  `WebSocket round trips (one 32-byte message at a time, ${wsMessages} per round, median over rounds):`,
  '',
  `| target | RTT p50 ms | RTT p99 ms | mean ms |`,
  `| --- | ---: | ---: | ---: |`,
  ...wsRows.map((r) => `| ${r.target} | ${r.rtt_p50_ms} | ${r.rtt_p99_ms} | ${r.rtt_mean_ms} |`),
  '',
  `HTTP/2 over TLS (node:http2 client, 4 connections × 16 streams, upstream HTTP/1.1): ${report.h2_requests_per_second.public_route} req/s on the public route, ` +
    `${report.h2_requests_per_second.pat_route} req/s on the PAT route.`,
  `Logins: ${report.logins_per_second}/s at the default argon2 parameters (p99 ${report.login_p99_ms} ms).`,
  '',
  `| goal | measured | met |`,
  `| --- | ---: | --- |`,
  ...goals.map((g) => `| ${g.goal} | ${g.value ?? 'not measured'} | ${g.met === null ? '–' : g.met ? 'yes' : 'no'} |`),
  ...rows.filter((r) => r.socket_errors + r.non_2xx > 0).map((r) => `Not 2xx: ${r.non_2xx} answers and ${r.socket_errors} socket errors of ${r.requests} requests on ${r.target}, all rounds.`),
  '',
  `Memory after the run (MiB; gateways on embedded PGlite unless named postgres): resident (V8 heap, external)`,
  ...Object.entries(report.memory_mib).map(([k, v]) => `- ${k}: ${v.rss} (${v.v8_heap}, ${v.external})`),
].join('\n')
await writeFile('bench/results/latest.md', md + '\n')
process.stdout.write(md + '\n')

for (const server of servers) server.child.kill('SIGTERM')
if (backed?.ready.database) await dropDatabase(backed.ready.database)

/** The PostgreSQL target's database, once its gateway has gone. */
async function dropDatabase(url: string): Promise<void> {
  await once(backed?.child ?? process, 'exit').catch(() => undefined)
  const name = new URL(url).pathname.slice(1)
  const client = new pg.Client({ connectionString: process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test' })
  await client.connect()
  await client.query(`DROP DATABASE IF EXISTS ${name}`)
  await client.end()
}
