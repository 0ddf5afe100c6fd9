/**
 * `npm run bench`: the gateway against a bare @fastify/http-proxy in the same run.
 * A minimal upstream, a bare proxy to it, and the gateway with a public route and a
 * PAT-authenticated route (RBAC + signed assertion) to it, all plain HTTP on loopback so that
 * TLS does not hide the gateway's own cost. autocannon runs in a separate process, in
 * interleaved rounds so that machine drift hits every target alike.
 *
 * Env: BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (default 64), BENCH_ROUNDS (default 3),
 * BENCH_BIND=false for `identity.bind_to_request: false`. Results: bench/results/latest-{bound,unbound}.{json,md}.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import proxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import yaml from 'js-yaml'
import { buildApp } from '../src/app.js'
import { parseConfig } from '../src/config/index.js'
import { permissionsFor } from '../src/core/permissions.js'
import { openRuntime } from '../src/runtime.js'

const run = promisify(execFile)
const duration = Number(process.env.BENCH_DURATION ?? 10)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 64)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)

interface Sample {
  rps: number
  p50: number
  p99: number
}

async function listen(server: { listen: (port: number, host: string, cb: () => void) => void; address: () => AddressInfo | string | null }) {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

async function autocannon(url: string, headers: Record<string, string>): Promise<Sample> {
  const args = ['autocannon', '-j', '-c', String(connections), '-d', String(duration)]
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}=${value}`)
  args.push(url)
  const { stdout } = await run('npx', args, { maxBuffer: 16 * 1024 * 1024 })
  const result = JSON.parse(stdout) as { requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number }
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`)
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0

const upstream = createServer((_request, response) => {
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': '11' }).end('{"ok":true}')
})
const upstreamPort = await listen(upstream)
const upstreamUrl = `http://127.0.0.1:${upstreamPort}`

const bare = Fastify({ logger: false })
await bare.register(proxy, { upstream: upstreamUrl })
await bare.listen({ host: '127.0.0.1', port: 0 })
const barePort = (bare.server.address() as AddressInfo).port

const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-bench-'))
await mkdir(path.join(dir, 'certs'))
const config = parseConfig(
  yaml.dump({
    server: { host: '127.0.0.1', port: 0, public_url: 'http://localhost' },
    storage: { database: `embedded:${path.join(dir, 'db')}`, sessions: 'memory' },
    identity: { bind_to_request: process.env.BENCH_BIND !== 'false' },
    logging: { level: 'silent' },
    routes: [
      { name: 'public', match: '/public', upstream: upstreamUrl, auth: 'public' },
      { name: 'pat', match: '/pat', upstream: upstreamUrl, auth: 'required', permissions: ['app:read'] },
    ],
  }),
  { source: path.join(dir, 'gateway.yml'), env: {} },
)
const runtime = await openRuntime(config)
const user = await runtime.users.register({ email: 'bench@example.com', password: null, name: null }, { roles: ['viewer'] })
const { token } = await runtime.pats.create({ id: user.id, permissions: permissionsFor(user.roles, config.roles) }, { name: 'bench' })
const gateway = await buildApp(runtime, { logger: false })
await gateway.listen({ host: '127.0.0.1', port: 0 })
const gatewayPort = (gateway.server.address() as AddressInfo).port

const targets: Array<{ name: string; url: string; headers: Record<string, string> }> = [
  { name: 'upstream (direct)', url: `${upstreamUrl}/`, headers: {} },
  { name: 'bare @fastify/http-proxy', url: `http://127.0.0.1:${barePort}/`, headers: {} },
  { name: 'gateway public route', url: `http://127.0.0.1:${gatewayPort}/public`, headers: {} },
  { name: 'gateway PAT route', url: `http://127.0.0.1:${gatewayPort}/pat`, headers: { authorization: `Bearer ${token}` } },
]
const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
for (let round = 0; round < rounds; round++) {
  for (const target of targets) samples.get(target.name)?.push(await autocannon(target.url, target.headers))
}

const bareRps = median(samples.get('bare @fastify/http-proxy')?.map((s) => s.rps) ?? [])
const rows = targets.map((target) => {
  const s = samples.get(target.name) ?? []
  const rps = s.map((x) => x.rps)
  return {
    target: target.name,
    rps_median: Math.round(median(rps)),
    rps_min: Math.round(Math.min(...rps)),
    rps_max: Math.round(Math.max(...rps)),
    p50_ms: median(s.map((x) => x.p50)),
    p99_ms: median(s.map((x) => x.p99)),
    vs_bare: Number((median(rps) / bareRps).toFixed(3)),
  }
})
const report = { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, duration, connections, rounds, bind_to_request: config.identity.bind_to_request, rows }
await mkdir('bench/results', { recursive: true })
const name = `latest-${config.identity.bind_to_request ? 'bound' : 'unbound'}`
await writeFile(`bench/results/${name}.json`, JSON.stringify(report, null, 2) + '\n')
const md = [
  `| target | req/s (median) | min–max | p50 ms | p99 ms | vs bare proxy |`,
  `| --- | ---: | ---: | ---: | ---: | ---: |`,
  ...rows.map((r) => `| ${r.target} | ${r.rps_median} | ${r.rps_min}–${r.rps_max} | ${r.p50_ms} | ${r.p99_ms} | ${r.vs_bare} |`),
].join('\n')
await writeFile(`bench/results/${name}.md`, md + '\n')
process.stdout.write(md + '\n')

await gateway.close()
await runtime.close()
await bare.close()
upstream.close()
