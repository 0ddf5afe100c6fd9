/**
 * A real WebSocket upstream (the `ws` package) that records each handshake's headers and
 * echoes every message back as it came (text as text, binary as binary), and client helpers:
 * open a socket through the gateway, see a refused handshake's HTTP answer, wait for a close.
 */
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { WebSocket, WebSocketServer } from 'ws'

export interface EchoUpstream {
  url: string
  /** The handshakes the upstream received, with their headers. */
  handshakes: { url: string; headers: IncomingHttpHeaders }[]
  /** How each upstream-side socket ended: close code, in order. */
  closes: number[]
  /** Sends `data` to every open upstream-side socket. */
  broadcast(data: string | Buffer): void
}

export async function startEchoUpstream(t: Test): Promise<EchoUpstream> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('plain answer'))
  const wss = new WebSocketServer({ server, maxPayload: 8 * 1024 * 1024 })
  const upstream: EchoUpstream = {
    url: '',
    handshakes: [],
    closes: [],
    broadcast: (data) => wss.clients.forEach((client) => client.send(data)),
  }
  wss.on('connection', (socket, request) => {
    upstream.handshakes.push({ url: request.url ?? '', headers: request.headers })
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }))
    socket.on('close', (code) => upstream.closes.push(code))
    socket.on('error', () => undefined)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const client of wss.clients) client.terminate()
    wss.close()
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  upstream.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return upstream
}

export interface ClientOptions {
  headers?: Record<string, string>
  /** The test certificate (trusted for servername localhost); omit for plain ws://. */
  ca?: Buffer
}

function wsUrl(base: string, path: string): string {
  return base.replace(/^http/, 'ws') + path
}

function connect(base: string, path: string, options: ClientOptions): WebSocket {
  return new WebSocket(wsUrl(base, path), {
    headers: options.headers,
    ...(options.ca ? { ca: options.ca, servername: 'localhost' } : { rejectUnauthorized: false }),
  })
}

/** An open socket through the gateway; rejects with the HTTP answer when the handshake is refused. */
export function openSocket(base: string, path: string, options: ClientOptions = {}): Promise<WebSocket> {
  const socket = connect(base, path, options)
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket))
    socket.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused with ${res.statusCode}`)))
    socket.once('error', reject)
  })
}

export interface RefusedHandshake {
  status: number
  headers: IncomingHttpHeaders
  body: Record<string, unknown>
}

/** The HTTP answer to a handshake that must be refused; rejects if a socket opens. */
export function refusedHandshake(base: string, path: string, options: ClientOptions = {}): Promise<RefusedHandshake> {
  const socket = connect(base, path, options)
  return new Promise((resolve, reject) => {
    socket.once('upgrade', () => reject(new Error('the handshake got a 101')))
    socket.once('open', () => reject(new Error('the socket opened')))
    socket.once('error', () => undefined)
    socket.once('unexpected-response', (_req, res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk))
      res.on('end', () => {
        let body: Record<string, unknown> = {}
        try {
          body = JSON.parse(text) as Record<string, unknown>
        } catch {
          body = { text }
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
      })
    })
  })
}

/** The close code the client gets, and how long after this call it came. */
export function closed(socket: WebSocket): Promise<{ code: number; ms: number }> {
  const started = Date.now()
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, ms: 0 })
  return new Promise((resolve) => socket.once('close', (code) => resolve({ code, ms: Date.now() - started })))
}

/** The next message the client receives. */
export function nextMessage(socket: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    socket.once('message', (data, isBinary) => resolve({ data: Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), isBinary }))
    socket.once('close', (code) => reject(new Error(`closed with ${code} before a message`)))
  })
}
