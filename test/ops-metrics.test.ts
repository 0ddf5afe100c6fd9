/**
 * The metrics of SPEC §9 as an operator's scraper sees them: the whole gateway started from a
 * gateway.yml on disk (TLS listener, metrics listener on port 0, a real upstream), /metrics
 * scraped over HTTP and parsed by an independent parser, every metric present with HELP and
 * TYPE, each one moving by exactly what the test drove, and label values bounded (route
 * names, never raw paths). /metrics is never served on the public port.
 */
import { randomUUID, X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import yaml from 'js-yaml'
import selfsigned from 'selfsigned'
import t from 'tap'
import { Agent, request, type Dispatcher } from 'undici'
import { loadConfig } from '../src/config/index.js'
import { generatePat } from '../src/core/pat-format.js'
import { ensureDevCertificate } from '../src/dev-certificate.js'
import { startGateway } from '../src/server.js'
import { PASSWORD, uniqueEmail } from './helpers/auth-client.js'
import { databaseBackends } from './helpers/backends.js'
import { baseConfig, type RawConfig } from './helpers/gateway.js'
import { parsePrometheus, type Exposition } from './helpers/prometheus.js'
import { startUpstream } from './helpers/upstream.js'

const MAX_FAILURES = 3
const RATE_LIMIT = 2

/** Every metric of SPEC §9 and its type. */
const SPEC_METRICS: Record<string, string> = {
  gatehouse_http_requests_total: 'counter',
  gatehouse_http_request_duration_seconds: 'histogram',
  gatehouse_upstream_duration_seconds: 'histogram',
  gatehouse_auth_attempts_total: 'counter',
  gatehouse_decisions_total: 'counter',
  gatehouse_login_lockouts_total: 'counter',
  gatehouse_config_reloads_total: 'counter',
  gatehouse_tls_cert_expiry_seconds: 'gauge',
  gatehouse_rate_limited_total: 'counter',
  gatehouse_circuit_state: 'gauge',
  gatehouse_active_sessions: 'gauge',
}

/** A sample of prom-client's default process metrics (Linux and any platform). */
const DEFAULT_METRICS: Record<string, string> = {
  process_cpu_user_seconds_total: 'counter',
  process_cpu_seconds_total: 'counter',
  process_start_time_seconds: 'gauge',
  nodejs_heap_size_used_bytes: 'gauge',
  nodejs_eventloop_lag_seconds: 'gauge',
  nodejs_version_info: 'gauge',
}

// --- the gateway, once for the whole file -------------------------------------------------

const upstream = await startUpstream(t)
/** A port nothing listens on: an upstream refusing connections. */
const refusingPort = await new Promise<number>((resolve) => {
  const probe = createServer()
  probe.listen(0, '127.0.0.1', () => {
    const { port } = probe.address() as { port: number }
    probe.close(() => resolve(port))
  })
})

const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-metrics-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const certFile = path.join(dir, 'tls.crt')
const keyFile = path.join(dir, 'tls.key')
await ensureDevCertificate(certFile, keyFile)
const certificate = await readFile(certFile)
const database = await databaseBackends()[0]!.url(t)
const configPath = path.join(dir, 'gateway.yml')

function rawConfig(): RawConfig {
  const raw = baseConfig()
  raw.server.tls = { cert: 'tls.crt', key: 'tls.key' }
  raw.storage = { database, sessions: 'memory' }
  raw.identity.signing_key_file = 'identity-keys.json'
  raw.metrics = { host: '127.0.0.1', port: 0 }
  raw.logging = { level: 'warn' }
  raw.auth.lockout = { max_failures: MAX_FAILURES, window: '15m' }
  raw.routes = [
    { name: 'app', match: '/app', upstream: upstream.url, auth: 'required', permissions: ['app:read'] },
    { name: 'writers', match: '/writers', upstream: upstream.url, auth: 'required', permissions: ['app:write'] },
    { name: 'limited', match: '/limited', upstream: upstream.url, auth: 'public', rate_limit: { max: RATE_LIMIT, window: '1m', key: 'ip' } },
    { name: 'down', match: '/down', upstream: `http://127.0.0.1:${refusingPort}`, auth: 'public' },
  ]
  return raw
}
const configText = yaml.dump(rawConfig())
await writeFile(configPath, configText)

const gateway = await startGateway(await loadConfig(configPath), {
  logStream: new Writable({ write: (_chunk, _encoding, done) => done() }),
})
t.teardown(() => gateway.close())
const agent = new Agent({ connect: { ca: certificate } })
t.teardown(() => agent.close())
const metricsUrl = `http://127.0.0.1:${gateway.metricsPort}`

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

async function call(method: Dispatcher.HttpMethod, target: string, options: { json?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.json !== undefined) headers['content-type'] = 'application/json'
  const response = await request(gateway.url + target, {
    method,
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
    dispatcher: agent,
  })
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() }
}

async function scrape(): Promise<Exposition> {
  const response = await request(`${metricsUrl}/metrics`)
  const text = await response.body.text()
  if (response.statusCode !== 200) throw new Error(`scrape: ${response.statusCode} ${text}`)
  return parsePrometheus(text)
}

async function signUp(tag: string): Promise<{ token: string; userId: string; email: string }> {
  const email = uniqueEmail(tag)
  const registered = await call('POST', '/auth/register', { json: { email, password: PASSWORD } })
  if (registered.status !== 201) throw new Error(`register: ${registered.status} ${registered.text}`)
  const loggedIn = await call('POST', '/auth/login', { json: { email, password: PASSWORD } })
  if (loggedIn.status !== 200) throw new Error(`login: ${loggedIn.status} ${loggedIn.text}`)
  const body = JSON.parse(loggedIn.text) as { token: string; user: { id: string } }
  return { token: body.token, userId: body.user.id, email }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** How much each series moved between two scrapes (series absent before count from 0). */
function delta(before: Exposition, after: Exposition, name: string, labels: Record<string, string> = {}): number {
  return after.sum(name, labels) - before.sum(name, labels)
}

// --- the tests ------------------------------------------------------------------------------

t.test('the metrics listener serves /metrics in the text format, and nothing else', async (t) => {
  const response = await request(`${metricsUrl}/metrics`)
  t.equal(response.statusCode, 200)
  t.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  const exposition = parsePrometheus(await response.body.text())

  for (const [name, type] of Object.entries({ ...SPEC_METRICS, ...DEFAULT_METRICS })) {
    const family = exposition.family(name)
    t.ok(family, `${name} is exposed`)
    t.equal(family?.type, type, `${name} is a ${type}`)
    t.ok((family?.help ?? '').length > 0, `${name} has a HELP text`)
  }
  t.ok((exposition.value('process_cpu_user_seconds_total') ?? -1) >= 0, 'the default process metrics have values')
  t.ok((exposition.value('nodejs_heap_size_used_bytes') ?? 0) > 0)
  t.equal(exposition.value('gatehouse_login_lockouts_total'), 0, 'an unlabelled counter starts at 0')

  const other = await request(`${metricsUrl}/other`)
  t.equal(other.statusCode, 404, 'the metrics listener answers 404 for any other path')
  await other.body.dump()
  const root = await request(`${metricsUrl}/`)
  t.equal(root.statusCode, 404)
  await root.body.dump()
  const head = await request(`${metricsUrl}/metrics`, { method: 'HEAD' })
  t.equal(head.statusCode, 200, 'HEAD /metrics')
  await head.body.dump()
  const post = await request(`${metricsUrl}/metrics`, { method: 'POST', body: '' })
  t.equal(post.statusCode, 405, 'only GET and HEAD')
  await post.body.dump()

  const publicMetrics = await call('GET', '/metrics')
  t.equal(publicMetrics.status, 404, 'the public port does not serve /metrics')
  t.notMatch(publicMetrics.text, /gatehouse_|# HELP/, 'nor any of its content')
  t.equal((await call('GET', '/metrics?x=1')).status, 404)
})

t.test('gatehouse_active_sessions goes from 0 to N after N logins (counted at most every 10 s)', async (t) => {
  const before = await scrape()
  t.equal(before.value('gatehouse_active_sessions'), 0, 'no sessions yet')
  const N = 3
  for (let i = 0; i < N; i++) await signUp(`sessions-${i}`)

  // The count walks the store's keys, so it is cached for 10 s: within that window a scrape
  // still shows the last count ...
  const cached = await scrape()
  t.equal(cached.value('gatehouse_active_sessions'), 0, 'the cached count is served within the 10 s window')

  // ... and once the window has passed, the next scrape counts again. Time is moved on for
  // the one scrape instead of the test waiting 10 s.
  const realNow = Date.now
  const offset = 10_001
  Date.now = () => realNow() + offset
  let later: Exposition
  try {
    later = await scrape()
  } finally {
    Date.now = realNow
  }
  t.equal(later.value('gatehouse_active_sessions'), N, `${N} live sessions after ${N} logins`)
})

t.test('traffic moves the request, duration, upstream, auth-attempt and decision metrics by exactly what was sent', async (t) => {
  const viewer = await signUp('traffic')
  const before = await scrape()

  // allow: 3 with a session token, 1 with a PAT.
  for (let i = 0; i < 3; i++) t.equal((await call('GET', `/app/${randomUUID()}`, { headers: bearer(viewer.token) })).status, 200)
  const created = await call('POST', '/auth/tokens', { json: { name: 'metrics' }, headers: bearer(viewer.token) })
  t.equal(created.status, 201, 'a PAT was created')
  const pat = (JSON.parse(created.text) as { token: string }).token
  t.equal((await call('GET', '/app/with-pat', { headers: bearer(pat) })).status, 200)
  t.equal((await call('POST', '/app/post', { headers: bearer(pat), json: {} })).status, 200)
  // unauthenticated: no credential at all (2), an unknown PAT (1), an unknown session token (1).
  t.equal((await call('GET', '/app/anonymous')).status, 401)
  t.equal((await call('GET', '/app/anonymous')).status, 401)
  t.equal((await call('GET', '/app/bad-pat', { headers: bearer(generatePat()) })).status, 401)
  t.equal((await call('GET', '/app/bad-session', { headers: bearer('A'.repeat(43)) })).status, 401)
  // forbidden: a viewer on a route that needs app:write.
  t.equal((await call('GET', '/writers/x', { headers: bearer(viewer.token) })).status, 403)
  // a password login that fails.
  t.equal((await call('POST', '/auth/login', { json: { email: viewer.email, password: 'not the right password at all' } })).status, 401)

  const after = await scrape()
  t.ok(delta(before, after, 'process_cpu_seconds_total') > 0, 'the process metrics move too: CPU time grew')

  const requests = 'gatehouse_http_requests_total'
  t.equal(delta(before, after, requests, { route: 'app', method: 'GET', status: '200' }), 4, 'requests: app GET 200')
  t.equal(delta(before, after, requests, { route: 'app', method: 'POST', status: '200' }), 1, 'requests: app POST 200')
  t.equal(delta(before, after, requests, { route: 'app', method: 'GET', status: '401' }), 4, 'requests: app GET 401')
  t.equal(delta(before, after, requests, { route: 'writers', method: 'GET', status: '403' }), 1, 'requests: writers GET 403')
  t.equal(delta(before, after, requests, { route: '/auth/tokens', method: 'POST', status: '201' }), 1, "the gateway's own endpoints are named by their pattern")
  t.equal(delta(before, after, requests, { route: '/auth/login', method: 'POST', status: '401' }), 1)

  for (const [route, count] of [['app', 9], ['writers', 1]] as const) {
    const name = 'gatehouse_http_request_duration_seconds'
    t.equal(delta(before, after, `${name}_count`, { route }), count, `request duration: ${count} observations for ${route}`)
    t.ok(delta(before, after, `${name}_sum`, { route }) > 0, `request duration: the sum for ${route} grew`)
    t.equal(delta(before, after, `${name}_bucket`, { route, le: '+Inf' }), count, 'the +Inf bucket holds every observation')
  }
  const upstreamName = 'gatehouse_upstream_duration_seconds'
  t.equal(delta(before, after, `${upstreamName}_count`, { route: 'app' }), 5, 'upstream duration: the 5 proxied requests, not the refused ones')
  t.ok(delta(before, after, `${upstreamName}_sum`, { route: 'app' }) > 0)
  t.equal(delta(before, after, `${upstreamName}_count`, { route: 'writers' }), 0, 'a refused request never reaches the upstream')

  const attempts = 'gatehouse_auth_attempts_total'
  t.equal(delta(before, after, attempts, { method: 'session', result: 'success' }), 5, 'auth: session successes (3 proxied, PAT creation, forbidden)')
  t.equal(delta(before, after, attempts, { method: 'session', result: 'failure' }), 1, 'auth: an unknown session token')
  t.equal(delta(before, after, attempts, { method: 'pat', result: 'success' }), 2, 'auth: PAT successes')
  t.equal(delta(before, after, attempts, { method: 'pat', result: 'failure' }), 1, 'auth: an unknown PAT')
  t.equal(delta(before, after, attempts, { method: 'password', result: 'failure' }), 1, 'auth: a failed password login')
  t.equal(delta(before, after, attempts, { method: 'password', result: 'success' }), 0)

  const decisions = 'gatehouse_decisions_total'
  t.equal(delta(before, after, decisions, { route: 'app', outcome: 'allow' }), 5, 'decisions: allow')
  t.equal(delta(before, after, decisions, { route: 'app', outcome: 'unauthenticated' }), 4, 'decisions: unauthenticated')
  t.equal(delta(before, after, decisions, { route: 'writers', outcome: 'forbidden' }), 1, 'decisions: forbidden')
  t.equal(delta(before, after, decisions, { outcome: 'rate_limited' }), 0)
  t.equal(delta(before, after, decisions, { outcome: 'error' }), 0)

  // The histogram buckets are cumulative.
  const buckets = after
    .select('gatehouse_http_request_duration_seconds_bucket', { route: 'app' })
    .map((sample) => ({ le: Number(sample.labels.le === '+Inf' ? Infinity : sample.labels.le), value: sample.value }))
    .sort((a, b) => a.le - b.le)
  t.ok(buckets.length > 2, 'several buckets')
  t.ok(buckets.every((bucket, i) => i === 0 || bucket.value >= buckets[i - 1]!.value), 'bucket counts never decrease')
  t.equal(buckets.at(-1)?.value, after.value('gatehouse_http_request_duration_seconds_count', { route: 'app' }))
})

t.test('rate limited requests count in gatehouse_rate_limited_total and as rate_limited decisions', async (t) => {
  const before = await scrape()
  const statuses: number[] = []
  for (let i = 0; i < RATE_LIMIT + 2; i++) statuses.push((await call('GET', '/limited/x')).status)
  t.same(statuses, [200, 200, 429, 429])
  const after = await scrape()
  t.equal(delta(before, after, 'gatehouse_rate_limited_total', { route: 'limited' }), 2)
  t.equal(delta(before, after, 'gatehouse_decisions_total', { route: 'limited', outcome: 'rate_limited' }), 2)
  t.equal(delta(before, after, 'gatehouse_decisions_total', { route: 'limited', outcome: 'allow' }), 2)
  t.equal(delta(before, after, 'gatehouse_http_requests_total', { route: 'limited', status: '429' }), 2)
})

t.test('label values are bounded: route names, never raw paths', async (t) => {
  const viewer = await signUp('labels')
  const ids = Array.from({ length: 5 }, () => randomUUID())
  for (const id of ids) {
    t.equal((await call('GET', `/app/${id}?q=${id}`, { headers: bearer(viewer.token) })).status, 200)
    t.equal((await call('GET', `/nothing-here/${id}`)).status, 404)
    t.equal((await call('GET', `/auth/no-such-endpoint/${id}`)).status, 404)
  }
  const before = await scrape()
  t.equal((await call('GET', `/unmatched-${randomUUID()}`)).status, 404)
  const odd = await call('PROPFIND', `/app/${randomUUID()}`, { headers: bearer(viewer.token) })
  const after = await scrape()
  t.equal(delta(before, after, 'gatehouse_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' }), 1, 'an unmatched path is route="unmatched"')
  t.equal(delta(before, after, 'gatehouse_http_requests_total', { method: 'OTHER', status: String(odd.status) }), 1, 'an unusual method is counted as method="OTHER"')
  t.equal(delta(before, after, 'gatehouse_http_requests_total', { method: 'PROPFIND' }), 0)

  const text = await (await request(`${metricsUrl}/metrics`)).body.text()
  for (const id of ids) t.notOk(text.includes(id), `the raw path /app/${id} appears nowhere in the exposition`)
  const routes = new Set(after.samples.flatMap((sample) => (sample.labels.route === undefined ? [] : [sample.labels.route])))
  const allowed = (route: string) => ['app', 'writers', 'limited', 'down', 'unmatched'].includes(route) || /^\/(auth|health|\.well-known)[/\w.:-]*$/.test(route)
  t.same([...routes].filter((route) => !allowed(route)), [], 'every route label is a configured name, a gateway endpoint pattern or "unmatched"', { routes: [...routes] })
  t.ok(routes.size < 20, `a handful of route label values (${routes.size})`)
  t.notOk([...routes].some((route) => route.includes('nothing-here') || route.includes('no-such-endpoint')), 'no unmatched path became a label')
  const methods = new Set(after.select('gatehouse_http_requests_total').map((sample) => sample.labels.method))
  t.ok([...methods].every((method) => ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'].includes(method ?? '')))
})

t.test('gatehouse_login_lockouts_total counts an account locked by max_failures failed logins', async (t) => {
  const email = uniqueEmail('lockout')
  t.equal((await call('POST', '/auth/register', { json: { email, password: PASSWORD } })).status, 201)
  const before = await scrape()
  for (let i = 0; i < MAX_FAILURES - 1; i++) {
    t.equal((await call('POST', '/auth/login', { json: { email, password: `wrong password number ${i}` } })).status, 401)
  }
  const almost = await scrape()
  t.equal(delta(before, almost, 'gatehouse_login_lockouts_total'), 0, `${MAX_FAILURES - 1} failures lock nothing`)
  t.equal((await call('POST', '/auth/login', { json: { email, password: 'the last wrong password' } })).status, 401)
  t.equal((await call('POST', '/auth/login', { json: { email, password: PASSWORD } })).status, 429, 'the account is locked, even for the right password')
  t.equal((await call('POST', '/auth/login', { json: { email, password: PASSWORD } })).status, 429)
  const after = await scrape()
  t.equal(delta(before, after, 'gatehouse_login_lockouts_total'), 1, 'one lockout, however many refused attempts follow')
  t.equal(delta(before, after, 'gatehouse_auth_attempts_total', { method: 'password', result: 'failure' }), MAX_FAILURES)
})

t.test('gatehouse_tls_cert_expiry_seconds is the serving certificate\'s remaining validity', async (t) => {
  const exposition = await scrape()
  const value = exposition.value('gatehouse_tls_cert_expiry_seconds')
  const expected = (Date.parse(new X509Certificate(certificate).validTo) - Date.now()) / 1000
  t.ok(value !== undefined && value > 0, `positive: ${value}`)
  t.ok(value !== undefined && Math.abs(value - expected) < 120, `about ${Math.round(expected)} s (the dev certificate's 90 days)`)
  t.ok(value !== undefined && value > 89 * 86400 && value <= 90 * 86400 + 60)
})

t.test('gatehouse_circuit_state: database and sessions closed; an upstream that keeps refusing opens its breaker', async (t) => {
  const before = await scrape()
  t.equal(before.value('gatehouse_circuit_state', { breaker: 'database' }), 0, 'database closed')
  t.equal(before.value('gatehouse_circuit_state', { breaker: 'sessions' }), 0, 'sessions closed')
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) statuses.push((await call('GET', '/down/x')).status)
  t.ok(statuses.slice(0, 3).every((status) => status === 502), 'refused connections: 502', { statuses })
  t.equal(statuses.at(-1), 503, 'the open breaker answers 503', { statuses })
  const after = await scrape()
  t.equal(after.value('gatehouse_circuit_state', { breaker: 'upstream:down' }), 2, 'the upstream breaker is open')
  t.equal(after.value('gatehouse_circuit_state', { breaker: 'database' }), 0)
  t.equal(delta(before, after, 'gatehouse_http_requests_total', { route: 'down', status: '502' }), statuses.filter((s) => s === 502).length)
  t.equal(delta(before, after, 'gatehouse_upstream_duration_seconds_count', { route: 'down' }), statuses.filter((s) => s === 502).length, 'failed upstream attempts are timed too')
})

t.test('gatehouse_config_reloads_total counts successful and refused reloads; the certificate gauge follows a reload', async (t) => {
  const reloads = (exposition: Exposition, result: string) => exposition.value('gatehouse_config_reloads_total', { result }) ?? 0
  const before = await scrape()
  const same = await gateway.reload()
  t.ok(same.ok, 'reloading the unchanged file succeeds', { same })
  const mid = await scrape()
  t.equal(reloads(mid, 'success') - reloads(before, 'success'), 1, 'success: +1')
  t.equal(reloads(mid, 'failure') - reloads(before, 'failure'), 0)

  await writeFile(configPath, 'server: [unbalanced\n')
  const broken = await gateway.reload()
  t.equal(broken.ok, false, 'a file that is not YAML is refused')
  await writeFile(configPath, yaml.dump({ ...rawConfig(), routes: [{ name: 'x', match: '/x', upstream: upstream.url, timeout: 'soon' }] }))
  const invalid = await gateway.reload()
  t.equal(invalid.ok, false, 'an invalid file is refused')
  await writeFile(configPath, configText)
  const refused = await scrape()
  t.equal(reloads(refused, 'failure') - reloads(mid, 'failure'), 2, 'failure: +2')
  t.equal(reloads(refused, 'success') - reloads(mid, 'success'), 0)

  // A new certificate, valid for 30 days, is picked up by a reload, and so is its expiry.
  const original = { cert: await readFile(certFile), key: await readFile(keyFile) }
  const notBeforeDate = new Date()
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate: new Date(notBeforeDate.getTime() + 30 * 86400_000),
  })
  await writeFile(keyFile, pems.private)
  await writeFile(certFile, pems.cert)
  try {
    const renewed = await gateway.reload()
    t.ok(renewed.ok, 'a reload with a new certificate succeeds', { renewed })
    const expiry = (await scrape()).value('gatehouse_tls_cert_expiry_seconds') ?? 0
    t.ok(Math.abs(expiry - 30 * 86400) < 120, `the gauge shows the new certificate's 30 days (${expiry} s)`)
  } finally {
    await writeFile(keyFile, original.key)
    await writeFile(certFile, original.cert)
  }
  t.ok((await gateway.reload()).ok, 'and the original one back')
  const after = await scrape()
  t.ok((after.value('gatehouse_tls_cert_expiry_seconds') ?? 0) > 89 * 86400, 'the gauge follows')
  t.equal(reloads(after, 'success') - reloads(before, 'success'), 3, 'success: 3 in all')
  t.equal(reloads(after, 'failure') - reloads(before, 'failure'), 2, 'failure: 2 in all')

  // The metrics outlive the reloads: the counts made before them are still there, and the
  // new configuration counts into the same series.
  t.ok(after.sum('gatehouse_http_requests_total', { route: 'app' }) >= before.sum('gatehouse_http_requests_total', { route: 'app' }))
  t.ok(after.sum('gatehouse_http_requests_total', { route: 'app' }) > 0)
  const viewer = await signUp('after-reload')
  const beforeRequest = await scrape()
  t.equal((await call('GET', '/app/after-reload', { headers: bearer(viewer.token) })).status, 200)
  const afterRequest = await scrape()
  t.equal(delta(beforeRequest, afterRequest, 'gatehouse_http_requests_total', { route: 'app', status: '200' }), 1, 'the new configuration counts into the same metrics')
})

// Last: it breaks the session store for good.
t.test('an unreachable session store is an "error" decision and opens the sessions breaker', async (t) => {
  const viewer = await signUp('outage')
  const before = await scrape()
  await gateway.runtime.store.close()
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) statuses.push((await call('GET', '/app/x', { headers: bearer(viewer.token) })).status)
  t.same(statuses, statuses.map(() => 503), 'session-authenticated requests get 503, never let through')
  const after = await scrape()
  t.equal(delta(before, after, 'gatehouse_decisions_total', { route: 'app', outcome: 'error' }), statuses.length, 'decisions: error')
  t.equal(delta(before, after, 'gatehouse_decisions_total', { route: 'app', outcome: 'allow' }), 0)
  t.equal(after.value('gatehouse_circuit_state', { breaker: 'sessions' }), 2, 'the sessions breaker is open')
  t.ok(after.family('gatehouse_active_sessions'), 'a store outage does not break the scrape')
})
