/**
 * Open WebSockets across the gateway's life (SPEC §4a, §7): a reload keeps them open unless it
 * removes their route or changes what it grants, and SIGTERM to the real `gatehouse serve`
 * process closes them with 1001 once `server.drain_timeout` has passed, then exits 0.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import yaml from 'js-yaml'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { loadConfig } from '../src/config/index.js'
import { ensureDevCertificate } from '../src/dev-certificate.js'
import { startGateway } from '../src/server.js'
import { databaseBackends } from './helpers/backends.js'
import { baseConfig, type RawConfig } from './helpers/gateway.js'
import { closed, nextMessage, openSocket, startEchoUpstream } from './helpers/websocket.js'

const BIN = fileURLToPath(new URL('../src/bin.js', import.meta.url))

async function workspace(t: Test, upstream: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-ws-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await ensureDevCertificate(path.join(dir, 'tls.crt'), path.join(dir, 'tls.key'))
  const database = await databaseBackends()[0]!.url(t)
  const configPath = path.join(dir, 'gateway.yml')
  const write = async (configure: (raw: RawConfig) => void = () => {}) => {
    const raw = baseConfig()
    raw.server.tls = { cert: 'tls.crt', key: 'tls.key' }
    raw.server.drain_timeout = '1s'
    raw.storage = { database, sessions: 'memory' }
    raw.identity.signing_key_file = 'identity-keys.json'
    raw.metrics = { port: 0 }
    raw.logging = { level: 'warn' }
    raw.routes = [
      { name: 'live', match: '/live', upstream, websocket: true, auth: 'public' },
      { name: 'feed', match: '/feed', upstream, websocket: true, auth: 'public' },
    ]
    configure(raw)
    await writeFile(configPath, yaml.dump(raw))
  }
  await write()
  return { dir, configPath, write }
}

async function echoes(t: Test, socket: WebSocket, what: string): Promise<void> {
  socket.send(what)
  t.equal((await nextMessage(socket)).data.toString(), what, `${what}: the socket still carries frames`)
}

t.test('a reload keeps open sockets; one that removes or changes their route closes them with 1008', async (t) => {
  const upstream = await startEchoUpstream(t)
  const ws = await workspace(t, upstream.url)
  const gateway = await startGateway(await loadConfig(ws.configPath), { logStream: new Writable({ write: (_c, _e, done) => done() }) })
  t.teardown(() => gateway.close())
  const base = `https://127.0.0.1:${gateway.port}`
  const live = await openSocket(base, '/live')
  const feed = await openSocket(base, '/feed')
  t.teardown(() => (live.terminate(), feed.terminate()))

  await ws.write((raw) => raw.routes.push({ name: 'other', match: '/other', upstream: upstream.url, auth: 'public' }))
  t.equal((await gateway.reload()).ok, true)
  await echoes(t, live, 'after an unrelated reload')
  await echoes(t, feed, 'feed after an unrelated reload')

  const liveClosed = closed(live)
  await ws.write((raw) => {
    raw.routes = raw.routes.filter((route: { name: string }) => route.name !== 'live')
    raw.routes.find((route: { name: string }) => route.name === 'feed').upstream = `${upstream.url}/v2`
  })
  const feedClosed = closed(feed)
  t.equal((await gateway.reload()).ok, true)
  t.equal((await liveClosed).code, 1008, 'the route was removed: 1008')
  t.equal((await feedClosed).code, 1008, 'the route now goes to another upstream: 1008')
  t.match(await gateway.metrics.exposition(), /gatehouse_websocket_closed_total\{route="feed",reason="revoked"\} 1/)
})

t.test('gatehouse serve: SIGTERM closes open sockets with 1001 after server.drain_timeout and exits 0', async (t) => {
  const upstream = await startEchoUpstream(t)
  const ws = await workspace(t, upstream.url)
  const child = spawn(process.execPath, [BIN, 'serve', '--config', ws.configPath], { cwd: ws.dir, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${output}`)), 30_000)
    const poll = setInterval(() => {
      const found = /listening on https:\/\/(?:localhost|127\.0\.0\.1):(\d+)/.exec(output)
      if (found) {
        clearInterval(poll)
        clearTimeout(timer)
        resolve(`https://127.0.0.1:${found[1]}`)
      }
    }, 50)
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${output}`)))
  })
  const socket = await openSocket(base, '/live')
  t.teardown(() => socket.terminate())
  await echoes(t, socket, 'before SIGTERM')
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  const closing = closed(socket)
  child.kill('SIGTERM')
  const { code, ms } = await closing
  t.equal(code, 1001, 'closed with 1001 (going away)')
  t.ok(ms >= 900, `after the drain timeout of 1 s (${ms} ms)`)
  const [exitCode] = await exited
  t.equal(exitCode, 0, 'exit 0', { output: output.slice(-2000) })
  t.equal(upstream.closes.at(-1), 1001, 'the upstream side was closed with 1001 too')
})
