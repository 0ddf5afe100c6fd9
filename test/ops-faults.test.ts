/**
 * Faults (SPEC §7) against real processes: a private redis-server stalled, killed and
 * restarted under a running gateway; the database switched to a closed port and to a
 * server that accepts connections and never answers; upstreams that refuse, hang, flap
 * and answer 500. For each: the status codes, fast failure once the breaker is open (the
 * times are reported with t.comment, never asserted), recovery when the dependency returns,
 * and no request that needed a credential let through while it could not be checked.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import net, { type AddressInfo, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { BreakerRegistry } from '../src/resilience/breaker-registry.js'
import { DEFAULT_BREAKER_OPTIONS, type BreakerState } from '../src/resilience/circuit-breaker.js'
import { RedisKeyValueStore } from '../src/kv/redis.js'
import type { Database, Queryable, QueryResult } from '../src/storage/database.js'
import { PgDatabase } from '../src/storage/pg.js'
import { openDatabase } from '../src/storage/open.js'
import { assertCode } from './helpers/assert-code.js'
import { bearer, browser, login, PASSWORD, register, signUp, uniqueEmail } from './helpers/auth-client.js'
import { databaseBackends } from './helpers/backends.js'
import { startTestGateway, type RawConfig, type Response, type TestGateway } from './helpers/gateway.js'
import { freePort, haveRedisServer, startPrivateRedis } from './helpers/private-redis.js'
import { startUpstream, type RecordingUpstream } from './helpers/upstream.js'

/** Short, so that recovery is quick: the breaker lets a probe through this long after opening. */
const RESET_MS = 700
/** SPEC §7: an upstream's breaker opens after at most this many failures in a row. */
const SPEC_MAX_IN_A_ROW = 20

function shortBreakers(): BreakerRegistry {
  return new BreakerRegistry({ resetTimeoutMs: RESET_MS })
}

interface Timed {
  response: Response
  ms: number
}

async function timed(call: () => Promise<Response>): Promise<Timed> {
  const started = performance.now()
  const response = await call()
  return { response, ms: Math.round((performance.now() - started) * 10) / 10 }
}

function breakerState(gw: TestGateway, name: string): BreakerState | undefined {
  return gw.runtime.breakers.all().find((b) => b.name === name)?.state
}

/** The value of gatehouse_circuit_state{breaker=name} in the Prometheus exposition. */
async function circuitMetric(gw: TestGateway, name: string): Promise<number | undefined> {
  const text = await gw.metrics.exposition()
  const line = text.split('\n').find((l) => l.startsWith(`gatehouse_circuit_state{breaker="${name}"}`))
  return line === undefined ? undefined : Number(line.split(' ').at(-1))
}

/** A 503 GH_UNAVAILABLE with a Retry-After of at least one second. */
function assertUnavailable(t: Test, response: Response, what: string): void {
  assertCode(t, response, 503, 'GH_UNAVAILABLE', what)
  const retryAfter = Number(response.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `${what}: Retry-After ${String(response.headers['retry-after'])}`)
}

/**
 * Sends `call` until the breaker `name` is open, at most `max` times; every answer goes to
 * `check`. Returns the answers with their times.
 */
async function failUntilOpen(
  t: Test,
  gw: TestGateway,
  name: string,
  call: () => Promise<Response>,
  check: (response: Response, attempt: number) => void,
  max = SPEC_MAX_IN_A_ROW,
): Promise<Timed[]> {
  const answers: Timed[] = []
  while (breakerState(gw, name) !== 'open' && answers.length < max) {
    const answer = await timed(call)
    answers.push(answer)
    check(answer.response, answers.length)
  }
  t.equal(breakerState(gw, name), 'open', `the ${name} breaker opened after ${answers.length} failures (at most ${max})`)
  return answers
}

/** Retries `call` until `done` accepts its answer or the deadline passes; returns every answer. */
async function pollUntil(call: () => Promise<Response>, done: (r: Response) => boolean, timeoutMs = 15_000): Promise<Response[]> {
  const deadline = Date.now() + timeoutMs
  const answers: Response[] = []
  for (;;) {
    const response = await call()
    answers.push(response)
    if (done(response) || Date.now() > deadline) return answers
    await sleep(50)
  }
}

function times(answers: readonly Timed[]): string {
  return answers.map((a) => `${a.ms}`).join(', ')
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}

/** Upstream requests whose path starts with `prefix`. */
function reached(upstream: RecordingUpstream, prefix: string): number {
  return upstream.received.filter((r) => r.url.startsWith(prefix)).length
}

function sessionAndPublicRoutes(upstream: RecordingUpstream) {
  return (raw: RawConfig) => {
    raw.routes = [
      { name: 'app', match: '/app', upstream: upstream.url, auth: 'required' },
      { name: 'maybe', match: '/maybe', upstream: upstream.url, auth: 'optional' },
      { name: 'pat', match: '/pat', upstream: upstream.url, auth: 'required' },
      { name: 'pub', match: '/pub', upstream: upstream.url, auth: 'public' },
      { name: 'limited', match: '/limited', upstream: upstream.url, auth: 'public', rate_limit: { max: 3, window: '1m', key: 'ip' } },
    ]
  }
}

async function createPat(gw: TestGateway, session: string, name: string): Promise<string> {
  const response = await gw.call('POST', '/auth/tokens', { json: { name }, headers: bearer(session) })
  if (response.status !== 201) throw new Error(`POST /auth/tokens: ${response.status} ${response.text}`)
  return response.json<{ token: string }>().token
}

// ---- Session store ------------------------------------------------------------------------

const redisServer = haveRedisServer('the session store fault test')

t.test(
  'session store: a private redis-server stalled, then killed, then restarted',
  { skip: redisServer ? false : 'redis-server is not on PATH' },
  async (t) => {
    const redis = await startPrivateRedis(t)
    // A command unanswered for 400 ms fails: what a stalled Redis costs a request before the breaker opens.
    const store = await RedisKeyValueStore.open({ url: redis.url, keyPrefix: 'faults:', connectTimeoutMs: 2_000, commandTimeoutMs: 400 })
    t.teardown(() => store.close())
    const upstream = await startUpstream(t)
    const gw = await startTestGateway(t, { store, breakers: shortBreakers(), configure: sessionAndPublicRoutes(upstream) })
    const email = uniqueEmail('faults-redis')
    await register(gw, email)
    const alice = await login(gw, email)
    t.equal((await gw.call('GET', '/app/before', { headers: bearer(alice.token) })).status, 200, 'the session works while Redis is up')
    const pat = await createPat(gw, alice.token, 'faults-redis')
    const appBefore = reached(upstream, '/app') + reached(upstream, '/maybe')
    const withSession = () => gw.call('GET', '/app/x', { headers: bearer(alice.token) })
    const credentialed: Response[] = []

    // Stalled: the server holds the connection and answers nothing, so each command waits for its timeout.
    redis.stall()
    const opening = await failUntilOpen(t, gw, 'sessions', withSession, (r, i) => {
      credentialed.push(r)
      assertUnavailable(t, r, `stalled Redis, session request ${i}`)
    })
    const open: Timed[] = []
    for (let i = 0; i < 5; i++) open.push(await timed(withSession))
    for (const [i, a] of open.entries()) assertUnavailable(t, a.response, `breaker open, session request ${i + 1}`)
    credentialed.push(...open.map((a) => a.response))
    t.comment(`session store stalled: first failure ${opening[0]?.ms} ms, failures until open: ${times(opening)} ms`)
    t.comment(`session store stalled, breaker open: ${times(open)} ms (median ${median(open.map((a) => a.ms))} ms)`)
    t.equal(await circuitMetric(gw, 'sessions'), 2, 'gatehouse_circuit_state{breaker="sessions"} is 2 (open)')

    // Killed: connections drop and the port is closed.
    await redis.stop()
    const cookieRequired = await gw.call('GET', '/app/cookie', { headers: browser(gw, alice.token) })
    assertUnavailable(t, cookieRequired, 'a session cookie on a required route')
    const cookieOptional = await gw.call('GET', '/maybe/cookie', { headers: browser(gw, alice.token) })
    assertUnavailable(t, cookieOptional, 'a session cookie on an optional route (not passed on as anonymous)')
    const bearerOptional = await gw.call('GET', '/maybe/bearer', { headers: bearer(alice.token) })
    assertUnavailable(t, bearerOptional, 'a session bearer on an optional route')
    credentialed.push(cookieRequired, cookieOptional, bearerOptional)
    assertUnavailable(t, await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } }), 'login (no session can be stored)')
    // A PAT is checked against the database, not the session store.
    t.equal((await gw.call('GET', '/pat/x', { headers: bearer(pat) })).status, 200, 'a PAT still works')
    const anonymous = await gw.call('GET', '/app/anonymous')
    assertCode(t, anonymous, 401, 'GH_UNAUTHENTICATED', 'no credential on a required route: still 401, not let through')
    const publicAnswers: number[] = []
    for (let i = 0; i < 3; i++) publicAnswers.push((await gw.call('GET', '/pub/x')).status)
    t.same(publicAnswers, [200, 200, 200], 'a public route keeps working')
    // Past the reset timeout the next call is a probe, which fails at once on the closed port.
    await sleep(RESET_MS + 100)
    const probe = await timed(withSession)
    assertUnavailable(t, probe.response, 'the probe against a dead Redis')
    credentialed.push(probe.response)
    t.comment(`session store killed: probe (closed port) ${probe.ms} ms`)
    const limited: number[] = []
    for (let i = 0; i < 5; i++) limited.push((await gw.call('GET', '/limited/x')).status)
    t.same(limited, [200, 200, 200, 429, 429], 'the rate limit holds, counted in this replica')
    t.equal(reached(upstream, '/app') + reached(upstream, '/maybe'), appBefore, 'no session-authenticated request reached the upstream')

    // Back, but empty (no persistence): the old session is gone, so it is refused, never let through.
    await redis.restart()
    const backAt = Date.now()
    const polls = await pollUntil(withSession, (r) => r.status !== 503)
    const last = polls.at(-1)
    t.comment(`session store restarted: answered again after ${Date.now() - backAt} ms and ${polls.length} requests`)
    t.same(
      [...new Set(polls.slice(0, -1).map((r) => r.status))].filter((s) => s !== 503),
      [],
      'only 503 while the store was still unreachable',
    )
    if (last !== undefined) assertCode(t, last, 401, 'GH_UNAUTHENTICATED', 'the session did not survive a restart without persistence')
    credentialed.push(...polls)
    const again = await login(gw, email)
    const fresh = await gw.call('GET', '/app/after', { headers: bearer(again.token) })
    t.equal(fresh.status, 200, 'a new login works once Redis is back')
    t.equal(breakerState(gw, 'sessions'), 'closed')
    t.equal(await circuitMetric(gw, 'sessions'), 0, 'gatehouse_circuit_state{breaker="sessions"} is 0 again')
    t.same(
      credentialed.filter((r) => r.status >= 200 && r.status < 300).length,
      0,
      `none of the ${credentialed.length} credentialed requests made while the session could not be checked got a 2xx`,
    )
    t.equal(upstream.last().url, '/app/after')
  },
)

// ---- Database -----------------------------------------------------------------------------

/** A pass-through to one database or another, switched under a running gateway. */
class SwitchableDatabase implements Database {
  target: Database
  readonly #healthy: Database

  constructor(healthy: Database) {
    this.#healthy = healthy
    this.target = healthy
  }

  get kind(): Database['kind'] {
    return this.#healthy.kind
  }

  restore(): void {
    this.target = this.#healthy
  }

  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    return this.target.query<Row>(sql, params)
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.target.transaction(fn)
  }

  ping(): Promise<void> {
    return this.target.ping()
  }

  /** The healthy database belongs to the test's backend, which closes it. */
  close(): Promise<void> {
    return Promise.resolve()
  }
}

/** A TCP server that accepts connections and never says a word: a hung database server. */
async function startBlackhole(t: Test): Promise<{ port: number; connections: () => number }> {
  const sockets = new Set<Socket>()
  let connections = 0
  const server = net.createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    server.close()
    await once(server, 'close')
  })
  return { port: (server.address() as AddressInfo).port, connections: () => connections }
}

for (const backend of databaseBackends()) {
  t.test(`database (${backend.name}): at a closed port, then hung, then back`, async (t) => {
    const real = await backend.open(t)
    const db = new SwitchableDatabase(real)
    const upstream = await startUpstream(t)
    const gw = await startTestGateway(t, { db, breakers: shortBreakers(), configure: sessionAndPublicRoutes(upstream) })
    const email = uniqueEmail('faults-db')
    await register(gw, email)
    const alice = await login(gw, email)
    const cachedPat = await createPat(gw, alice.token, 'cached')
    const uncachedPats: string[] = []
    for (let i = 0; i < 5; i++) uncachedPats.push(await createPat(gw, alice.token, `uncached-${i}`))
    const [uncachedPat = ''] = uncachedPats
    t.equal((await gw.call('GET', '/app/cached-warm', { headers: bearer(cachedPat) })).status, 200, 'the first PAT is used once: now cached')
    // Bob logs in and makes no request with his session: nothing about him is cached.
    const bobEmail = uniqueEmail('faults-db-bob')
    await register(gw, bobEmail)
    const bob = await login(gw, bobEmail)
    /** /app requests that reached the upstream other than those of cached credentials (/app/cached…). */
    const uncachedReached = () => reached(upstream, '/app') - reached(upstream, '/app/cached')
    const appBefore = uncachedReached()

    // The real pg pool, on a port nothing listens on (connection refused).
    const closed = await openDatabase(`postgres://postgres@127.0.0.1:${await freePort()}/test`)
    t.teardown(() => closed.close())
    db.target = closed
    const refusedAttempts: Timed[] = []
    const credentialed: Response[] = []
    const loginDown = await timed(() => gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } }))
    assertUnavailable(t, loginDown.response, 'login with the database down')
    const registerDown = await timed(() => gw.call('POST', '/auth/register', { json: { email: uniqueEmail('faults-db-new'), password: PASSWORD } }))
    assertUnavailable(t, registerDown.response, 'register with the database down')
    refusedAttempts.push(loginDown, registerDown)
    const withUncachedPat = () => gw.call('GET', '/app/pat', { headers: bearer(uncachedPat) })
    if (breakerState(gw, 'database') !== 'open') {
      refusedAttempts.push(
        ...(await failUntilOpen(t, gw, 'database', withUncachedPat, (r, i) => {
          credentialed.push(r)
          assertUnavailable(t, r, `an uncached PAT with the database down (${i})`)
        })),
      )
    }
    t.equal(breakerState(gw, 'database'), 'open', `the database breaker opened after ${refusedAttempts.length} failed requests`)
    t.comment(`database at a closed port: login ${loginDown.ms} ms, register ${registerDown.ms} ms; until open: ${times(refusedAttempts)} ms`)

    const open: Timed[] = []
    for (const call of [
      () => gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } }),
      () => gw.call('POST', '/auth/register', { json: { email: uniqueEmail('faults-db-new'), password: PASSWORD } }),
      withUncachedPat,
      () => gw.call('GET', '/app/session', { headers: bearer(bob.token) }),
      () => gw.call('GET', '/app/cookie', { headers: browser(gw, bob.token) }),
    ]) {
      open.push(await timed(call))
    }
    const [loginOpen, registerOpen, patOpen, sessionOpen, cookieOpen] = open.map((a) => a.response)
    if (loginOpen && registerOpen && patOpen && sessionOpen && cookieOpen) {
      assertUnavailable(t, loginOpen, 'login, breaker open')
      assertUnavailable(t, registerOpen, 'register, breaker open')
      assertUnavailable(t, patOpen, 'an uncached PAT, breaker open')
      assertUnavailable(t, sessionOpen, 'a session whose user was not checked yet, breaker open')
      assertUnavailable(t, cookieOpen, 'the same session as a cookie, breaker open')
      credentialed.push(patOpen, sessionOpen, cookieOpen)
    }
    t.comment(`database breaker open: login, register, uncached PAT, session, cookie: ${times(open)} ms`)
    t.equal(await circuitMetric(gw, 'database'), 2, 'gatehouse_circuit_state{breaker="database"} is 2 (open)')
    t.equal((await gw.call('GET', '/pub/x')).status, 200, 'a public route keeps working')
    // SPEC §7 names uncached PAT checks: a PAT this replica verified moments ago stays valid from its cache.
    t.equal((await gw.call('GET', '/app/cached-pat', { headers: bearer(cachedPat) })).status, 200, 'a cached PAT still works')
    // Alice's session is in the store and her user was read moments ago (by POST /auth/tokens): whether
    // that read is cached is the core's choice, but it is either served (200) or refused (503).
    const aliceSession = await gw.call('GET', '/app/cached-user-session', { headers: bearer(alice.token) })
    t.ok([200, 503].includes(aliceSession.status), `a session whose user was checked moments ago: ${aliceSession.status}`)
    t.comment(`database down: a session whose user was checked moments ago gets ${aliceSession.status}`)
    t.equal(uncachedReached(), appBefore, 'no request with an uncached credential reached the upstream')

    // Hung: the server accepts connections and never answers, so each connect waits for its timeout.
    const hole = await startBlackhole(t)
    const hung = new PgDatabase({ connectionString: `postgres://postgres@127.0.0.1:${hole.port}/test`, connectionTimeoutMs: 500 })
    t.teardown(() => hung.close())
    db.target = hung
    await sleep(RESET_MS + 100)
    // One probe goes through (and waits for the connect timeout); the others are refused at once.
    // Distinct PATs: concurrent checks of one PAT share one lookup.
    const concurrent = await Promise.all(
      uncachedPats.slice(1).map((pat, i) => timed(() => gw.call('GET', `/app/concurrent-${i}`, { headers: bearer(pat) }))),
    )
    for (const [i, a] of concurrent.entries()) assertUnavailable(t, a.response, `concurrent request ${i} while the probe hangs`)
    credentialed.push(...concurrent.map((a) => a.response))
    t.equal(hole.connections(), 1, 'one probe reached the hung database')
    t.comment(`database hung, half-open: ${concurrent.length} concurrent requests answered in ${times(concurrent)} ms (one is the probe: 500 ms connect timeout)`)
    const hungOpen: Timed[] = []
    for (let i = 0; i < 3; i++) hungOpen.push(await timed(withUncachedPat))
    for (const a of hungOpen) assertUnavailable(t, a.response, 'hung database, breaker open again')
    credentialed.push(...hungOpen.map((a) => a.response))
    t.comment(`database hung, breaker open again: ${times(hungOpen)} ms`)
    t.equal(hole.connections(), 1, 'nothing else reached it while the breaker was open')
    t.equal(uncachedReached(), appBefore, 'still nothing with an uncached credential reached the upstream')

    // Back.
    db.restore()
    const backAt = Date.now()
    const polls = await pollUntil(withUncachedPat, (r) => r.status !== 503)
    t.comment(`database back: the uncached PAT worked again after ${Date.now() - backAt} ms and ${polls.length} requests`)
    t.equal(polls.at(-1)?.status, 200, 'the uncached PAT works once the database is back')
    t.same(polls.slice(0, -1).filter((r) => r.status !== 503).length, 0, 'only 503 before that')
    t.equal((await gw.call('GET', '/app/bob', { headers: bearer(bob.token) })).status, 200, "Bob's session works again")
    t.equal((await gw.call('POST', '/auth/register', { json: { email: uniqueEmail('faults-db-back'), password: PASSWORD } })).status, 201, 'register works again')
    t.equal((await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })).status, 200, 'login works again')
    t.equal(await circuitMetric(gw, 'database'), 0, 'gatehouse_circuit_state{breaker="database"} is 0 again')
    t.equal(
      credentialed.filter((r) => r.status >= 200 && r.status < 300).length,
      0,
      `none of the ${credentialed.length} requests whose credential could not be checked got a 2xx`,
    )
  })
}

// ---- Upstreams ----------------------------------------------------------------------------

interface TestUpstream {
  url: string
  port: number
  /** Connections accepted and requests received. */
  connections: number
  requests: number
  /** What the next request gets: an answer, a dropped connection, silence, or a 500. */
  mode: 'ok' | 'drop' | 'hang' | 'error' | 'slow'
}

/** How long a `slow` upstream takes to answer. */
const SLOW_MS = 700

/** A node:http upstream whose behaviour the test switches; counts every contact. */
async function startTestUpstream(t: Test, mode: TestUpstream['mode'], port = 0): Promise<TestUpstream> {
  const state: TestUpstream = { url: '', port: 0, connections: 0, requests: 0, mode }
  const server: Server = createServer((request, response) => {
    state.requests++
    request.resume()
    switch (state.mode) {
      case 'ok':
        response.writeHead(200, { 'content-type': 'application/json' })
        response.end(JSON.stringify({ ok: true, url: request.url }))
        return
      case 'error':
        response.writeHead(500, { 'content-type': 'application/json', 'x-upstream': 'yes' })
        response.end(JSON.stringify({ upstream: 'broke' }))
        return
      case 'drop':
        request.socket.destroy()
        return
      case 'hang':
        return
      case 'slow':
        setTimeout(() => {
          response.writeHead(200, { 'content-type': 'application/json' })
          response.end(JSON.stringify({ ok: true, late: true }))
        }, SLOW_MS)
        return
    }
  })
  server.on('connection', () => state.connections++)
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  })
  state.port = (server.address() as AddressInfo).port
  state.url = `http://127.0.0.1:${state.port}`
  return state
}

function assertNoAddress(t: Test, response: Response, port: number, what: string): void {
  t.notMatch(response.text, new RegExp(`127\\.0\\.0\\.1|:${port}\\b|ECONN`), `${what}: the body names no address or socket error`)
}

t.test(
  'session store down: registering needs only the database and still works; the per-IP login limit counts in the process',
  { skip: redisServer ? false : 'redis-server is not on PATH' },
  async (t) => {
    const redis = await startPrivateRedis(t)
    const store = await RedisKeyValueStore.open({ url: redis.url, keyPrefix: 'faults-register:', connectTimeoutMs: 2_000, commandTimeoutMs: 400 })
    t.teardown(() => store.close())
    const gw = await startTestGateway(t, {
      store,
      breakers: shortBreakers(),
      configure: (raw) => {
        raw.auth.login_rate_limit = { max: 3, window: '1m' }
      },
    })
    await redis.stop()
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) {
      statuses.push((await gw.call('POST', '/auth/register', { json: { email: uniqueEmail(`down-${i}`), password: PASSWORD } })).status)
    }
    t.same(statuses, [201, 201, 201, 429], 'three registrations, then the per-IP limit, counted in this replica')
    const rows = await gw.runtime.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM users WHERE email LIKE 'down-%'`)
    t.equal(rows.rows[0]?.n, 3, 'the three are in the database')
  },
)

t.test('upstream refusing connections: 502, then 503 with Retry-After without trying it, then recovery', async (t) => {
  const port = await freePort()
  const gw = await startTestGateway(t, {
    breakers: shortBreakers(),
    configure: (raw) => {
      raw.routes = [{ name: 'refused', match: '/refused', upstream: `http://127.0.0.1:${port}`, auth: 'public' }]
    },
  })
  const opening = await failUntilOpen(t, gw, 'upstream:refused', () => gw.call('GET', '/refused/x'), (r, i) => {
    assertCode(t, r, 502, 'GH_BAD_GATEWAY', `refused ${i}`)
    assertNoAddress(t, r, port, `refused ${i}`)
  })
  const open: Timed[] = []
  for (let i = 0; i < 5; i++) open.push(await timed(() => gw.call('GET', '/refused/x')))
  for (const a of open) assertUnavailable(t, a.response, 'refused upstream, breaker open')
  t.comment(`upstream refusing: 502 in ${times(opening)} ms; breaker open after ${opening.length}: 503 in ${times(open)} ms`)
  t.equal(await circuitMetric(gw, 'upstream:refused'), 2, 'gatehouse_circuit_state{breaker="upstream:refused"} is 2 (open)')

  // The upstream comes up on its port; the next probe finds it.
  const back = await startTestUpstream(t, 'ok', port)
  t.equal(back.connections, 0, 'nothing tried it while the breaker was open')
  const backAt = Date.now()
  const polls = await pollUntil(() => gw.call('GET', '/refused/x'), (r) => r.status === 200)
  t.equal(polls.at(-1)?.status, 200, 'the route answers 200 once the upstream is back')
  t.same([...new Set(polls.slice(0, -1).map((r) => r.status))].filter((s) => s !== 503), [], 'only 503 until the probe')
  t.comment(`upstream refusing, then back: 200 after ${Date.now() - backAt} ms (${polls.length} requests)`)
  t.equal(back.requests, 1, 'the probe was the only request it received until then')
  t.equal(await circuitMetric(gw, 'upstream:refused'), 0, 'gatehouse_circuit_state{breaker="upstream:refused"} is 0 again')
})

t.test('upstream slower than the route timeout: 504, then 503 without contacting it; a probe later; recovery', async (t) => {
  const slow = await startTestUpstream(t, 'hang')
  const late = await startTestUpstream(t, 'slow')
  const gw = await startTestGateway(t, {
    breakers: shortBreakers(),
    configure: (raw) => {
      raw.routes = [
        { name: 'slow', match: '/slow', upstream: slow.url, auth: 'public', timeout: '300ms' },
        { name: 'late', match: '/late', upstream: late.url, auth: 'public', timeout: '300ms' },
      ]
    },
  })
  const check = (r: Response, i: number): void => {
    assertCode(t, r, 504, 'GH_GATEWAY_TIMEOUT', `slow ${i}`)
    assertNoAddress(t, r, slow.port, `slow ${i}`)
  }
  // Each 504 takes about a second (see the todo below): the first batch goes concurrently.
  const batch = DEFAULT_BREAKER_OPTIONS.maxConsecutiveFailures
  const opening = await Promise.all(Array.from({ length: batch }, () => timed(() => gw.call('GET', '/slow/x'))))
  opening.forEach((a, i) => check(a.response, i + 1))
  if (breakerState(gw, 'upstream:slow') !== 'open') {
    opening.push(...(await failUntilOpen(t, gw, 'upstream:slow', () => gw.call('GET', '/slow/x'), check, SPEC_MAX_IN_A_ROW - batch)))
  }
  t.equal(breakerState(gw, 'upstream:slow'), 'open', `open after ${opening.length} timeouts`)
  t.equal(slow.requests, opening.length, 'each 504 was one request the upstream received')
  const open: Timed[] = []
  for (let i = 0; i < 5; i++) open.push(await timed(() => gw.call('GET', '/slow/x')))
  for (const a of open) assertUnavailable(t, a.response, 'slow upstream, breaker open')
  t.equal(slow.requests, opening.length, 'no request reached it while the breaker was open')
  t.comment(`upstream hanging (timeout 300ms): 504 in ${times(opening)} ms (${batch} concurrent); breaker open: 503 in ${times(open)} ms`)

  await sleep(RESET_MS + 100)
  const probe = await timed(() => gw.call('GET', '/slow/x'))
  assertCode(t, probe.response, 504, 'GH_GATEWAY_TIMEOUT', 'the probe')
  t.equal(slow.requests, opening.length + 1, 'the probe reached the upstream')
  assertUnavailable(t, await gw.call('GET', '/slow/x'), 'open again after the failed probe')
  t.comment(`upstream hanging: probe ${probe.ms} ms`)

  slow.mode = 'ok'
  const polls = await pollUntil(() => gw.call('GET', '/slow/x'), (r) => r.status === 200)
  t.equal(polls.at(-1)?.status, 200, 'the route recovers once the upstream answers in time')
  t.equal(breakerState(gw, 'upstream:slow'), 'closed')

  // undici runs its headers timeout on a coarse clock (a 300ms timeout fires after about a
  // second), so the edge keeps a timer of its own: an upstream answering within that second
  // must still be a 504.
  await t.test(`an upstream answering after ${SLOW_MS} ms, route timeout 300ms: 504`, async (t) => {
    const answer = await timed(() => gw.call('GET', '/late/x'))
    t.comment(`upstream answering after ${SLOW_MS} ms, route timeout 300ms: ${answer.response.status} in ${answer.ms} ms`)
    assertCode(t, answer.response, 504, 'GH_GATEWAY_TIMEOUT', 'slower than the route timeout')
  })
})

t.test('upstream flapping, then down, then back, on a required route', async (t) => {
  const flaky = await startTestUpstream(t, 'ok')
  const gw = await startTestGateway(t, {
    breakers: shortBreakers(),
    configure: (raw) => {
      raw.routes = [{ name: 'flaky', match: '/flaky', upstream: flaky.url, auth: 'required' }]
    },
  })
  const { token } = await signUp(gw, 'faults-flaky')
  const call = () => gw.call('GET', '/flaky/x', { headers: bearer(token) })

  // Every other request dropped: failures never run 5 in a row, and 50 % is not above the error threshold.
  const flapping: number[] = []
  for (let i = 0; i < 12; i++) {
    flaky.mode = i % 2 === 0 ? 'ok' : 'drop'
    flapping.push((await call()).status)
  }
  t.same(flapping, Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? 200 : 502)), 'each dropped request is a 502, each answered one a 200')
  t.comment(`flapping 1 in 2: ${flapping.join(' ')}; breaker ${breakerState(gw, 'upstream:flaky')}`)

  // Down: every connection dropped.
  flaky.mode = 'drop'
  const requestsBefore = flaky.requests
  const opening = await failUntilOpen(t, gw, 'upstream:flaky', call, (r, i) => {
    assertCode(t, r, 502, 'GH_BAD_GATEWAY', `down ${i}`)
    assertNoAddress(t, r, flaky.port, `down ${i}`)
  })
  const contacted = { requests: flaky.requests, connections: flaky.connections }
  t.equal(contacted.requests - requestsBefore, opening.length, 'each 502 was one request it received')
  const open: Timed[] = []
  for (let i = 0; i < 5; i++) open.push(await timed(call))
  for (const a of open) assertUnavailable(t, a.response, 'flaky upstream down, breaker open')
  t.same({ requests: flaky.requests, connections: flaky.connections }, contacted, 'not contacted while the breaker was open')
  t.comment(`upstream dropping connections: 502 in ${times(opening)} ms; breaker open: 503 in ${times(open)} ms`)
  assertCode(t, await gw.call('GET', '/flaky/x'), 401, 'GH_UNAUTHENTICATED', 'no credential: 401 before the breaker is consulted')
  assertCode(t, await gw.call('GET', '/flaky/x', { headers: bearer('x'.repeat(43)) }), 401, 'GH_UNAUTHENTICATED', 'an unknown session: 401')

  await sleep(RESET_MS + 100)
  assertCode(t, await call(), 502, 'GH_BAD_GATEWAY', 'the probe reaches it and fails')
  t.equal(flaky.requests, contacted.requests + 1, 'one probe')
  assertUnavailable(t, await call(), 'open again after the failed probe')

  flaky.mode = 'ok'
  const polls = await pollUntil(call, (r) => r.status === 200)
  t.equal(polls.at(-1)?.status, 200, 'recovers once the upstream answers')
  t.equal(breakerState(gw, 'upstream:flaky'), 'closed')
  t.equal(await circuitMetric(gw, 'upstream:flaky'), 0)
})

t.test('an upstream answering 500 is reachable: passed through, and its breaker stays closed', async (t) => {
  const failing = await startTestUpstream(t, 'error')
  const gw = await startTestGateway(t, {
    breakers: shortBreakers(),
    configure: (raw) => {
      raw.routes = [{ name: 'failing', match: '/failing', upstream: failing.url, auth: 'public' }]
    },
  })
  const count = SPEC_MAX_IN_A_ROW + 5
  const answers: Response[] = []
  for (let i = 0; i < count; i++) answers.push(await gw.call('GET', '/failing/x'))
  t.same([...new Set(answers.map((r) => r.status))], [500], `all ${count} answers are the upstream's 500`)
  t.equal(answers[0]?.text, JSON.stringify({ upstream: 'broke' }), 'with its own body')
  t.equal(answers[0]?.headers['x-upstream'], 'yes', 'and headers')
  t.equal(failing.requests, count, 'every request reached it')
  t.equal(breakerState(gw, 'upstream:failing'), 'closed')
  t.equal(await circuitMetric(gw, 'upstream:failing'), 0)
})
