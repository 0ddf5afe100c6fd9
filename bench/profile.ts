/**
 * `npm run bench:profile [target …]`: a CPU profile of the gateway under load, one per target
 * (`public`, `pat`, `pat-unbound`, `session`, `verify` (forward auth as nginx asks it), `bare`), as bench/results/profiles/<target>.cpuprofile
 * (open it in Chrome DevTools' Performance panel or speedscope for the flame graph) and a
 * summary of where the time goes in bench/results/profiles/<target>.md: self time by package
 * and by function, and the inclusive time of the gateway's own stages. Only the last
 * PROFILE_SECONDS (default 8) of load count, so start-up and warm-up are left out.
 */
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { startServer, stopServer } from './processes.js'

const run = promisify(execFile)
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js')
const seconds = Number(process.env.PROFILE_SECONDS ?? 8)
const OUT = 'bench/results/profiles'

interface Target {
  kind: 'bare' | 'gateway'
  option: string
  path: string
  credential?: 'pat' | 'session'
  /** Extra request headers, as nginx's auth_request sends them for forward auth. */
  headers?: string[]
}
const TARGETS: Record<string, Target> = {
  bare: { kind: 'bare', option: '', path: '/' },
  public: { kind: 'gateway', option: 'bound', path: '/public' },
  pat: { kind: 'gateway', option: 'bound', path: '/pat', credential: 'pat' },
  'pat-unbound': { kind: 'gateway', option: 'unbound', path: '/pat', credential: 'pat' },
  session: { kind: 'gateway', option: 'bound', path: '/session', credential: 'session' },
  verify: {
    kind: 'gateway',
    option: 'bound',
    path: '/auth/verify',
    credential: 'pat',
    headers: ['x-original-method=GET', 'x-original-url=http://127.0.0.1/verified'],
  },
}

async function load(url: string, headers: string[], duration: number): Promise<{ rps: number; p99: number; total: number }> {
  const { stdout } = await run(process.execPath, [AUTOCANNON, '-j', '-c', '64', '-d', String(duration), ...headers, url], { maxBuffer: 1 << 24 })
  const result = JSON.parse(stdout) as { requests: { average: number; total: number }; latency: { p99: number } }
  return { rps: result.requests.average, p99: result.latency.p99, total: result.requests.total }
}

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

const packageOf = (url: string): string => {
  if (url === '') return '(native, GC, idle)'
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (dependency) return dependency[1] ?? url
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0] ?? ''}`
  const own = /dist\/(src\/[^/]+)/.exec(url)
  return own ? (own[1] ?? url) : url.slice(-40)
}
const frameName = (node: ProfileNode) =>
  `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.split('/').slice(-2).join('/')}:${node.callFrame.lineNumber + 1}`

function summarise(profile: Profile, lastSeconds: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  let elapsed = 0
  const at = profile.timeDeltas.map((d) => (elapsed += d))
  const from = elapsed - lastSeconds * 1e6
  const selfTime = new Map<number, number>()
  profile.samples.forEach((id, i) => {
    if ((at[i] ?? 0) >= from) selfTime.set(id, (selfTime.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  const total = [...selfTime.values()].reduce((a, b) => a + b, 0)
  const add = (map: Map<string, number>, key: string, value: number) => map.set(key, (map.get(key) ?? 0) + value)
  const byPackage = new Map<string, number>()
  const byFunction = new Map<string, number>()
  const inclusive = new Map<string, number>()
  for (const [id, time] of selfTime) {
    const node = byId.get(id)
    if (!node) continue
    add(byPackage, packageOf(node.callFrame.url), time)
    add(byFunction, frameName(node), time)
    const seen = new Set<string>()
    for (let cursor: number | undefined = id; cursor !== undefined; cursor = parent.get(cursor)) {
      const frame = byId.get(cursor)
      if (!frame || !frame.callFrame.url.includes('/dist/src/')) continue
      const name = frameName(frame)
      if (!seen.has(name)) add(inclusive, name, time)
      seen.add(name)
    }
  }
  const table = (title: string, map: Map<string, number>, rows: number) => [
    `| ${title} | share of CPU |`,
    '| --- | ---: |',
    ...[...map].sort((a, b) => b[1] - a[1]).slice(0, rows).map(([k, v]) => `| \`${k}\` | ${((100 * v) / total).toFixed(1)}% |`),
    '',
  ]
  return [
    `${(total / 1e6).toFixed(1)} s of samples over the last ${lastSeconds} s of load. Shares are of the main thread's ` +
      'sampled wall time, not CPU time: a system call (`writev`, `writeLatin1String`) also holds the time the process ' +
      'waited there for a CPU, which the load generator and the upstream share with it.',
    '',
    '### Self time by package',
    '',
    ...table('package', byPackage, 20),
    '### Self time by function',
    '',
    ...table('function', byFunction, 30),
    "### Inclusive time of the gateway's own functions",
    '',
    ...table('function', inclusive, 30),
  ].join('\n')
}

const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['bare', 'public', 'pat', 'pat-unbound', 'session', 'verify']
await mkdir(OUT, { recursive: true })
const upstream = await startServer('upstream', [])
const upstreamUrl = `http://127.0.0.1:${upstream.ready.port}`
for (const name of names) {
  const target = TARGETS[name]
  if (!target) throw new Error(`unknown target ${name}: one of ${Object.keys(TARGETS).join(', ')}`)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-profile-'))
  const server = await startServer(target.kind, [upstreamUrl, target.option], { execArgv: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
  const url = `http://127.0.0.1:${server.ready.port}${target.path}`
  const credential = target.credential === 'pat' ? server.ready.pat : target.credential === 'session' ? server.ready.session : undefined
  const headers = [credential ? `authorization=Bearer ${credential}` : [], target.headers ?? []].flat().flatMap((h) => ['-H', h])
  await load(url, headers, 2)
  const before = await server.stats()
  const result = await load(url, headers, seconds)
  const after = await server.stats()
  await stopServer(server)
  // The main thread's profile: a worker (the embedded database's initdb) writes its own.
  const [file] = (await readdir(dir)).filter((f) => f.endsWith('.0.001.cpuprofile'))
  if (!file) throw new Error(`no profile was written for ${name}`)
  const profile = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Profile
  await rename(path.join(dir, file), path.join(OUT, `${name}.cpuprofile`)).catch(async () => {
    await writeFile(path.join(OUT, `${name}.cpuprofile`), JSON.stringify(profile))
  })
  await rm(dir, { recursive: true, force: true })
  const cpu = (after.cpuMicros - before.cpuMicros) / Math.max(1, result.total)
  const md = [
    `## ${name}: ${target.path}${credential ? ` (${target.credential})` : ''}`,
    '',
    `Node ${process.version}, ${os.cpus().length} CPUs, 64 connections, profiled (the profiler itself costs some throughput): ` +
      `${Math.round(result.rps)} req/s, p99 ${result.p99} ms, ${cpu.toFixed(1)} µs of CPU per request.`,
    '',
    summarise(profile, seconds - 0.5),
  ].join('\n')
  await writeFile(path.join(OUT, `${name}.md`), md + '\n')
  process.stdout.write(`${name}: ${Math.round(result.rps)} req/s, ${cpu.toFixed(1)} µs/request → ${OUT}/${name}.md\n`)
}
await stopServer(upstream)
