/**
 * The logs of issue 3 as an operator reads them: JSON lines from pino, one access line per
 * request (request id, route, status, upstream latency, user), a warning for requests slower
 * than `logging.slow_request_threshold`, and no secret anywhere — not passwords, session
 * tokens, PATs, cookie values or secrets in query strings — checked by grepping everything
 * the gateway wrote while real traffic went through it.
 */
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { buildApp } from '../src/app.js'
import { generatePat } from '../src/core/pat-format.js'
import { cookieName, setCookies } from './helpers/auth-client.js'
import { PUBLIC_URL, startTestGateway, testCertificate, type Response, type TestGateway } from './helpers/gateway.js'
import { parsePrometheus } from './helpers/prometheus.js'

const SLOW_THRESHOLD_MS = 100
const SLOW_UPSTREAM_MS = 300

interface LogLine {
  /** By name: `info`, `warn`, `error` (logging.ts). */
  level: string
  msg: string
  reqId?: string
  [key: string]: unknown
}

/** Everything the gateway writes, as text and as parsed lines. */
class LogCapture extends Writable {
  text = ''
  constructor() {
    super({
      write: (chunk: Buffer | string, _encoding, done) => {
        this.text += chunk.toString()
        done()
      },
    })
  }

  lines(): LogLine[] {
    return this.text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as LogLine)
  }

  /** The access lines (one per request): `request`, or `slow request` at warn. */
  accessLines(): LogLine[] {
    return this.lines().filter((line) => line.msg === 'request' || line.msg === 'slow request' || line.msg === 'request aborted')
  }
}

const secret = (tag: string) => `${tag}-${randomBytes(12).toString('hex')}`
/** Passwords long enough for the policy, each unique so that a grep finds only it. */
const password = (tag: string) => `${secret(tag)} long enough passphrase`

/** An upstream answering 200, after SLOW_UPSTREAM_MS for paths containing /slow. */
interface Upstream {
  url: string
  /** Resolves once the upstream has received the whole of a request for `path`. */
  received(path: string): Promise<void>
}

async function startUpstream(t: Test): Promise<Upstream> {
  const events = new EventEmitter()
  const server: Server = createHttpServer((request, response) => {
    const delay = (request.url ?? '').includes('/slow') ? SLOW_UPSTREAM_MS : 0
    request.resume()
    request.on('end', () => {
      events.emit('received', (request.url ?? '').split('?')[0])
      setTimeout(() => response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'), delay)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: (path) =>
      new Promise((resolve) => {
        const listener = (received: string) => {
          if (received !== path) return
          events.off('received', listener)
          resolve()
        }
        events.on('received', listener)
      }),
  }
}

/** A port nothing listens on: an upstream refusing connections. */
function refusingPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createNetServer()
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
}

async function gatewayWithLogs(t: Test): Promise<{ gw: TestGateway; logs: LogCapture; upstream: Upstream }> {
  const upstream = await startUpstream(t)
  const down = await refusingPort()
  const logs = new LogCapture()
  const gw = await startTestGateway(t, {
    logStream: logs,
    configure: (raw) => {
      raw.logging = { level: 'info', slow_request_threshold: `${SLOW_THRESHOLD_MS}ms` }
      raw.routes = [
        { name: 'app', match: '/app', upstream: upstream.url, auth: 'required', permissions: ['app:read'] },
        { name: 'public', match: '/public', upstream: upstream.url, auth: 'public' },
        { name: 'down', match: '/down', upstream: `http://127.0.0.1:${down}`, auth: 'public' },
      ]
    },
  })
  return { gw, logs, upstream }
}

/** Waits until every id has its access line (they are written once the answer is sent). */
async function settle(logs: LogCapture, ids: readonly string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const done = () => {
    const seen = new Set(logs.accessLines().map((line) => line.reqId))
    return ids.every((id) => seen.has(id))
  }
  while (!done() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  // A little longer, so that a second line for one request would have shown up too.
  await new Promise((resolve) => setTimeout(resolve, 100))
}

interface Sent {
  what: string
  response: Response
  id: string
  route: string
  proxied: boolean
  /** The user the line must name; null for an anonymous request; undefined: not checked. */
  userId?: string | null
  path: string
}

t.test('one JSON access line per request, with no secret anywhere in the log', async (t) => {
  const { gw, logs } = await gatewayWithLogs(t)
  const sent: Sent[] = []
  const secrets = new Map<string, string>()
  const keep = (what: string, value: string) => {
    secrets.set(what, value)
    return value
  }
  async function send(
    what: string,
    method: 'GET' | 'POST' | 'DELETE',
    target: string,
    expect: { status: number; route: string; proxied?: boolean; userId?: string | null },
    options: Parameters<TestGateway['call']>[2] = {},
  ): Promise<Response> {
    const response = await gw.call(method, target, options)
    t.equal(response.status, expect.status, `${what}: ${expect.status}`, { body: response.text.slice(0, 300) })
    const id = response.headers['x-request-id']
    t.type(id, 'string', `${what}: the answer carries x-request-id`)
    sent.push({
      what,
      response,
      id: String(id),
      route: expect.route,
      proxied: expect.proxied ?? false,
      userId: expect.userId,
      path: target.split('?')[0] ?? target,
    })
    return response
  }

  const email = `logs-${randomBytes(4).toString('hex')}@example.com`
  const pw = keep('the registration password', password('pw'))
  const registered = await send('register', 'POST', '/auth/register', { status: 201, route: '/auth/register', userId: null }, { json: { email, password: pw } })
  const userId = registered.json<{ id: string }>().id

  const jsonLogin = await send('JSON login', 'POST', '/auth/login', { status: 200, route: '/auth/login' }, { json: { email, password: pw } })
  const sessionToken = keep('the JSON login session token', jsonLogin.json<{ token: string }>().token)
  keep('the JSON login Set-Cookie value', setCookies(jsonLogin).find((c) => c.name === cookieName(gw))?.value ?? 'missing-cookie')

  const formBody = new URLSearchParams({ email, password: pw, next: '/app/home' }).toString()
  const formLogin = await send('form login', 'POST', '/auth/login', { status: 303, route: '/auth/login' }, {
    body: formBody,
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: PUBLIC_URL },
  })
  const formCookie = setCookies(formLogin).find((c) => c.name === cookieName(gw))?.value
  t.ok(formCookie, 'the form login set the session cookie')
  keep('the form login cookie value', formCookie ?? 'missing-cookie')

  const wrong = keep('a wrong password', password('wrong'))
  await send('failed login', 'POST', '/auth/login', { status: 401, route: '/auth/login' }, { json: { email, password: wrong } })
  const invalid = keep('a password in an invalid body', password('invalid'))
  await send('invalid register', 'POST', '/auth/register', { status: 400, route: '/auth/register' }, { json: { email: 'not an email', password: invalid } })

  const created = await send('PAT creation', 'POST', '/auth/tokens', { status: 201, route: '/auth/tokens', userId }, {
    json: { name: 'ci' },
    headers: { authorization: `Bearer ${sessionToken}` },
  })
  const pat = keep('the PAT', created.json<{ token: string }>().token)

  const q1 = keep('a query token', secret('qtoken'))
  await send('PAT request', 'GET', `/app/data?token=${q1}`, { status: 200, route: 'app', proxied: true, userId }, {
    headers: { authorization: `Bearer ${pat}` },
  })
  const q2 = keep('a query access_token', secret('qaccess'))
  const q3 = keep('a query password', secret('qpassword'))
  await send('cookie request', 'GET', `/app/page?access_token=${q2}&password=${q3}`, { status: 200, route: 'app', proxied: true, userId }, {
    headers: { cookie: `${cookieName(gw)}=${formCookie ?? ''}; theme=${keep('another cookie', secret('cookie'))}` },
  })
  await send('me with a session cookie', 'GET', '/auth/me', { status: 200, route: '/auth/me', userId }, {
    headers: { cookie: `${cookieName(gw)}=${sessionToken}` },
  })
  const q4 = keep('a query token on the login page', secret('qlogin'))
  await send('login page with a query secret', 'GET', `/auth/login?next=/app&token=${q4}`, { status: 200, route: '/auth/login', userId: null })
  const q5 = keep('a query token to a refusing upstream', secret('qdown'))
  await send('refusing upstream', 'GET', `/down/x?token=${q5}`, { status: 502, route: 'down', proxied: true, userId: null })
  await send('unknown bearer', 'GET', '/app/data', { status: 401, route: 'app', userId: null }, {
    headers: { authorization: `Bearer ${keep('an unknown session token', randomBytes(32).toString('base64url'))}` },
  })
  await send('unknown PAT', 'GET', '/app/data', { status: 401, route: 'app', userId: null }, {
    headers: { authorization: `Bearer ${keep('an unknown PAT', generatePat())}` },
  })
  await send('public', 'GET', '/public/x', { status: 200, route: 'public', proxied: true, userId: null })
  await send('unmatched', 'GET', `/nowhere?token=${keep('a query token to nowhere', secret('qnowhere'))}`, { status: 404, route: 'unmatched', userId: null })

  // A password change, through a second session of the user's (it ends the others).
  const second = await gw.call('POST', '/auth/login', { json: { email, password: pw } })
  sent.push({ what: 'second login', response: second, id: String(second.headers['x-request-id']), route: '/auth/login', proxied: false, path: '/auth/login' })
  const secondToken = keep('the second session token', second.json<{ token: string }>().token)
  const newPassword = keep('the new password', password('new'))
  await send('password change', 'POST', '/auth/password', { status: 204, route: '/auth/password', userId }, {
    json: { current_password: pw, new_password: newPassword },
    headers: { authorization: `Bearer ${secondToken}` },
  })

  await settle(logs, sent.map((s) => s.id))
  const text = logs.text
  t.ok(text.length > 0, 'the gateway logged')

  // Every line is JSON.
  const rawLines = text.split('\n').filter((line) => line !== '')
  const unparsable = rawLines.filter((line) => {
    try {
      JSON.parse(line)
      return false
    } catch {
      return true
    }
  })
  t.same(unparsable, [], 'every line is JSON')

  // No secret anywhere.
  for (const [what, value] of secrets) {
    t.notOk(text.includes(value), `${what} appears nowhere in the log`)
    t.notOk(text.includes(encodeURIComponent(value)), `${what} appears nowhere, not even URL-encoded`)
  }
  t.notOk(text.includes('Bearer '), 'no bearer credential')
  t.notOk(text.includes(`${cookieName(gw)}=`), 'no session cookie')

  // One access line per request, with its fields.
  const access = logs.accessLines()
  t.equal(access.length, sent.length, `${sent.length} requests, ${sent.length} access lines`)
  for (const request of sent) {
    const lines = access.filter((line) => line.reqId === request.id)
    t.equal(lines.length, 1, `${request.what}: exactly one access line`)
    const line = lines[0]
    if (line === undefined) continue
    t.equal(line.route, request.route, `${request.what}: route`)
    t.equal(line.status, request.response.status, `${request.what}: status`)
    t.equal(line.path, request.path, `${request.what}: the path, without its query`)
    t.type(line.method, 'string')
    t.type(line.duration_ms, 'number', `${request.what}: duration_ms`)
    t.ok('upstream_ms' in line && 'user_id' in line, `${request.what}: upstream_ms and user_id are always present`)
    if (request.proxied) t.type(line.upstream_ms, 'number', `${request.what}: upstream_ms is a number for a proxied request`)
    else t.equal(line.upstream_ms, null, `${request.what}: upstream_ms is null when nothing was proxied`)
    if (request.userId !== undefined) t.equal(line.user_id, request.userId, `${request.what}: user_id`)
  }
  const pats = access.find((line) => line.reqId === sent.find((s) => s.what === 'PAT request')?.id)
  t.equal(pats?.auth_method, 'pat', 'the method of authentication is logged')
  const cookies = access.find((line) => line.reqId === sent.find((s) => s.what === 'cookie request')?.id)
  t.equal(cookies?.auth_method, 'session')

  // The failure behind the 502 is logged once, at error level, under the same request id.
  const downId = sent.find((s) => s.what === 'refusing upstream')?.id
  const errors = logs.lines().filter((line) => line.reqId === downId && (line.level === 'error' || line.level === 'fatal'))
  t.equal(errors.length, 1, 'the 502 has one error line', { errors })
  t.notOk(logs.lines().some((line) => (line.level === 'error' || line.level === 'fatal') && line.reqId !== downId), 'no other error lines')
})

t.test('a request slower than slow_request_threshold is logged at warn with slow: true', async (t) => {
  const { gw, logs } = await gatewayWithLogs(t)
  const ids: string[] = []
  const slow = await gw.call('GET', '/public/slow')
  t.equal(slow.status, 200)
  ids.push(String(slow.headers['x-request-id']))
  // Fast requests until one took less than the threshold (on a loaded machine even a fast
  // request may not; the loop keeps the test from depending on the machine's speed).
  for (let i = 0; i < 20; i++) {
    const fast = await gw.call('GET', `/public/fast-${i}`)
    t.equal(fast.status, 200)
    const id = String(fast.headers['x-request-id'])
    ids.push(id)
    await settle(logs, [id])
    if (logs.accessLines().some((line) => line.reqId === id && line.level === 'info')) break
  }
  await settle(logs, ids)
  const access = logs.accessLines()

  const slowLine = access.find((line) => line.reqId === ids[0])
  t.equal(slowLine?.level, 'warn', 'the slow request is logged at warn')
  t.equal(slowLine?.slow, true)
  t.equal(slowLine?.msg, 'slow request')
  t.equal(slowLine?.slow_request_threshold_ms, SLOW_THRESHOLD_MS)
  t.ok(Number(slowLine?.duration_ms) >= SLOW_UPSTREAM_MS, 'its duration includes the upstream delay')
  t.ok(Number(slowLine?.upstream_ms) >= SLOW_UPSTREAM_MS, 'and so does its upstream time')
  t.equal(slowLine?.route, 'public')
  t.equal(slowLine?.status, 200)
  t.equal(access.filter((line) => line.reqId === ids[0]).length, 1, 'the warning is the access line, not an extra one')

  // Whether a request counts as slow follows its measured duration, never the machine's
  // speed: every line is warn exactly when its duration is over the threshold.
  for (const line of access) {
    const duration = Number(line.duration_ms)
    if (duration > SLOW_THRESHOLD_MS + 0.01) t.ok(line.level === 'warn' && line.slow === true, `${duration} ms: warn`)
    else if (duration < SLOW_THRESHOLD_MS - 0.01) t.ok(line.level === 'info' && !('slow' in line), `${duration} ms: info, no slow flag`)
  }
  const fastLines = access.filter((line) => ids.slice(1).includes(String(line.reqId)) && line.level === 'info')
  t.ok(fastLines.length > 0, 'fast requests are logged at info')
  for (const line of fastLines) t.equal(line.msg, 'request')
})

t.test('a request its client abandons while it is being handled still gets one access line (499)', async (t) => {
  const { gw, logs, upstream } = await gatewayWithLogs(t)
  const agent = new Agent({ connect: { ca: (await testCertificate()).cert, servername: 'localhost' } })
  t.teardown(() => agent.close())
  const ids: string[] = []
  // A GET, and a POST whose body has been read in full (the upstream has it) when the client goes.
  for (const method of ['GET', 'POST'] as const) {
    const id = `abandoned-${method.toLowerCase()}-${randomBytes(4).toString('hex')}`
    ids.push(id)
    const controller = new AbortController()
    const arrived = upstream.received(`/public/slow-${method}`)
    const answer = request(`${gw.url}/public/slow-${method}`, {
      method,
      headers: { 'x-request-id': id, 'content-type': 'application/json' },
      body: method === 'POST' ? JSON.stringify({ some: 'data' }) : undefined,
      dispatcher: agent,
      signal: controller.signal,
    })
    await arrived
    controller.abort()
    await answer.then(
      (response) => response.body.dump().catch(() => undefined),
      () => undefined,
    )
  }
  await settle(logs, ids)
  // The upstream answers after SLOW_UPSTREAM_MS; a line written then would show up here.
  await new Promise((resolve) => setTimeout(resolve, SLOW_UPSTREAM_MS))
  for (const id of ids) {
    const lines = logs.accessLines().filter((line) => line.reqId === id)
    t.equal(lines.length, 1, `${id}: exactly one access line`, { lines })
    t.equal(lines[0]?.status, 499, `${id}: status 499 (client closed)`)
    t.equal(lines[0]?.route, 'public')
  }
  const exposition = parsePrometheus(await gw.metrics.exposition())
  t.equal(exposition.sum('gatehouse_http_requests_total', { route: 'public', status: '499' }), 2, 'and both are counted once in the request metrics')
})

// fastify's frameworkErrors answers (400 GH_BAD_PATH for a malformed percent-encoding) run no
// hooks: app.ts records them itself.
t.test('a request the router refuses (malformed percent-encoding) gets one access line and is counted', async (t) => {
  const { gw, logs } = await gatewayWithLogs(t)
  const ids: string[] = []
  for (const target of ['/%', '/public/%zz', '/auth/sessions/%E0%A4%A']) {
    const response = await gw.call('GET', target)
    t.equal(response.status, 400, `${target}: 400`)
    ids.push(String(response.headers['x-request-id']))
  }
  await settle(logs, ids, 1_000)
  for (const id of ids) {
    t.equal(logs.accessLines().filter((line) => line.reqId === id).length, 1, `${id}: one access line`)
  }
  const exposition = parsePrometheus(await gw.metrics.exposition())
  t.equal(exposition.sum('gatehouse_http_requests_total', { status: '400' }), ids.length, 'each is counted')
})

t.test("the logger's redaction paths cover headers and secrets in logged objects", async (t) => {
  const { gw } = await gatewayWithLogs(t)
  const logs = new LogCapture()
  // An app on the same runtime, only for its logger as buildApp configures it.
  const app = await buildApp(gw.runtime, { logStream: logs })
  t.teardown(() => app.close())
  const values = {
    authorization: secret('authz'),
    cookie: secret('cookie'),
    setCookie: secret('setcookie'),
    password: secret('password'),
    current: secret('current'),
    next: secret('next'),
    token: secret('token'),
  }
  app.log.info({ req: { headers: { authorization: `Bearer ${values.authorization}`, cookie: `a=${values.cookie}` } } }, 'a request object')
  app.log.info({ res: { headers: { 'set-cookie': [`s=${values.setCookie}`] } } }, 'a response object')
  app.log.info({ body: { password: values.password, current_password: values.current, new_password: values.next, token: values.token } }, 'a body')
  const lines = logs.lines()
  t.equal(lines.length, 3)
  for (const [what, value] of Object.entries(values)) t.notOk(logs.text.includes(value), `${what} is redacted`)
  t.match(logs.text, /\[redacted\]/, 'with the censor text')
})
