/**
 * Turns what the soak recorded into its report: every request classified against the fault
 * windows, the figures that must be zero, and the tables printed and written to
 * soak/results/latest.{json,md}.
 */
import { SESSION_OPS, type ClientViolation, type Op, type RequestRecord } from './traffic.js'
import type { UpstreamCounts, Violation } from './upstream.js'

export interface FaultWindow {
  kind: 'redis' | 'upstream'
  /** Milliseconds since the start: the fault began. */
  start: number
  /** The dependency was back (Redis started, upstream listening again). */
  restoredAt: number
  /** Both replicas answered the probe again; null if they did not within the recovery limit. */
  recoveredAt: number | null
  /** The window closes: recovery plus the grace period (or the recovery limit). */
  end: number
}

export interface TimelineEvent {
  at: number
  event: string
}

export interface ShutdownResult {
  replica: string
  pid: number | undefined
  code: number | null
  signal: string | null
  tookMs: number
  killed: boolean
  crashedBefore: boolean
}

export interface MemoryFigure {
  process: string
  peakMib: number | null
  /** RSS once the users were set up, and at the end. */
  startMib: number | null
  endMib: number | null
}

export interface SoakInput {
  startedAt: string
  durationSec: number
  plannedDurationSec: number
  virtualUsers: number
  thinkMs: number
  graceMs: number
  replicas: Array<{ name: string; url: string; pid: number | undefined }>
  database: string
  redisPort: number
  records: RequestRecord[]
  probeRequests: number
  windows: FaultWindow[]
  timeline: TimelineEvent[]
  upstreamViolations: Violation[]
  upstreamCounts: UpstreamCounts
  clientViolations: ClientViolation[]
  offContract: ClientViolation[]
  users: {
    acknowledged: number
    /** Deleted by the soak (204), or attempted without an answer: not expected to be there. */
    deletedBySoak: number
    missing: string[]
    /** Deletions acknowledged (204) whose user is still in the database. */
    deletedButPresent: string[]
    /** Deletions answered 5xx or not at all… */
    deleteFailed: number
    /** …and those of them that did take effect. */
    deleteFailedButDeleted: string[]
    refusedAtEnd: string[]
  }
  pats: {
    acknowledged: number
    /** PATs whose owner the soak deleted: not checked. */
    ownerDeleted: number
    revokedBySoak: number
    missing: string[]
    revokedUnexpectedly: string[]
    /** Revocations answered 5xx or not at all (their outcome is unknown to the client)… */
    revokeFailed: number
    /** …and those of them that did take effect. */
    revokeFailedButRevoked: string[]
    /** PATs used once more just before SIGTERM… */
    finalUses: number
    /** …whose last use did not reach the database (last-used times are flushed at shutdown). */
    lastUseLost: string[]
    refusedAtEnd: string[]
  }
  memory: MemoryFigure[]
  shutdown: ShutdownResult[]
}

/** Statuses each operation should get outside the fault windows. */
const EXPECTED: Record<Op, readonly number[]> = {
  register: [201],
  login: [200],
  'pat-create': [201],
  'pat-revoke': [204],
  'session-get': [200],
  'pat-get': [200],
  'public-get': [200],
  'me-get': [200],
  logout: [204],
  'logged-out-use': [401],
  'revoked-pat-use': [401],
  'password-change': [204],
  'ended-session-use': [401],
  'user-delete': [204],
  'deleted-user-pat-use': [401],
  'deleted-user-session-use': [401],
  'bad-login-password': [401, 429],
  'bad-login-email': [401, 429],
  'bad-pat-malformed': [401],
  'bad-pat-unknown': [401],
  'bad-session-token': [401],
  'bad-session-cookie': [401],
  'no-credential': [401],
}

export type Phase = 'outside' | 'fault' | 'grace'

function overlaps(record: RequestRecord, from: number, to: number): boolean {
  return record.start <= to && record.end >= from
}

/** Where a request falls: during a fault (until recovery), in a grace period, or outside. */
export function phaseOf(record: RequestRecord, windows: readonly FaultWindow[]): { phase: Phase; window?: FaultWindow } {
  // The latest fault first: a request at the start of one fault may overlap the previous one's grace.
  for (const window of [...windows].reverse()) {
    if (overlaps(record, window.start, window.recoveredAt ?? window.end)) return { phase: 'fault', window }
  }
  for (const window of windows) {
    if (overlaps(record, window.start, window.end)) return { phase: 'grace', window }
  }
  return { phase: 'outside' }
}

const statusLabel = (record: RequestRecord) => (record.status === 0 ? `error ${record.error ?? ''}`.trim() : String(record.status))
const isFailure = (record: RequestRecord) => record.status === 0 || record.status >= 500

function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}

export interface MustBeZero {
  figure: string
  value: number
  of?: number
}

export interface SoakReport {
  ok: boolean
  mustBeZero: MustBeZero[]
  summary: Record<string, unknown>
  markdown: string
}

export function buildReport(input: SoakInput): SoakReport {
  const { records, windows } = input
  const replicaNames = input.replicas.map((r) => r.name)
  const byStatus: Record<string, number> = {}
  const byReplica: Array<Record<string, number>> = replicaNames.map(() => ({}))
  const byOp = new Map<Op, { statuses: Record<string, number>; latencies: number[] }>()
  const failuresOutside: RequestRecord[] = []
  const failuresGrace: Record<string, number> = {}
  const unexpectedOutside: Record<string, number> = {}
  const expectedLost: Record<string, number> = {}
  const inWindows = windows.map(() => ({} as Record<string, Record<string, number>>))
  const failureLatencies = windows.map(() => [] as number[])

  for (const record of records) {
    const label = statusLabel(record)
    bump(byStatus, label)
    const replicaStatuses = byReplica[record.replica]
    if (replicaStatuses) bump(replicaStatuses, label)
    let op = byOp.get(record.op)
    if (op === undefined) byOp.set(record.op, (op = { statuses: {}, latencies: [] }))
    bump(op.statuses, label)
    op.latencies.push(record.end - record.start)

    const { phase, window } = phaseOf(record, windows)
    if (window) {
      const slot = inWindows[windows.indexOf(window)]
      if (slot) bump((slot[record.op] ??= {}), label)
      if (isFailure(record)) failureLatencies[windows.indexOf(window)]?.push(record.end - record.start)
    }
    if (isFailure(record)) {
      if (phase === 'outside') failuresOutside.push(record)
      else if (phase === 'grace') bump(failuresGrace, `${record.op} ${label}`)
      continue
    }
    const expected = EXPECTED[record.op].includes(record.status)
    const lost = record.status === 401 && record.stale === true && SESSION_OPS.has(record.op)
    if (lost) bump(expectedLost, record.op)
    if (!expected && !lost && phase === 'outside') bump(unexpectedOutside, `${record.op} → ${label}`)
  }

  const crashed = input.shutdown.filter((s) => s.crashedBefore || s.code !== 0 || s.killed)
  const unrecovered = windows.filter((w) => w.recoveredAt === null)
  const mustBeZero: MustBeZero[] = [
    { figure: 'requests that reached an upstream without valid credentials', value: input.upstreamViolations.length },
    { figure: 'invalid credentials the gateway accepted (2xx)', value: input.clientViolations.length },
    { figure: '5xx or no answer outside the fault windows', value: failuresOutside.length, of: records.length },
    { figure: 'users acknowledged (201) then missing', value: input.users.missing.length, of: input.users.acknowledged },
    { figure: 'users deleted (204) yet still there', value: input.users.deletedButPresent.length, of: input.users.deletedBySoak },
    {
      figure: 'PATs acknowledged (201) then missing or revoked without being asked',
      value: input.pats.missing.length + input.pats.revokedUnexpectedly.length,
      of: input.pats.acknowledged,
    },
    { figure: 'replicas that crashed or did not exit 0 on SIGTERM', value: crashed.length, of: input.replicas.length },
    { figure: 'faults the replicas did not recover from within the limit', value: unrecovered.length, of: windows.length },
    { figure: 'error answers off the contract (JSON shape, Retry-After, no upstream address in 5xx)', value: input.offContract.length },
  ]
  const ok = mustBeZero.every((m) => m.value === 0)

  const s = (ms: number) => (ms / 1000).toFixed(1)
  const mib = (value: number | null) => (value === null ? 'n/a' : `${value}`)
  const statusKeys = Object.keys(byStatus).sort()
  const ops = [...byOp.entries()].sort((a, b) => sum(b[1].statuses) - sum(a[1].statuses))
  const lines: string[] = []
  lines.push(`# Gatehouse soak: ${ok ? 'PASS' : 'FAIL'}`)
  lines.push('')
  lines.push(
    `${input.startedAt}: ${input.durationSec.toFixed(1)} s of traffic (planned ${input.plannedDurationSec} s), ` +
      `${input.virtualUsers} virtual users (think time ~${input.thinkMs} ms), ${input.replicas.length} \`gatehouse serve\` replicas ` +
      `on PostgreSQL database ${input.database} and a private Redis on port ${input.redisPort}; Node ${process.version}.`,
  )
  lines.push(
    `${records.length} requests (${Math.round(records.length / Math.max(1, input.durationSec))}/s), ` +
      `plus ${input.probeRequests} fault-recovery probes; the upstream verified ${input.upstreamCounts.verified} identities` +
      (input.upstreamCounts.jwksUnavailable > 0 ? ` (${input.upstreamCounts.jwksUnavailable} not checked: JWKS unavailable)` : '') +
      '.',
  )
  lines.push('')
  lines.push('| must be zero | value |')
  lines.push('| --- | ---: |')
  for (const m of mustBeZero) lines.push(`| ${m.figure} | ${m.value}${m.of === undefined ? '' : ` of ${m.of}`} |`)
  lines.push('')
  lines.push('## Requests by status')
  lines.push('')
  lines.push(`| status | total | ${replicaNames.map((n) => `replica ${n}`).join(' | ')} |`)
  lines.push(`| --- | ---: | ${replicaNames.map(() => '---:').join(' | ')} |`)
  for (const key of statusKeys) lines.push(`| ${key} | ${byStatus[key]} | ${byReplica.map((r) => r[key] ?? 0).join(' | ')} |`)
  lines.push(`| all | ${records.length} | ${byReplica.map((r) => sum(r)).join(' | ')} |`)
  lines.push('')
  lines.push('## Requests by operation')
  lines.push('')
  lines.push('| operation | sent | statuses | p50 ms | p99 ms |')
  lines.push('| --- | ---: | --- | ---: | ---: |')
  for (const [op, data] of ops) {
    const sorted = [...data.latencies].sort((a, b) => a - b)
    lines.push(
      `| ${op} | ${sum(data.statuses)} | ${formatCounts(data.statuses)} | ${percentile(sorted, 50).toFixed(1)} | ${percentile(sorted, 99).toFixed(1)} |`,
    )
  }
  lines.push('')
  lines.push('## Fault timeline')
  lines.push('')
  lines.push('| t (s) | event |')
  lines.push('| ---: | --- |')
  for (const event of [...input.timeline].sort((a, b) => a.at - b.at)) lines.push(`| ${s(event.at)} | ${event.event} |`)
  lines.push('')
  lines.push(`Fault windows run from the fault to the replicas' recovery plus ${input.graceMs / 1000} s of grace; a request counts in one when its time overlaps it.`)
  lines.push('')
  lines.push('| fault | window (s) | down for | recovered after restore | 5xx answered in (p50 / p99 ms) | what the clients got inside the window |')
  lines.push('| --- | --- | ---: | ---: | ---: | --- |')
  windows.forEach((window, index) => {
    const slot = inWindows[index] ?? {}
    const what = Object.entries(slot)
      .sort((a, b) => sum(b[1]) - sum(a[1]))
      .map(([op, counts]) => `${op}: ${formatCounts(counts)}`)
      .join('; ')
    const recovered = window.recoveredAt === null ? 'not recovered' : `${s(window.recoveredAt - window.restoredAt)} s`
    const latencies = [...(failureLatencies[index] ?? [])].sort((a, b) => a - b)
    const fast = `${percentile(latencies, 50).toFixed(0)} / ${percentile(latencies, 99).toFixed(0)}`
    lines.push(`| ${window.kind} | ${s(window.start)}–${s(window.end)} | ${s(window.restoredAt - window.start)} s | ${recovered} | ${fast} | ${what} |`)
  })
  lines.push('')
  lines.push(`Session requests answered 401 because their session was lost with Redis (expected; the client logs in again): ${formatCounts(expectedLost) || 'none'}.`)
  lines.push(`5xx or no answer in the grace periods (after recovery): ${formatCounts(failuresGrace) || 'none'}.`)
  lines.push(`Unexpected answers outside the fault windows (not 5xx): ${formatCounts(unexpectedOutside) || 'none'}.`)
  lines.push('')
  lines.push('## Acknowledged creations, checked at the end')
  lines.push('')
  lines.push('| | acknowledged | missing in the database | refused through the gateway at the end |')
  lines.push('| --- | ---: | ---: | ---: |')
  lines.push(
    `| users (201 from register) | ${input.users.acknowledged} (${input.users.deletedBySoak} deleted by the soak) | ` +
      `${input.users.missing.length} (+${input.users.deletedButPresent.length} deleted yet there) | ${input.users.refusedAtEnd.length} (login) |`,
  )
  lines.push(
    `| PATs (201 from POST /auth/tokens) | ${input.pats.acknowledged} (${input.pats.revokedBySoak} revoked by the soak, ` +
      `${input.pats.ownerDeleted} of deleted users) | ` +
      `${input.pats.missing.length} (+${input.pats.revokedUnexpectedly.length} revoked unasked) | ${input.pats.refusedAtEnd.length} (unrevoked ones used once) |`,
  )
  lines.push('')
  lines.push(
    `Last-used times: ${input.pats.finalUses - input.pats.lastUseLost.length} of the ${input.pats.finalUses} PATs used just before SIGTERM ` +
      `have that use in the database after the replicas stopped.`,
  )
  if (input.users.deleteFailed > 0) {
    lines.push('')
    lines.push(
      `User deletions (DELETE /auth/me) answered 5xx or not at all: ${input.users.deleteFailed}, of which ` +
        `${input.users.deleteFailedButDeleted.length} took effect nonetheless (not counted as missing).`,
    )
  }
  if (input.pats.revokeFailed > 0) {
    lines.push('')
    lines.push(
      `PAT revocations answered 5xx or not at all: ${input.pats.revokeFailed}, of which ${input.pats.revokeFailedButRevoked.length} ` +
        `took effect nonetheless (not counted as missing; not used again).`,
    )
  }
  lines.push('')
  lines.push('## Memory and shutdown')
  lines.push('')
  lines.push('| process | peak RSS (VmHWM, MiB) | RSS after setup (MiB) | RSS at the end (MiB) |')
  lines.push('| --- | ---: | ---: | ---: |')
  for (const m of input.memory) lines.push(`| ${m.process} | ${mib(m.peakMib)} | ${mib(m.startMib)} | ${mib(m.endMib)} |`)
  lines.push('')
  lines.push('| replica | SIGTERM → exit | took | crashed before |')
  lines.push('| --- | --- | ---: | --- |')
  for (const r of input.shutdown) {
    const exit = r.code !== null ? `exit ${r.code}` : `signal ${r.signal}`
    lines.push(`| ${r.replica} (pid ${r.pid}) | ${exit}${r.killed ? ' (SIGKILLed after timeout)' : ''} | ${r.tookMs} ms | ${r.crashedBefore ? 'yes' : 'no'} |`)
  }
  const details: string[] = []
  if (input.upstreamViolations.length > 0) {
    details.push('', '## Requests that reached the upstream without valid credentials (first 20)', '')
    for (const v of input.upstreamViolations.slice(0, 20)) details.push(`- ${s(v.at)} s ${v.route} ${v.path} intent=${v.intent} request-id=${v.requestId}: ${v.reason}`)
  }
  if (input.clientViolations.length > 0) {
    details.push('', '## Invalid credentials accepted (first 20)', '')
    for (const v of input.clientViolations.slice(0, 20)) details.push(`- ${s(v.at)} s ${v.op} on replica ${replicaNames[v.replica]}: ${v.status} ${v.detail}`)
  }
  if (input.offContract.length > 0) {
    details.push('', '## Error answers off the contract (first 20)', '')
    for (const v of input.offContract.slice(0, 20)) details.push(`- ${s(v.at)} s ${v.op} on replica ${replicaNames[v.replica]}: ${v.status} ${v.detail}`)
  }
  if (failuresOutside.length > 0) {
    details.push('', '## 5xx or no answer outside the fault windows (first 20)', '')
    for (const r of failuresOutside.slice(0, 20)) {
      details.push(`- ${s(r.start)}–${s(r.end)} s ${r.op} on replica ${replicaNames[r.replica]}: ${statusLabel(r)}`)
    }
  }
  for (const [what, ids] of [
    ['missing users', input.users.missing],
    ['users deleted yet still there', input.users.deletedButPresent],
    ['users refused at the end', input.users.refusedAtEnd],
    ['PATs refused at the end', input.pats.refusedAtEnd],
    ['missing PATs', input.pats.missing],
    ['PATs revoked without being asked', input.pats.revokedUnexpectedly],
  ] as const) {
    if (ids.length > 0) details.push('', `## ${what}`, '', ids.slice(0, 50).join(', '))
  }
  lines.push(...details)

  const summary = {
    ok,
    started_at: input.startedAt,
    duration_s: Number(input.durationSec.toFixed(1)),
    planned_duration_s: input.plannedDurationSec,
    virtual_users: input.virtualUsers,
    think_ms: input.thinkMs,
    grace_ms: input.graceMs,
    node: process.version,
    replicas: input.replicas,
    database: input.database,
    requests: records.length,
    probe_requests: input.probeRequests,
    must_be_zero: mustBeZero,
    by_status: byStatus,
    by_replica: Object.fromEntries(replicaNames.map((name, i) => [name, byReplica[i]])),
    by_operation: Object.fromEntries(
      ops.map(([op, data]) => {
        const sorted = [...data.latencies].sort((a, b) => a - b)
        return [op, { statuses: data.statuses, p50_ms: percentile(sorted, 50), p99_ms: percentile(sorted, 99) }]
      }),
    ),
    windows: windows.map((w, i) => ({ ...w, statuses: inWindows[i] })),
    timeline: input.timeline,
    sessions_lost_with_redis: expectedLost,
    failures_in_grace: failuresGrace,
    unexpected_outside_windows: unexpectedOutside,
    failures_outside_windows: failuresOutside.slice(0, 100),
    upstream: input.upstreamCounts,
    upstream_violations: input.upstreamViolations.slice(0, 100),
    client_violations: input.clientViolations.slice(0, 100),
    off_contract: input.offContract.slice(0, 100),
    users: input.users,
    pats: input.pats,
    memory: input.memory,
    shutdown: input.shutdown,
  }
  return { ok, mustBeZero, summary, markdown: lines.join('\n') + '\n' }
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0)
}

function formatCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([key, count]) => `${key} ×${count}`)
    .join(', ')
}
