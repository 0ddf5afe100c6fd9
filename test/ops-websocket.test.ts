/**
 * Open WebSockets across the gateway's life (SPEC §4a, §7): a reload keeps them open unless it
 * removes their route or changes what it grants, and SIGTERM to the real `gatehouse serve`
 * process closes them with 1001 once `server.drain_timeout` has passed, then exits 0.
 */
import { once } from 'node:events'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { loadConfig } from '../src/config/index.js'
import { startGateway } from '../src/server.js'
import { serve } from './helpers/cli-process.js'
import { closed, nextMessage, openSocket, startEchoUpstream } from './helpers/websocket.js'
import { workspace, type Workspace } from './helpers/workspace.js'


/** A workspace with two WebSocket routes to `upstream` and a drain timeout of 1 s. */
function socketWorkspace(t: Test, upstream: string): Promise<Workspace> {
  return workspace(t, 'ws', (raw) => {
    raw.server.drain_timeout = '1s'
    raw.routes = [
      { name: 'live', match: '/live', upstream, websocket: true, auth: 'public' },
      { name: 'feed', match: '/feed', upstream, websocket: true, auth: 'public' },
    ]
  })
}

async function echoes(t: Test, socket: WebSocket, what: string): Promise<void> {
  socket.send(what)
  t.equal((await nextMessage(socket)).data.toString(), what, `${what}: the socket still carries frames`)
}

t.test('a reload keeps open sockets; one that removes or changes their route closes them with 1008', async (t) => {
  const upstream = await startEchoUpstream(t)
  const ws = await socketWorkspace(t, upstream.url)
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
  const ws = await socketWorkspace(t, upstream.url)
  const served = await serve(t, ws.dir, ws.configPath)
  const { child } = served
  const base = served.url.replace('//localhost:', '//127.0.0.1:')
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
  t.equal(exitCode, 0, 'exit 0', { output: served.output().slice(-2000) })
  t.equal(upstream.closes.at(-1), 1001, 'the upstream side was closed with 1001 too')
})
