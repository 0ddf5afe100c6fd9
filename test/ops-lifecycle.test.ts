/**
 * The gateway's life as an operator sees it (SPEC §7): a reload under continuous load that
 * fails no request, a bad or restart-only reload refused with the old configuration still
 * serving, a new certificate picked up by new connections, SIGTERM finishing in-flight
 * requests before exiting 0 and SIGHUP reloading, through the real `gatehouse serve`
 * process; and the HTTP→HTTPS redirect listener.
 */
import { once } from 'node:events'
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { loadConfig } from '../src/config/index.js'
import { ensureDevCertificate } from '../src/dev-certificate.js'
import { startGateway, type RunningGateway } from '../src/server.js'
import { serve } from './helpers/cli-process.js'
import { workspace, type Workspace } from './helpers/workspace.js'


/** A workspace with one public route to `upstream`. */
function lifecycleWorkspace(t: Test, upstream: string): Promise<Workspace> {
  return workspace(t, 'lifecycle', (raw) => {
    raw.routes = [{ name: 'app', match: '/app', upstream, auth: 'public' }]
  })
}

/** An upstream answering 200 "ok", after `?delay=<ms>` when asked. */
async function slowUpstream(t: Test): Promise<{ url: string; requests: () => number }> {
  let requests = 0
  const server: Server = createServer((req, res) => {
    requests++
    const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay') ?? 0)
    setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'), delay)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests }
}

async function start(t: Test, ws: Workspace): Promise<{ gateway: RunningGateway; agent: Agent; base: string }> {
  const gateway = await startGateway(await loadConfig(ws.configPath), {
    logStream: new Writable({ write: (_chunk, _encoding, done) => done() }),
  })
  t.teardown(() => gateway.close())
  const agent = new Agent({ connect: { rejectUnauthorized: false }, connections: 8 })
  t.teardown(() => agent.close())
  return { gateway, agent, base: `https://127.0.0.1:${gateway.port}` }
}

async function status(agent: Agent, url: string): Promise<number> {
  const response = await request(url, { dispatcher: agent })
  await response.body.dump()
  return response.statusCode
}

t.test('a reload under continuous load fails no request and swaps the configuration', async (t) => {
  const upstream = await slowUpstream(t)
  const ws = await lifecycleWorkspace(t, upstream.url)
  const { gateway, agent, base } = await start(t, ws)
  t.equal(await status(agent, `${base}/new`), 404, 'the route to come does not exist yet')

  const results = new Map<number, number>()
  let running = true
  const loop = async () => {
    while (running) {
      const code = await status(agent, `${base}/app/x`).catch(() => -1)
      results.set(code, (results.get(code) ?? 0) + 1)
    }
  }
  const loops = Array.from({ length: 8 }, loop)
  // A request that is in flight across every reload below.
  const longRequest = status(agent, `${base}/app/slow?delay=1500`)

  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 150))
    await ws.write((raw) => {
      raw.routes.push({ name: `new`, match: '/new', upstream: upstream.url, auth: 'public' })
      raw.sessions = { idle_timeout: `${20 + i}m` }
    })
    const result = await gateway.reload()
    t.ok(result.ok, `reload ${i + 1} applied`, { result })
  }
  await new Promise((resolve) => setTimeout(resolve, 150))
  running = false
  await Promise.all(loops)
  t.equal(await longRequest, 200, 'the request in flight during the reloads was answered')
  const total = [...results.values()].reduce((a, b) => a + b, 0)
  t.ok(total > 50, `${total} requests were made during the reloads`)
  t.same([...results.keys()], [200], 'every one of them answered 200', { results: Object.fromEntries(results) })
  t.equal(await status(agent, `${base}/new/x`), 200, 'the new route serves')
  t.equal(gateway.config.sessions.idle_timeout, 22 * 60_000)
  const exposition = await gateway.metrics.exposition()
  t.match(exposition, /gatehouse_config_reloads_total\{result="success"\} 3/)
})

t.test('a bad reload is refused and the old configuration keeps serving', async (t) => {
  const upstream = await slowUpstream(t)
  const ws = await lifecycleWorkspace(t, upstream.url)
  const { gateway, agent, base } = await start(t, ws)

  await ws.write((raw) => {
    raw.routes[0].timeout = 'soon'
    raw.routes.push({ name: 'new', match: '/new', upstream: upstream.url, auth: 'public' })
  })
  const invalid = await gateway.reload()
  t.equal(invalid.ok, false)
  t.match(invalid.ok ? '' : invalid.error, /routes\[0\]\.timeout: /, 'the problem is named by its key path')

  await writeFile(ws.configPath, 'server: [unbalanced\n')
  const unparsable = await gateway.reload()
  t.equal(unparsable.ok, false, 'a file that is not YAML is refused')

  await ws.write((raw) => {
    raw.server.port = 1
    raw.storage.sessions = 'redis://127.0.0.1:6379'
  })
  const restartOnly = await gateway.reload()
  t.equal(restartOnly.ok, false)
  t.match(restartOnly.ok ? '' : restartOnly.error, /server\.port: changing this needs a restart/)
  t.match(restartOnly.ok ? '' : restartOnly.error, /storage\.sessions: changing this needs a restart/)

  t.equal(await status(agent, `${base}/app/x`), 200, 'the old routes still serve')
  t.equal(await status(agent, `${base}/new/x`), 404, 'nothing of the refused configurations was applied')
  t.match(await gateway.metrics.exposition(), /gatehouse_config_reloads_total\{result="failure"\} 3/)
})

t.test('a reload picks up a new certificate for new connections; open ones carry on', async (t) => {
  const upstream = await slowUpstream(t)
  const ws = await lifecycleWorkspace(t, upstream.url)
  const { gateway, agent, base } = await start(t, ws)
  const fingerprint = async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: gateway.port, rejectUnauthorized: false })
    await once(socket, 'secureConnect')
    const value = socket.getPeerCertificate().fingerprint256
    socket.destroy()
    return value
  }
  const before = await fingerprint()
  t.equal(await status(agent, `${base}/app/x`), 200, 'a kept-alive connection is open')

  const fresh = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-cert-'))
  t.teardown(() => rm(fresh, { recursive: true, force: true }))
  await ensureDevCertificate(path.join(fresh, 'tls.crt'), path.join(fresh, 'tls.key'))
  // A half-replaced pair (new certificate, old key) is refused: nothing changes.
  await copyFile(path.join(fresh, 'tls.crt'), path.join(ws.dir, 'tls.crt'))
  const mismatched = await gateway.reload()
  t.equal(mismatched.ok, false)
  t.match(mismatched.ok ? '' : mismatched.error, /^server\.tls\.key: .*do not pair/)
  t.equal(await fingerprint(), before, 'still the old certificate')

  await copyFile(path.join(fresh, 'tls.key'), path.join(ws.dir, 'tls.key'))
  t.ok((await gateway.reload()).ok)
  const after = await fingerprint()
  t.not(after, before, 'a new connection gets the new certificate')
  t.equal(await status(agent, `${base}/app/x`), 200, 'the connection opened before still works')
})

t.test('the redirect listener answers 308 to the same path on public_url', async (t) => {
  const upstream = await slowUpstream(t)
  const ws = await lifecycleWorkspace(t, upstream.url)
  await ws.write((raw) => {
    raw.server.redirect_http_port = 0
  })
  const { gateway } = await start(t, ws)
  const response = await request(`http://127.0.0.1:${gateway.redirectPort}/app/a%20b?x=1&y=2`, { method: 'GET' })
  await response.body.dump()
  t.equal(response.statusCode, 308)
  t.equal(response.headers.location, 'https://gatehouse.test/app/a%20b?x=1&y=2')

  // SPEC §4a: absolute and asterisk forms would be pasted into Location (an open redirect
  // to https://gatehouse.testhttp://a@evil.example/), and two Host headers are malformed.
  for (const [target, extra] of [
    ['http://a@evil.example/', ''], ['https://evil.example/x', ''], ['*', ''], ['evil', ''], ['/app/x', 'Host: evil.example\r\n'],
  ] as const) {
    const answer = await plainRawRequest(gateway.redirectPort!, `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${extra}Connection: close\r\n\r\n`)
    t.match(answer, /^HTTP\/1\.1 400 /, `${target} ${extra.trim()}: 400`)
    t.notMatch(answer, /location:/i, `${target}: no Location`)
  }
  t.match(await plainRawRequest(gateway.redirectPort!, 'OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400 /, 'OPTIONS *: 400')
})

/** Sends raw bytes over plain TCP and reads until the server closes. */
function plainRawRequest(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.end(bytes))
    let answer = ''
    socket.setEncoding('latin1').on('data', (chunk: string) => (answer += chunk))
    socket.on('end', () => resolve(answer)).on('error', reject)
  })
}

t.test('gatehouse serve: SIGHUP reloads; SIGTERM finishes in-flight requests, refuses new ones and exits 0', async (t) => {
  const upstream = await slowUpstream(t)
  const ws = await lifecycleWorkspace(t, upstream.url)
  const served = await serve(t, ws.dir, ws.configPath)
  const { child } = served
  const base = served.url.replace('//localhost:', '//127.0.0.1:')
  const agent = new Agent({ connect: { rejectUnauthorized: false } })
  t.teardown(() => agent.close())

  t.equal(await status(agent, `${base}/later/x`), 404)
  await ws.write((raw) => raw.routes.push({ name: 'later', match: '/later', upstream: upstream.url, auth: 'public' }))
  child.kill('SIGHUP')
  let reloaded = 404
  for (let i = 0; i < 100 && reloaded !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    reloaded = await status(agent, `${base}/later/x`)
  }
  t.equal(reloaded, 200, 'SIGHUP applied the new route')

  const inFlight = status(agent, `${base}/app/slow?delay=1000`)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  child.kill('SIGTERM')
  await new Promise((resolve) => setTimeout(resolve, 200))
  const fresh = new Agent({ connect: { rejectUnauthorized: false } })
  t.teardown(() => fresh.close())
  const refused = await status(fresh, `${base}/app/x`).catch((err: Error & { code?: string }) => err.code ?? err.message)
  t.equal(refused, 'ECONNREFUSED', 'a new connection is refused once shutting down')
  t.equal(await inFlight, 200, 'the request in flight when SIGTERM came was answered')
  const [code] = await exited
  t.equal(code, 0, 'exit 0', { output: served.output().slice(-2000) })
})
