/**
 * `npm run soak`: two `gatehouse serve` replicas sharing a fresh PostgreSQL database and a
 * private Redis, under concurrent logins, PAT requests, session requests and 10% bad
 * credentials, while the soak restarts Redis once (its sessions are lost: no persistence)
 * and makes the upstream flap (it refuses connections for a few seconds).
 *
 * The upstream verifies every request with the package's own verifier (`gatehouse/verify`),
 * and every request is classified against the fault windows. The report (printed, and written
 * to soak/results/latest.{json,md}) gives requests by status, overall and per replica; the
 * figures that must be zero (requests that reached an upstream without valid credentials,
 * 5xx outside the fault windows, users and PATs acknowledged then missing, crashed replicas);
 * the fault timeline with the measured recovery; peak memory; and how the replicas exited on
 * SIGTERM. Also zero: invalid credentials accepted (wrong passwords, unknown tokens, ended
 * sessions, revoked PATs, PATs and sessions of deleted users), users deleted yet still there,
 * faults not recovered from within 30 s, and error answers off the contract (JSON shape,
 * Retry-After, no upstream address in a 5xx). Exit 1 when a must-be-zero figure is not zero,
 * 2 when the soak could not run.
 *
 * Duration: `--duration <seconds>` or SOAK_DURATION (seconds, default 120); traffic goes on
 * past it until the last fault window has closed. Needs PostgreSQL (SOAK_DATABASE_URL, else
 * TEST_DATABASE_URL: a user that may CREATE DATABASE) and `redis-server` on PATH.
 * Other env: SOAK_USERS (virtual users, default 16), SOAK_THINK_MS (mean pause between a
 * user's requests, default 5), SOAK_GRACE_MS (after recovery, default 5000: the breakers'
 * reset timeout), SOAK_RESULTS_DIR (default soak/results), SOAK_RECORDS (a file to write every
 * request's record to, one JSON object a line).
 */
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import yaml from 'js-yaml'
import { ensureDevCertificate } from '../src/dev-certificate.js'
import { createDatabase, freePort, memoryOf, PrivateRedis, Replica, withClient, type SoakDatabase } from './infra.js'
import { buildReport, type FaultWindow, type MemoryFigure, type ShutdownResult, type TimelineEvent } from './report.js'
import { Client, parse, Recorder, VirtualUser, type Answer } from './traffic.js'
import { SoakUpstream } from './upstream.js'

const PUBLIC_URL = 'https://gatehouse.ops-soak.test'
const RECOVERY_LIMIT_MS = 30_000
const SHUTDOWN_TIMEOUT_MS = 20_000
const PASSWORD = 'soak probe password, long enough'

class SetupError extends Error {}

function options() {
  const { values } = parseArgs({ options: { duration: { type: 'string' } }, allowPositionals: false })
  const raw = values.duration ?? process.env.SOAK_DURATION ?? '120'
  const durationSec = Number(/^(\d+(?:\.\d+)?)s?$/.exec(raw)?.[1] ?? NaN)
  if (!(durationSec > 0)) throw new SetupError(`--duration / SOAK_DURATION must be a number of seconds, got "${raw}"`)
  const number = (name: string, fallback: number) => {
    const value = Number(process.env[name] ?? fallback)
    if (!Number.isFinite(value) || value < 0) throw new SetupError(`${name} must be a non-negative number`)
    return value
  }
  const adminUrl = process.env.SOAK_DATABASE_URL || process.env.TEST_DATABASE_URL
  if (!adminUrl) throw new SetupError('the soak needs PostgreSQL: set SOAK_DATABASE_URL or TEST_DATABASE_URL (a user that may CREATE DATABASE)')
  if (spawnSync('redis-server', ['--version']).status !== 0) {
    throw new SetupError('the soak needs redis-server on PATH (it runs a private one, which it restarts)')
  }
  return {
    durationSec,
    adminUrl,
    virtualUsers: Math.max(1, Math.round(number('SOAK_USERS', 16))),
    thinkMs: number('SOAK_THINK_MS', 5),
    graceMs: number('SOAK_GRACE_MS', 5_000),
    resultsDir: process.env.SOAK_RESULTS_DIR || fileURLToPath(new URL('../../soak/results/', import.meta.url)),
  }
}

function gatewayConfig(input: { work: string; database: string; redis: string; upstream: string }): string {
  return yaml.dump({
    server: {
      host: '127.0.0.1',
      port: 0,
      public_url: PUBLIC_URL,
      tls: { cert: path.join(input.work, 'tls.crt'), key: path.join(input.work, 'tls.key') },
    },
    storage: { database: input.database, sessions: input.redis },
    identity: { signing_key_file: path.join(input.work, 'keys', 'identity-keys.json') },
    auth: {
      registration: 'open',
      password: { min_length: 15 },
      // Cheap hashing, so that logins do not dominate; a limit far above the soak's own traffic,
      // while bad credentials still get their 401 (and lockouts would show as 429s).
      argon2: { memory_kib: 8192, time_cost: 1, parallelism: 1 },
      lockout: { max_failures: 1_000_000, window: '15m' },
      login_rate_limit: { max: 10_000_000, window: '1m' },
    },
    roles: { viewer: ['app:read'], operator: ['app:read', 'app:write'], admin: ['*'] },
    default_roles: ['viewer'],
    // Counted in Redis: exercises the shared count, and its per-replica fallback in the outage.
    rate_limits: { soak: { max: 10_000_000, window: '1m', key: 'user' } },
    routes: [
      { name: 'session', match: '/s', upstream: input.upstream, auth: 'required', permissions: ['app:read'], rate_limit: 'soak', timeout: '10s' },
      { name: 'pat', match: '/p', upstream: input.upstream, auth: 'required', permissions: ['app:read'], rate_limit: 'soak', timeout: '10s' },
      { name: 'public', match: '/pub', upstream: input.upstream, auth: 'public', timeout: '10s' },
    ],
    metrics: { host: '127.0.0.1', port: 0 },
    logging: { level: 'warn' },
  })
}

const log = (message: string) => process.stderr.write(`soak: ${message}\n`)
const mibOf = (kib: number | null | undefined) => (kib === null || kib === undefined ? null : Math.round(kib / 1024))

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++) await fn(items[index] as T, index)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

async function main(): Promise<number> {
  const opts = options()
  const started = performance.now()
  const clock = () => Math.round((performance.now() - started) * 10) / 10
  const startedAt = new Date().toISOString()
  const cleanup: Array<[string, () => Promise<unknown>]> = []
  const timeline: TimelineEvent[] = []
  const note = (event: string) => {
    timeline.push({ at: clock(), event })
    log(`${(clock() / 1000).toFixed(1)} s ${event}`)
  }
  const replicas: Replica[] = []
  let redis: PrivateRedis | undefined
  let database: SoakDatabase | undefined
  let work: string | undefined
  // However the soak ends, no process of its own survives it.
  const killAll = () => {
    for (const replica of replicas) replica.kill()
    redis?.kill()
    if (work !== undefined) rmSync(work, { recursive: true, force: true })
  }
  process.once('exit', killAll)
  // Interrupted: the processes go at once, the database if it can within 5 s.
  const onSignal = () => {
    killAll()
    setTimeout(() => process.exit(130), 5_000).unref()
    void (database?.drop() ?? Promise.resolve()).catch(() => {}).finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  try {
    // ---- set-up -------------------------------------------------------------------------------
    work = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-soak-'))
    const workDir = work
    cleanup.push(['work directory', () => rm(workDir, { recursive: true, force: true })])
    await ensureDevCertificate(path.join(workDir, 'tls.crt'), path.join(workDir, 'tls.key'))
    const ca = await readFile(path.join(workDir, 'tls.crt'), 'utf8')

    const upstream = new SoakUpstream(clock)
    await upstream.start()
    cleanup.push(['upstream', () => upstream.stop()])

    redis = new PrivateRedis(await freePort(), workDir)
    const privateRedis = redis
    await privateRedis.start()
    cleanup.push(['redis-server', () => privateRedis.stop()])

    try {
      database = await createDatabase(opts.adminUrl)
    } catch (error) {
      throw new SetupError(`could not create the soak's database: ${(error as Error).message}`)
    }
    const soakDatabase = database
    cleanup.push([`database ${soakDatabase.name}`, () => soakDatabase.drop()])

    const names = ['A', 'B']
    const configs = await Promise.all(
      names.map(async (name) => {
        const dir = path.join(workDir, `replica-${name}`)
        await mkdir(dir, { recursive: true })
        const file = path.join(dir, 'gateway.yml')
        await writeFile(file, gatewayConfig({ work: workDir, database: soakDatabase.url, redis: privateRedis.url, upstream: upstream.url }))
        return { name, dir, file }
      }),
    )
    // Both at once: both migrate the fresh database (an advisory lock serialises them) and race
    // to create the shared identity key file.
    const startedReplicas = await Promise.allSettled(configs.map((c) => Replica.start(c.name, c.file, c.dir, clock)))
    for (const result of startedReplicas) if (result.status === 'fulfilled') replicas.push(result.value)
    cleanup.push(['replicas', async () => replicas.forEach((r) => r.kill())])
    const failedStart = startedReplicas.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failedStart) {
      const error = failedStart.reason as Error & { output?: string }
      throw new SetupError(`${error.message}\n${error.output ?? ''}`)
    }
    note(`replicas up: ${replicas.map((r) => `${r.name} ${r.url} (pid ${r.pid})`).join(', ')}`)
    upstream.useGateway({ jwksUrl: `${replicas[0]?.url}/.well-known/jwks.json`, issuer: PUBLIC_URL, ca })

    const targets = replicas.map((r) => r.url)
    const recorder = new Recorder()
    recorder.secrets.push(`127.0.0.1:${upstream.port}`, `:${upstream.port}`, 'ECONNREFUSED')
    const traffic = new Client(targets, clock, recorder)
    const probe = new Client(targets, clock, null)
    const checks = new Client(targets, clock, null)
    cleanup.push(['clients', () => Promise.all([traffic.close(), probe.close(), checks.close()])])

    // The probe user: its logins and requests tell when the replicas have recovered.
    const probeUser = { email: 'soak-probe@soak.example', password: PASSWORD, id: '', pat: '' }
    const registered = await probe.call(0, 'register', 'good', 'POST', '/auth/register', { json: { email: probeUser.email, password: PASSWORD } })
    probeUser.id = parse<{ id: string }>(registered)?.id ?? ''
    const probeLogin = await probe.call(0, 'login', 'good', 'POST', '/auth/login', { json: { email: probeUser.email, password: PASSWORD } })
    const probeSession = parse<{ token: string }>(probeLogin)?.token ?? ''
    const probePat = await probe.call(1 % targets.length, 'pat-create', 'good', 'POST', '/auth/tokens', {
      headers: { authorization: `Bearer ${probeSession}` },
      json: { name: 'probe' },
    })
    const created = parse<{ id: string; token: string }>(probePat)
    if (registered.status !== 201 || probeLogin.status !== 200 || probePat.status !== 201 || created === undefined) {
      throw new SetupError(`the probe user could not be set up: register ${registered.status}, login ${probeLogin.status}, token ${probePat.status} ${probePat.body}`)
    }
    probeUser.pat = created.token
    recorder.users.set(probeUser.id, { id: probeUser.id, email: probeUser.email, password: PASSWORD, at: clock() })
    recorder.pats.set(created.id, { id: created.id, userId: probeUser.id, token: created.token, at: clock() })

    const ok = (answer: Answer, status: number) => answer.status === status
    /** Both replicas: a login, a session request and a PAT request through to the upstream. */
    const probeAll = async (): Promise<boolean> => {
      for (let replica = 0; replica < targets.length; replica++) {
        const login = await probe.call(replica, 'login', 'good', 'POST', '/auth/login', { json: { email: probeUser.email, password: PASSWORD } })
        const token = parse<{ token: string }>(login)?.token
        if (!ok(login, 200) || token === undefined) return false
        const user = { 'x-soak-user': probeUser.id }
        if (!ok(await probe.call(replica, 'session-get', 'good', 'GET', '/s/probe', { headers: { authorization: `Bearer ${token}`, ...user } }), 200)) return false
        if (!ok(await probe.call(replica, 'pat-get', 'good', 'GET', '/p/probe', { headers: { authorization: `Bearer ${probeUser.pat}`, ...user } }), 200)) return false
        // Logged out at once, so probes do not pile up sessions.
        await probe.call(replica, 'logout', 'good', 'POST', '/auth/logout', { headers: { authorization: `Bearer ${token}` } })
      }
      return true
    }
    const waitRecovered = async (deadline: number): Promise<number | null> => {
      for (;;) {
        if (await probeAll()) return clock()
        if (clock() > deadline) return null
        await sleep(200)
      }
    }
    if (!(await probeAll())) throw new SetupError('the replicas do not serve the probe user before any fault')

    // ---- traffic and faults -------------------------------------------------------------------
    const durationMs = opts.durationSec * 1000
    const downMs = Math.min(5_000, Math.max(2_000, Math.round(durationMs * 0.04)))
    const windows: FaultWindow[] = []
    let faultsDone = false
    const trafficStart = clock()
    const running = () => {
      const now = clock() - trafficStart
      if (now < durationMs || !faultsDone) return true
      const last = windows.at(-1)
      return last !== undefined && clock() < last.end + 1_000
    }
    const memorySamples = new Map<string, Array<{ at: number; rssKib: number }>>()
    const sample = (name: string, memory: { rssKib: number } | null) => {
      if (memory === null) return
      const samples = memorySamples.get(name) ?? []
      samples.push({ at: clock(), rssKib: memory.rssKib })
      memorySamples.set(name, samples)
    }
    const sampleMemory = () => {
      for (const replica of replicas) sample(replica.name, replica.memory())
      sample('soak', memoryOf(process.pid))
      privateRedis.sampleMemory()
    }
    const sampler = setInterval(sampleMemory, 1_000)

    const fault = async (kind: FaultWindow['kind'], stop: () => Promise<void>, restore: () => Promise<void>) => {
      const start = clock()
      await stop()
      await sleep(downMs)
      await restore()
      const restoredAt = clock()
      const recoveredAt = await waitRecovered(restoredAt + RECOVERY_LIMIT_MS)
      if (recoveredAt === null) note(`${kind}: the replicas did not recover within ${RECOVERY_LIMIT_MS / 1000} s`)
      else note(`${kind}: both replicas serve logins, sessions and PATs again, ${((recoveredAt - restoredAt) / 1000).toFixed(1)} s after the restore`)
      const window: FaultWindow = { kind, start, restoredAt, recoveredAt, end: recoveredAt === null ? restoredAt + RECOVERY_LIMIT_MS : recoveredAt + opts.graceMs }
      windows.push(window)
      timeline.push({ at: window.end, event: `${kind} fault window closes (${recoveredAt === null ? 'recovery limit' : `recovery + ${opts.graceMs / 1000} s grace`})` })
      return window
    }
    const untilTrafficTime = async (ms: number) => {
      const wait = trafficStart + ms - clock()
      if (wait > 0) await sleep(wait)
    }
    const faults = (async () => {
      try {
        await untilTrafficTime(durationMs * 0.15)
        const redisWindow = await fault(
          'redis',
          async () => {
            recorder.redisStops.push(clock())
            note('Redis killed (SIGKILL; no persistence: every session is lost)')
            await privateRedis.stop('SIGKILL')
          },
          async () => {
            await privateRedis.start()
            recorder.redisStarts.push(clock())
            note('Redis started again, empty')
          },
        )
        // Once the replicas have recovered from the first fault (its grace period may overlap this one).
        await untilTrafficTime(Math.max(durationMs * 0.55, (redisWindow.recoveredAt ?? redisWindow.end) - trafficStart))
        await fault(
          'upstream',
          async () => {
            note('upstream stops accepting connections (listener closed, open connections cut)')
            await upstream.stop()
          },
          async () => {
            await upstream.start(upstream.port)
            note(`upstream listens again on port ${upstream.port}`)
          },
        )
      } finally {
        faultsDone = true
      }
    })()

    note(`traffic starts: ${opts.virtualUsers} virtual users for ${opts.durationSec} s`)
    const users = Array.from({ length: opts.virtualUsers }, (_, i) => new VirtualUser(i, traffic, recorder, { running, thinkMs: opts.thinkMs }))
    await Promise.all([...users.map((user) => user.run()), faults])
    const trafficEnd = clock()
    note(`traffic stops after ${((trafficEnd - trafficStart) / 1000).toFixed(1)} s`)
    clearInterval(sampler)
    sampleMemory()

    // ---- what was acknowledged must still be there ----------------------------------------------
    const userList = [...recorder.users.values()]
    const userIds = userList.map((user) => user.id)
    const patList = [...recorder.pats.values()]
    const { presentUsers, patRows } = await withClient(soakDatabase.url, async (client) => {
      const u = await client.query<{ id: string }>('SELECT id::text AS id FROM users WHERE id = ANY($1::uuid[]) AND NOT disabled', [userIds])
      const p = await client.query<{ id: string; revoked: boolean }>(
        'SELECT id::text AS id, revoked_at IS NOT NULL AS revoked FROM personal_access_tokens WHERE id = ANY($1::uuid[])',
        [patList.map((pat) => pat.id)],
      )
      return { presentUsers: new Set(u.rows.map((row) => row.id)), patRows: new Map(p.rows.map((row) => [row.id, row.revoked])) }
    })
    // Users the soak deleted must be gone; those it tried to delete without an answer may be either.
    const kept = userList.filter((user) => user.deletedAt === undefined && user.deleteUncertainAt === undefined)
    const missingUsers = kept.filter((user) => !presentUsers.has(user.id)).map((user) => user.id)
    const deletedButPresent = userList.filter((user) => user.deletedAt !== undefined && presentUsers.has(user.id)).map((user) => user.id)
    const livePats = patList.filter((pat) => !pat.ownerGone)
    const missingPats = livePats.filter((pat) => !patRows.has(pat.id)).map((pat) => pat.id)
    const uncertain = livePats.filter((pat) => pat.revokedAt === undefined && pat.revokeUncertainAt !== undefined)
    const revokedUnexpectedly = livePats
      .filter((pat) => patRows.get(pat.id) === true && pat.revokedAt === undefined && pat.revokeUncertainAt === undefined)
      .map((pat) => pat.id)
    // And through the gateway: every unrevoked PAT once, every user logs in once.
    const refusedPats: string[] = []
    /** Wall-clock time each PAT was last used with success, just before the replicas stop. */
    const finalUse = new Map<string, number>()
    await pool(
      livePats.filter((pat) => pat.revokedAt === undefined && pat.revokeUncertainAt === undefined),
      8,
      async (pat, i) => {
        const sentAt = Date.now()
        const answer = await checks.call(i % targets.length, 'pat-get', 'good', 'GET', '/p/final', {
          headers: { authorization: `Bearer ${pat.token}`, 'x-soak-user': pat.userId },
        })
        if (answer.status !== 200) refusedPats.push(`${pat.id} (${answer.status || answer.error})`)
        else finalUse.set(pat.id, sentAt)
      },
    )
    const refusedUsers: string[] = []
    await pool(kept, 4, async (user, i) => {
      const login = (password: string) =>
        checks.call(i % targets.length, 'login', 'good', 'POST', '/auth/login', { json: { email: user.email, password } })
      let answer = await login(user.password)
      if (answer.status === 401 && user.altPassword !== undefined) answer = await login(user.altPassword)
      if (answer.status !== 200) refusedUsers.push(`${user.id} (${answer.status || answer.error})`)
    })
    note(`checked ${userIds.length} users and ${patList.length} PATs in the database and through the gateway`)

    // ---- memory, then SIGTERM --------------------------------------------------------------------
    const early = (name: string) => {
      const samples = memorySamples.get(name) ?? []
      const at = trafficStart + (trafficEnd - trafficStart) * 0.1
      return samples.find((s) => s.at >= at)?.rssKib ?? samples[0]?.rssKib ?? null
    }
    const last = (name: string) => memorySamples.get(name)?.at(-1)?.rssKib ?? null
    const memory: MemoryFigure[] = replicas.map((replica) => ({
      process: `replica ${replica.name} (gatehouse serve)`,
      peakMib: mibOf(replica.memory()?.peakKib),
      startMib: mibOf(early(replica.name)),
      endMib: mibOf(last(replica.name)),
    }))
    memory.push({ process: 'soak (clients, upstream)', peakMib: mibOf(process.resourceUsage().maxRSS), startMib: mibOf(early('soak')), endMib: mibOf(last('soak')) })
    privateRedis.sampleMemory()
    memory.push({ process: 'redis-server (peak over both lives)', peakMib: mibOf(privateRedis.peakKib), startMib: null, endMib: null })

    const crashedBefore = new Map(replicas.map((r) => [r.name, r.crashed]))
    const shutdown: ShutdownResult[] = await Promise.all(
      replicas.map(async (replica) => {
        const exit = await replica.terminate(SHUTDOWN_TIMEOUT_MS)
        return {
          replica: replica.name,
          pid: replica.pid,
          code: exit.code,
          signal: exit.signal,
          tookMs: exit.tookMs,
          killed: exit.killed,
          crashedBefore: crashedBefore.get(replica.name) ?? false,
        }
      }),
    )
    note(`replicas stopped: ${shutdown.map((s) => `${s.replica} ${s.code ?? s.signal}`).join(', ')}`)
    // Last-used times are written every 30 s and when a replica stops: the final uses, made
    // seconds before SIGTERM, must all be in the database now.
    const lastUsed = await withClient(soakDatabase.url, async (client) => {
      const result = await client.query<{ id: string; last_used_at: Date | null }>(
        'SELECT id::text AS id, last_used_at FROM personal_access_tokens WHERE id = ANY($1::uuid[])',
        [[...finalUse.keys()]],
      )
      return new Map(result.rows.map((row) => [row.id, row.last_used_at?.getTime() ?? null]))
    })
    const lastUseLost = [...finalUse].filter(([id, sentAt]) => (lastUsed.get(id) ?? 0) < sentAt - 1_000).map(([id]) => id)
    for (const replica of replicas) {
      if (replica.crashed || replica.exit?.code !== 0) log(`replica ${replica.name} output:\n${replica.output.text.slice(-5_000)}`)
    }

    // ---- report ------------------------------------------------------------------------------
    const report = buildReport({
      startedAt,
      durationSec: (trafficEnd - trafficStart) / 1000,
      plannedDurationSec: opts.durationSec,
      virtualUsers: opts.virtualUsers,
      thinkMs: opts.thinkMs,
      graceMs: opts.graceMs,
      replicas: replicas.map((r) => ({ name: r.name, url: r.url, pid: r.pid })),
      database: soakDatabase.name,
      redisPort: privateRedis.port,
      records: recorder.records,
      probeRequests: probe.sent,
      windows,
      timeline,
      upstreamViolations: upstream.violations,
      upstreamCounts: upstream.counts,
      clientViolations: recorder.violations,
      offContract: recorder.offContract,
      users: {
        acknowledged: userIds.length,
        deletedBySoak: userList.length - kept.length,
        missing: missingUsers,
        deletedButPresent,
        deleteFailed: userList.filter((user) => user.deleteUncertainAt !== undefined).length,
        deleteFailedButDeleted: userList.filter((user) => user.deleteUncertainAt !== undefined && !presentUsers.has(user.id)).map((user) => user.id),
        refusedAtEnd: refusedUsers,
      },
      pats: {
        acknowledged: patList.length,
        ownerDeleted: patList.length - livePats.length,
        revokedBySoak: patList.filter((pat) => pat.revokedAt !== undefined).length,
        missing: missingPats,
        revokedUnexpectedly,
        revokeFailed: uncertain.length,
        revokeFailedButRevoked: uncertain.filter((pat) => patRows.get(pat.id) === true).map((pat) => pat.id),
        finalUses: finalUse.size,
        lastUseLost,
        refusedAtEnd: refusedPats,
      },
      memory,
      shutdown,
    })
    await mkdir(opts.resultsDir, { recursive: true })
    await writeFile(path.join(opts.resultsDir, 'latest.json'), JSON.stringify(report.summary, null, 2) + '\n')
    await writeFile(path.join(opts.resultsDir, 'latest.md'), report.markdown)
    if (process.env.SOAK_RECORDS) {
      await writeFile(process.env.SOAK_RECORDS, recorder.records.map((record) => JSON.stringify(record)).join('\n') + '\n')
    }
    process.stdout.write(report.markdown)
    return report.ok ? 0 : 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    for (const [what, fn] of cleanup.reverse()) {
      await fn().catch((error: unknown) => log(`cleaning up the ${what} failed: ${(error as Error).message}`))
    }
  }
}

try {
  process.exitCode = await main()
} catch (error) {
  log(error instanceof SetupError ? `could not run: ${error.message}` : `failed: ${(error as Error).stack ?? String(error)}`)
  process.exitCode = 2
}
