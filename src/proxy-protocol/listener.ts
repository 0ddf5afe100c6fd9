/**
 * The PROXY protocol layer in front of the public listener (SPEC §4a, `server.proxy_protocol`).
 *
 * It accepts the TCP connections itself, refuses those whose peer is not in `trust_proxy`,
 * reads the PROXY header, and hands the connection with the bytes that followed the header
 * to the HTTP(S) server. From then on the socket the requests see reports the header's client
 * as its `remoteAddress`, `remotePort` and `remoteFamily`: that one property is what every
 * rule reads (fastify's `request.ip` and its X-Forwarded-For trust, the edge's forwarded
 * headers, rate limits, the login throttle, logs), so none of them needs to know about the
 * PROXY protocol. With TLS the header comes before the ClientHello; the TLS socket the
 * server wraps around the connection is given the same client.
 */
import type { Http2SecureServer } from 'node:http2'
import net from 'node:net'
import type { Server as HttpServer } from 'node:http'
import { Server as TlsServer, type TLSSocket } from 'node:tls'
import { readProxyHeader, type ProxiedPeer } from './header.js'

/** Longest wait for a complete header after the connection opens. */
export const DEFAULT_HEADER_TIMEOUT_MS = 5_000

export interface ProxyProtocolOptions {
  /** Whether this TCP peer may send a header at all (`server.trust_proxy`), asked once per connection. */
  trusts(peer: string): boolean
  headerTimeoutMs?: number
  /** Told of every connection closed before it reached the server, and why. */
  onRefused?(peer: string, reason: string): void
}

/** A listener to `listen()` in place of `target`, which then only ever gets connections that carried a header. */
export function proxyProtocolListener(target: HttpServer | Http2SecureServer, options: ProxyProtocolOptions): net.Server {
  const headerTimeoutMs = options.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS
  // TLS: the server wraps each connection in a TLSSocket of its own, which reports the
  // address of the TCP handle; it is found again by that (real) address and port.
  const awaitingTls = new Map<string, ProxiedPeer>()
  if (target instanceof TlsServer) {
    // Prepended: the client must be in place before the HTTP layer sees the socket.
    target.prependListener('secureConnection', (socket: TLSSocket) => {
      const peer = awaitingTls.get(tcpKey(socket))
      if (peer !== undefined) presentAs(socket, peer)
    })
  }

  // The options the target's own listener would have accepted its connections with (node's
  // http.Server keeps half-open connections, its https.Server does not).
  return net.createServer({ allowHalfOpen: !(target instanceof TlsServer), noDelay: true }, (socket) => {
    const tcpPeer = socket.remoteAddress ?? ''
    const refuse = (reason: string): void => {
      socket.destroy()
      options.onRefused?.(tcpPeer, reason)
    }
    if (!options.trusts(tcpPeer)) return refuse('PROXY protocol header from a peer outside server.trust_proxy')

    let received: Buffer = Buffer.alloc(0)
    const timer = setTimeout(() => refuse(`no complete PROXY protocol header within ${headerTimeoutMs} ms`), headerTimeoutMs)
    const onError = (): void => {
      clearTimeout(timer)
      socket.destroy()
    }
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk])
      const reading = readProxyHeader(received)
      if (reading.state === 'incomplete') return
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('error', onError)
      if (reading.state === 'invalid') return refuse(reading.reason)
      // Paused with what followed the header put back, so that the server reads it first: a
      // TLS socket takes the buffered bytes over when it wraps the connection (and reads
      // the rest itself), an HTTP parser gets them when the socket is resumed.
      socket.pause()
      const rest = received.subarray(reading.length)
      if (rest.length > 0) socket.unshift(rest)
      if (reading.peer !== null) {
        if (target instanceof TlsServer) {
          const key = tcpKey(socket)
          awaitingTls.set(key, reading.peer)
          socket.once('close', () => awaitingTls.delete(key))
        }
        presentAs(socket, reading.peer)
      }
      target.emit('connection', socket)
      if (!(target instanceof TlsServer)) socket.resume()
    }
    socket.on('data', onData)
    socket.on('error', onError)
  })
}

function tcpKey(socket: net.Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`
}

/** Makes the socket report the proxied client instead of the proxy. */
function presentAs(socket: net.Socket, peer: ProxiedPeer): void {
  Object.defineProperties(socket, {
    remoteAddress: { value: peer.address, configurable: true },
    remotePort: { value: peer.port, configurable: true },
    remoteFamily: { value: peer.family, configurable: true },
  })
}
