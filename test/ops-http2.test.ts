/**
 * HTTP/2 on the real listener (server.ts, SPEC §4a): ALPN offers h2 and http/1.1 with
 * `server.http2` (only http/1.1 without it), both reach the app of the current configuration,
 * a reload keeps an open h2 session working, and shutdown closes it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect as connectH2 } from 'node:http2'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import yaml from 'js-yaml'
import { loadConfig } from '../src/config/index.js'
import { ensureDevCertificate } from '../src/dev-certificate.js'
import { startGateway, type RunningGateway } from '../src/server.js'
import { databaseBackends } from './helpers/backends.js'
import { baseConfig } from './helpers/gateway.js'

async function upstream(t: Test): Promise<string> {
  const server = createServer((req, res) => {
    req.resume()
    // Two values for a field HTTP/2 allows once: node refuses to send that answer to an h2 client.
    if (req.url?.endsWith('/twice')) return void res.writeHead(200, { 'content-type': ['text/plain', 'text/html'] }).end('x')
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`v${req.httpVersion} ${req.headers['x-forwarded-host'] ?? ''}`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function start(t: Test, http2: boolean, route = '/app'): Promise<{ gateway: RunningGateway; write: (match: string) => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-h2-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await ensureDevCertificate(path.join(dir, 'tls.crt'), path.join(dir, 'tls.key'))
  const database = await databaseBackends()[0]!.url(t)
  const up = await upstream(t)
  const configPath = path.join(dir, 'gateway.yml')
  const write = async (match: string) => {
    const raw = baseConfig()
    raw.server.tls = { cert: 'tls.crt', key: 'tls.key' }
    raw.server.http2 = http2
    raw.storage = { database, sessions: 'memory' }
    raw.identity.signing_key_file = 'identity-keys.json'
    raw.metrics = { port: 0 }
    raw.logging = { level: 'warn' }
    raw.routes = [{ name: 'app', match, upstream: up, auth: 'public' }]
    await writeFile(configPath, yaml.dump(raw))
  }
  await write(route)
  const gateway = await startGateway(await loadConfig(configPath), { logStream: new Writable({ write: (_c, _e, done) => done() }) })
  t.teardown(() => gateway.close())
  return { gateway, write }
}

function alpn(port: number): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      resolve(socket.alpnProtocol ?? false)
      socket.destroy()
    })
    socket.on('error', reject)
  })
}

function h2Get(session: ReturnType<typeof connectH2>, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': target })
    let status = 0
    const chunks: Buffer[] = []
    stream.on('response', (head) => (status = Number(head[':status'])))
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }))
    stream.on('error', reject)
  })
}

t.test('server.http2: ALPN h2 and http/1.1 on one listener, both through the current configuration', async (t) => {
  const { gateway, write } = await start(t, true)
  t.equal(await alpn(gateway.port), 'h2')
  const session = connectH2(`https://localhost:${gateway.port}`, { rejectUnauthorized: false })
  t.teardown(() => session.destroy())
  const first = await h2Get(session, '/app/x')
  t.equal(first.status, 200)
  t.equal(first.body, `v1.1 localhost:${gateway.port}`, 'the upstream is spoken to over HTTP/1.1; X-Forwarded-Host is :authority')
  const agent = new Agent({ connect: { rejectUnauthorized: false } })
  t.teardown(() => agent.close())
  const h1 = await request(`https://127.0.0.1:${gateway.port}/app/x`, { dispatcher: agent })
  t.equal(h1.statusCode, 200)
  await h1.body.text()

  await write('/moved')
  const reloaded = await gateway.reload()
  t.ok(reloaded.ok, JSON.stringify(reloaded))
  t.equal((await h2Get(session, '/app/x')).status, 404, 'the open h2 session reaches the new configuration')
  t.equal((await h2Get(session, '/moved/x')).status, 200)
  const closed = new Promise<void>((resolve) => session.once('close', () => resolve()))
  await gateway.close()
  await closed
  t.pass('shutdown closed the h2 session')
})

t.test('server.http2: an upstream answer HTTP/2 cannot carry is a 502 for the h2 client, sent whole to an HTTP/1.1 one', async (t) => {
  const { gateway } = await start(t, true)
  const session = connectH2(`https://localhost:${gateway.port}`, { rejectUnauthorized: false })
  t.teardown(() => session.destroy())
  const h2 = await h2Get(session, '/app/twice')
  t.equal(h2.status, 502)
  t.match(h2.body, /GH_BAD_GATEWAY/)
  t.notMatch(h2.body, /content-type|127\.0\.0\.1/i, 'the answer names neither the field nor the upstream')
  t.equal((await h2Get(session, '/app/x')).status, 200, 'the session goes on')
  const agent = new Agent({ connect: { rejectUnauthorized: false } })
  t.teardown(() => agent.close())
  const h1 = await request(`https://127.0.0.1:${gateway.port}/app/twice`, { dispatcher: agent })
  t.equal(h1.statusCode, 200)
  t.equal(await h1.body.text(), 'x')
})

t.test('server.http2: false offers http/1.1 only', async (t) => {
  const { gateway } = await start(t, false)
  t.equal(await alpn(gateway.port), 'http/1.1')
})
