/**
 * PROXY protocol on the public listener (SPEC §4a, `server.proxy_protocol`) behind a real
 * haproxy: clients on different loopback addresses, seen by the gateway only through the
 * header haproxy sends (v2 in front of the TLS listener, v1 in front of a plain one), are
 * told apart in the access log, in the X-Forwarded-For the upstream gets and in per-IP rate
 * limits. A connection without the header, with a malformed one, or with one from a peer
 * outside trust_proxy is closed before any HTTP is answered.
 */
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import yaml from 'js-yaml'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { ConfigError, loadConfig } from '../src/config/index.js'
import { startGateway, type RunningGateway } from '../src/server.js'
import { databaseBackends } from './helpers/backends.js'
import { baseConfig } from './helpers/gateway.js'
import { haveHaproxy, startHaproxy } from './helpers/haproxy.js'
import { freePort } from './helpers/private-redis.js'
import { startUpstream, type RecordingUpstream } from './helpers/upstream.js'

const LIMIT = 3
const CLIENT_A = '127.0.0.2'
const CLIENT_B = '127.0.0.3'

type LogLine = Record<string, unknown>

interface ProxiedGateway {
  gateway: RunningGateway
  upstream: RecordingUpstream
  logs: LogLine[]
}

/** A gateway with proxy_protocol on, trusting only 127.0.0.1 (where haproxy connects from). */
async function startProxiedGateway(t: Test, secure: boolean): Promise<ProxiedGateway> {
  const upstream = await startUpstream(t)
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-proxy-protocol-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const raw = baseConfig()
  raw.server.proxy_protocol = true
  raw.server.trust_proxy = ['127.0.0.1/32']
  if (secure) raw.server.tls = { cert: 'tls.crt', key: 'tls.key' }
  raw.storage = { database: await databaseBackends()[0]!.url(t), sessions: 'memory' }
  raw.identity.signing_key_file = 'identity-keys.json'
  raw.metrics = { port: 0 }
  raw.logging = { level: 'info' }
  raw.routes = [{ name: 'app', match: '/app', upstream: upstream.url, auth: 'public', rate_limit: { max: LIMIT, window: '1m', key: 'ip' } }]
  const configPath = path.join(dir, 'gateway.yml')
  await writeFile(configPath, yaml.dump(raw))
  const logs: LogLine[] = []
  const gateway = await startGateway(await loadConfig(configPath), {
    logStream: new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as LogLine)
        done()
      },
    }),
  })
  t.teardown(() => gateway.close())
  return { gateway, upstream, logs }
}

/** A client whose connections leave from `localAddress`. */
function clientFrom(t: Test, localAddress: string): Agent {
  // undici's own option: the connector overrides a localAddress given in `connect`.
  const agent = new Agent({ localAddress, connect: { rejectUnauthorized: false } })
  t.teardown(() => agent.close())
  return agent
}

async function get(agent: Agent, url: string, headers: Record<string, string> = {}): Promise<number> {
  const response = await request(url, { dispatcher: agent, headers })
  await response.body.dump()
  return response.statusCode
}

/**
 * Writes `bytes` on a fresh connection and collects what comes back until the gateway closes
 * it, or until the upstream's JSON echo has come through (the gateway keeps the connection).
 */
async function exchange(port: number, bytes: string | Buffer, localAddress?: string): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) })
  let received = ''
  const done = new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1')
      if (/"url":"[^"]*"\}/.test(received)) resolve()
    })
    socket.on('close', () => resolve())
  })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(bytes)
  await done
  socket.destroy()
  return received
}

const REQUEST = 'GET /app/raw HTTP/1.1\r\nhost: gatehouse.test\r\nconnection: close\r\n\r\n'

/** Routes haproxy frontends on free ports to the gateways, with the given server option each. */
function haproxyConfig(frontends: ReadonlyArray<{ port: number; gateway: number; option: string }>): string {
  const sections = frontends.map(({ port, gateway, option }, i) => `
frontend in${i}
  bind 127.0.0.1:${port}
  default_backend gw${i}
backend gw${i}
  server gateway 127.0.0.1:${gateway} ${option}
`)
  return `global
  maxconn 256
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
${sections.join('')}`
}

t.test('behind haproxy (send-proxy-v2 to the TLS listener, send-proxy to a plain one), clients are told apart', { skip: !haveHaproxy() && 'haproxy is not installed' }, async (t) => {
  const tlsGateway = await startProxiedGateway(t, true)
  const plainGateway = await startProxiedGateway(t, false)
  const [v2Port, v1Port] = [await freePort(), await freePort()]
  await startHaproxy(t, haproxyConfig([
    { port: v2Port, gateway: tlsGateway.gateway.port, option: 'send-proxy-v2' },
    { port: v1Port, gateway: plainGateway.gateway.port, option: 'send-proxy' },
  ]), [v2Port, v1Port])
  const a = clientFrom(t, CLIENT_A)
  const b = clientFrom(t, CLIENT_B)

  for (const [version, { upstream, logs }, base] of [
    ['v2', tlsGateway, `https://127.0.0.1:${v2Port}`],
    ['v1', plainGateway, `http://127.0.0.1:${v1Port}`],
  ] as const) {
    t.test(`PROXY ${version}`, async (t) => {
      // A client's own X-Forwarded-For is not believed: its address (from the header) is not in trust_proxy.
      t.equal(await get(a, `${base}/app/a`, { 'x-forwarded-for': '198.51.100.66' }), 200)
      t.equal(upstream.last().headers['x-forwarded-for'], CLIENT_A, 'the upstream gets client A as X-Forwarded-For, not the proxy or a spoofed value')
      t.equal(await get(b, `${base}/app/b`), 200)
      t.equal(upstream.last().headers['x-forwarded-for'], CLIENT_B, 'and client B as B')

      // Per-IP limits count each client: A spends its allowance, B still has its own.
      for (let i = 1; i < LIMIT; i++) t.equal(await get(a, `${base}/app/a`), 200)
      t.equal(await get(a, `${base}/app/a`), 429, `A's request ${LIMIT + 1} is over the limit`)
      t.equal(await get(b, `${base}/app/b`), 200, 'B is counted apart from A')
      for (let i = 2; i < LIMIT; i++) t.equal(await get(b, `${base}/app/b`), 200)
      t.equal(await get(b, `${base}/app/b`), 429, 'until B spends its own allowance')

      const accessIps = logs.filter((line) => line.route === 'app').map((line) => line.ip)
      t.same([...new Set(accessIps)].sort(), [CLIENT_A, CLIENT_B], 'the access log names the two clients and never the proxy')
      t.equal(accessIps.filter((ip) => ip === CLIENT_A).length, LIMIT + 1)
    })
  }
})

t.test('a connection without a header, with a malformed one or from outside trust_proxy is closed unanswered', async (t) => {
  const plain = await startProxiedGateway(t, false)
  const port = plain.gateway.port
  const refusals = () => plain.logs.filter((line) => line.msg === 'connection closed: PROXY protocol')

  // The control: a trusted peer with a well-formed header gets its answer, as the header's client.
  const answered = await exchange(port, `PROXY TCP4 203.0.113.5 127.0.0.1 40000 443\r\n${REQUEST}`)
  t.match(answered, /^HTTP\/1\.1 200 /)
  t.equal(plain.upstream.last().headers['x-forwarded-for'], '203.0.113.5')

  t.equal(await exchange(port, REQUEST), '', 'plain HTTP without a header: closed, nothing answered')
  t.match(refusals().at(-1), { peer: '127.0.0.1', reason: /did not start with a PROXY protocol header/ })

  t.equal(await exchange(port, `PROXY TCP4 203.0.113.5 127.0.0.1 40000 443\r\n${REQUEST}`, CLIENT_A), '',
    'a well-formed header from 127.0.0.2, outside trust_proxy: closed')
  t.match(refusals().at(-1), { peer: CLIENT_A, reason: /outside server\.trust_proxy/ })

  t.equal(await exchange(port, `PROXY TCP4 not-an-address 127.0.0.1 40000 443\r\n${REQUEST}`), '',
    'a header whose address is not an IP address: closed')
  t.match(refusals().at(-1), { reason: /not an IP address/ })

  t.equal(plain.upstream.received.length, 1, 'only the control reached the upstream')

  const secure = await startProxiedGateway(t, true)
  const handshake = tlsConnect({ port: secure.gateway.port, host: '127.0.0.1', rejectUnauthorized: false })
  const outcome = await new Promise<string>((resolve) => {
    handshake.once('secureConnect', () => resolve('handshake completed'))
    handshake.once('error', (err) => resolve(`error: ${err.message}`))
  })
  handshake.destroy()
  t.match(outcome, /^error: /, 'a TLS ClientHello without a header is closed before any handshake')
})

t.test('proxy_protocol without trust_proxy is refused at start', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-proxy-protocol-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const raw = baseConfig()
  raw.server.proxy_protocol = true
  const configPath = path.join(dir, 'gateway.yml')
  await writeFile(configPath, yaml.dump(raw))
  const refused = await loadConfig(configPath).then(() => null, (err: unknown) => err)
  t.ok(refused instanceof ConfigError)
  t.same((refused as ConfigError).problems, ['server.proxy_protocol: needs server.trust_proxy: the addresses of the proxies that send the header'])
})
