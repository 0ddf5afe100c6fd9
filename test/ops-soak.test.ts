/**
 * CI's 20-second version of `npm run soak` (soak/run.ts): the compiled soak as a child
 * process, two `gatehouse serve` replicas on a fresh PostgreSQL database and a private
 * redis-server, a Redis restart and an upstream flap. It must exit 0 (every must-be-zero
 * figure is zero) and its report must have every section.
 *
 * Needs TEST_DATABASE_URL (a user that may CREATE DATABASE) and redis-server on PATH; skipped
 * without them, except under GATEHOUSE_REQUIRE_BACKENDS=1 (CI), where they must be there.
 */
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const SOAK = fileURLToPath(new URL('../soak/run.js', import.meta.url))
const databaseUrl = process.env.TEST_DATABASE_URL
const required = process.env.GATEHOUSE_REQUIRE_BACKENDS === '1'
const haveRedisServer = spawnSync('redis-server', ['--version']).status === 0

const missing = !databaseUrl
  ? 'TEST_DATABASE_URL is not set: the soak needs PostgreSQL'
  : !haveRedisServer
    ? 'redis-server is not on PATH: the soak runs (and restarts) a private one'
    : undefined

if (missing !== undefined && required) {
  t.fail(`GATEHOUSE_REQUIRE_BACKENDS=1 but ${missing}`)
}

interface Summary {
  ok: boolean
  requests: number
  must_be_zero: Array<{ figure: string; value: number }>
  by_status: Record<string, number>
  by_replica: Record<string, Record<string, number>>
  windows: Array<{ kind: string; recoveredAt: number | null }>
  users: { acknowledged: number }
  pats: { acknowledged: number }
  memory: Array<{ process: string; peakMib: number | null }>
  shutdown: Array<{ replica: string; code: number | null }>
}

t.test('a 20-second soak: restarts Redis, flaps the upstream, and every must-be-zero figure is zero', { skip: missing ?? false }, async (t) => {
  const results = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-soak-results-'))
  t.teardown(() => rm(results, { recursive: true, force: true }))
  const env: NodeJS.ProcessEnv = { ...process.env, SOAK_DURATION: '20', SOAK_RESULTS_DIR: results, SOAK_DATABASE_URL: databaseUrl }
  delete env.SOAK_RECORDS
  const child = spawn(process.execPath, [SOAK], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const timer = setTimeout(() => child.kill('SIGINT'), 100_000)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const [code] = (await once(child, 'close')) as [number | null]
  clearTimeout(timer)

  t.equal(code, 0, 'the soak exits 0', { report: stdout.slice(-6_000), stderr: stderr.slice(-3_000) })
  t.match(stdout, /^# Gatehouse soak: PASS$/m, 'the report says PASS')
  for (const section of [
    '| must be zero | value |',
    '## Requests by status',
    '## Requests by operation',
    '## Fault timeline',
    '## Acknowledged creations, checked at the end',
    '## Memory and shutdown',
  ]) {
    t.ok(stdout.includes(section), `the report has "${section}"`)
  }
  t.match(stdout, /Redis killed/, 'the timeline has the Redis restart')
  t.match(stdout, /upstream stops accepting connections/, 'the timeline has the upstream flap')
  t.equal(await readFile(path.join(results, 'latest.md'), 'utf8'), stdout, 'latest.md is the printed report')

  const summary = JSON.parse(await readFile(path.join(results, 'latest.json'), 'utf8')) as Summary
  t.equal(summary.ok, true)
  t.ok(summary.must_be_zero.length >= 5, 'the must-be-zero figures are listed')
  for (const figure of summary.must_be_zero) t.equal(figure.value, 0, figure.figure)
  t.ok(summary.requests > 200, `${summary.requests} requests were sent`)
  t.ok((summary.by_status['200'] ?? 0) > 0 && (summary.by_status['401'] ?? 0) > 0, 'successes and refusals both happened', { by_status: summary.by_status })
  t.same(Object.keys(summary.by_replica).sort(), ['A', 'B'], 'counted per replica')
  t.same(summary.windows.map((w) => w.kind), ['redis', 'upstream'], 'both faults happened')
  t.ok(summary.windows.every((w) => w.recoveredAt !== null), 'and the replicas recovered from both')
  t.ok(summary.users.acknowledged > 0 && summary.pats.acknowledged > 0, 'users and PATs were created and checked')
  t.ok(summary.memory.filter((m) => m.process.startsWith('replica')).every((m) => (m.peakMib ?? 0) > 0), 'peak memory of each replica')
  t.same(summary.shutdown.map((s) => s.code), [0, 0], 'both replicas exit 0 on SIGTERM')
})
