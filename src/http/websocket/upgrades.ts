/**
 * WebSocket handshakes (SPEC §4a): each `upgrade` of the listener is judged by the same
 * request pipeline as the edge (kind 'websocket': route, credential, rate limit counted once,
 * permissions, CSRF and the Origin rule for cookie-authenticated handshakes), refused with the
 * ordinary HTTP error, or sent upstream with the headers of §4. The gateway tunnels only after
 * the upstream's 101 with the right Sec-WebSocket-Accept; any other answer is relayed as an
 * ordinary answer. Any other Upgrade (h2c, …) is stripped and the request served as usual.
 */
import { createHash } from 'node:crypto'
import { request as httpRequest, ServerResponse, type ClientRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { normalizeTarget } from '../../core/paths.js'
import type { Gate, GateAllow, GateRequest } from '../../core/pipeline/index.js'
import type { OpenSockets } from '../../core/websockets/index.js'
import { GatehouseError } from '../../errors.js'
import type { GatewayMetrics } from '../../metrics/gateway-metrics.js'
import { gateHeaders } from '../gate.js'
import { gatewayCookieMatcher } from '../gateway-cookies.js'
import { hasDuplicateHost } from '../malformed-requests.js'
import { requestIdOf } from '../request-id.js'
import type { TrustedProxies } from '../trusted-proxies.js'
import { upstreamHeaders } from '../upstream-headers.js'
import { relayAnswer, switchingProtocolsHead, writeError } from './answers.js'
import { clientAddress } from './client-address.js'
import { Tunnel } from './tunnel.js'

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'

export interface UpgradeOptions {
  gate: Gate
  sockets: OpenSockets
  proxies: TrustedProxies
  sessionCookieNames: readonly string[]
  /** Every route's `user_secret` header, stripped from every handshake. */
  secretHeaders: ReadonlySet<string>
  protocol: 'http' | 'https'
  metrics: GatewayMetrics
  /** Serves a request whose Upgrade was stripped, as any other request (fastify's `routing`). */
  serveOrdinary: (request: IncomingMessage, response: ServerResponse) => void
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void }
  /** Default 1 h (SPEC §4a); tests shorten it. */
  idleTimeoutMs?: number
}

export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer) => void

export function upgradeHandler(options: UpgradeOptions): UpgradeHandler {
  const { gate, metrics } = options
  const isGatewayCookie = gatewayCookieMatcher(options.sessionCookieNames)
  const keepHeader = (name: string, value: string) => !(name.toLowerCase() === 'set-cookie' && isGatewayCookie(value.split('=', 1)[0] ?? ''))

  return (request, socket, head) => {
    socket.on('error', () => socket.destroy())
    const requestId = requestIdOf(request)
    const started = process.hrtime.bigint()
    const answered = (route: string | null, status: number) => {
      metrics.request(route ?? 'unmatched', 'GET', status, Number(process.hrtime.bigint() - started) / 1e9)
      options.log.info({ reqId: requestId, route, status, websocket: true }, 'websocket handshake')
    }
    if (hasDuplicateHost(request.rawHeaders)) {
      writeError(socket, new GatehouseError('GH_VALIDATION', 'Send one Host header, not several'), { 'x-request-id': requestId })
      return answered(null, 400)
    }
    if (!isWebSocketHandshake(request) || !routeTakesWebSockets(gate, request)) {
      serveWithoutUpgrade(request, socket, head, options.serveOrdinary)
      return
    }
    void handshake().catch((err: unknown) => {
      options.log.warn({ err, reqId: requestId }, 'websocket handshake failed')
      socket.destroy()
    })

    async function handshake(): Promise<void> {
      const gateRequest: GateRequest = {
        kind: 'websocket',
        method: 'GET',
        host: request.headers.host ?? null,
        target: request.url ?? '',
        headers: gateHeaders(request.headers),
        rawHeaders: request.rawHeaders,
        clientKey: () => clientAddress(request, options.proxies),
        requestId,
      }
      const outcome = await gate.evaluate(gateRequest)
      const base = { 'x-request-id': requestId, ...outcome.responseHeaders }
      if (outcome.kind === 'refuse') {
        writeError(socket, outcome.error, base)
        return answered(outcome.route?.name ?? null, outcome.error.statusCode)
      }
      // The client may have gone while the pipeline ran: nothing to open a socket for.
      if (socket.destroyed) return answered(outcome.route.name, 499)
      const upstream = sendUpstream(outcome)
      socket.once('close', () => upstream.destroy())
      upstream.once('timeout', () => upstream.destroy(new GatehouseError('GH_GATEWAY_TIMEOUT')))
      upstream.once('error', (err) => {
        const answer = err instanceof GatehouseError ? err : new GatehouseError('GH_BAD_GATEWAY', undefined, { cause: err })
        writeError(socket, answer, base)
        answered(outcome.route.name, answer.statusCode)
      })
      upstream.once('response', (response) => {
        relayAnswer(socket, response, keepHeader, base).then(
          () => answered(outcome.route.name, response.statusCode ?? 502),
          () => socket.destroy(),
        )
      })
      upstream.once('upgrade', (response, upstreamSocket, upstreamHead) => {
        if (!acceptsHandshake(request, response)) {
          upstreamSocket.destroy()
          writeError(socket, new GatehouseError('GH_BAD_GATEWAY', 'The upstream did not accept the WebSocket handshake'), base)
          return answered(outcome.route.name, 502)
        }
        upstreamSocket.setTimeout(0)
        if (socket.destroyed) return void upstreamSocket.destroy()
        open(outcome, response, upstreamSocket, upstreamHead)
      })
      upstream.end()
    }

    function sendUpstream(allowed: GateAllow): ClientRequest {
      const { route } = allowed
      const url = new URL(allowed.upstream.url)
      const headers = upstreamHeaders(request.headers, {
        sessionCookieNames: options.sessionCookieNames,
        publicRoute: route.auth === 'public',
        requestId,
        peerAddress: request.socket.remoteAddress ?? '',
        peerTrusted: options.proxies.trusts(request.socket.remoteAddress ?? ''),
        protocol: options.protocol,
        host: request.headers.host,
        serverHost: url.host,
        preserveHost: route.preserve_host,
        identity: allowed.identity && allowed.identityHeaders,
        secretHeaders: options.secretHeaders,
        userSecret: allowed.userSecret,
      })
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest
      return send(url, { method: 'GET', headers: { ...headers, connection: 'Upgrade', upgrade: 'websocket' }, timeout: route.timeout, agent: false })
    }

    function open(allowed: GateAllow, response: IncomingMessage, upstreamSocket: Socket, upstreamHead: Buffer): void {
      const route = allowed.route.name
      const identity = allowed.identity
      socket.write(switchingProtocolsHead(response, keepHeader))
      answered(route, 101)
      metrics.websocketOpened(route)
      let untrack = () => {}
      const tunnel = new Tunnel(socket, upstreamSocket, {
        idleTimeoutMs: options.idleTimeoutMs,
        onClosed: (reason) => {
          untrack()
          metrics.websocketClosed(route, reason)
        },
      })
      untrack = options.sockets.add({
        route: allowed.route,
        rawHeaders: request.rawHeaders,
        userId: identity?.user.id ?? null,
        sessionId: identity?.session?.session.id ?? null,
        patId: identity?.tokenId ?? null,
        expiresAt: identity?.expiresAt ?? null,
        close: (code, reason) => tunnel.close(code, reason),
      })
      tunnel.start(head, upstreamHead)
    }
  }
}

/** SPEC §4a: the Upgrade of a GET naming websocket; every other Upgrade is stripped. */
function isWebSocketHandshake(request: IncomingMessage): boolean {
  const upgrade = (request.headers.upgrade ?? '').split(',').map((token) => token.trim().toLowerCase())
  return request.method === 'GET' && upgrade.includes('websocket')
}

/**
 * Whether the route the handshake names tunnels WebSockets. A target the pipeline would refuse
 * (bad path, no route) is judged by the pipeline itself, so that it gets the same refusal.
 */
function routeTakesWebSockets(gate: Gate, request: IncomingMessage): boolean {
  try {
    const match = gate.table.match(normalizeTarget(request.url ?? '').path, 'GET', request.headers.host ?? null)
    return match.kind !== 'route' || match.route.websocket
  } catch {
    return true
  }
}

/** The upstream's 101 names websocket and answers the client's key (RFC 6455 §4.2.2). */
function acceptsHandshake(request: IncomingMessage, response: IncomingMessage): boolean {
  const key = request.headers['sec-websocket-key']
  if (response.statusCode !== 101 || typeof key !== 'string') return false
  const expected = createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64')
  return response.headers['sec-websocket-accept'] === expected && (response.headers.upgrade ?? '').toLowerCase() === 'websocket'
}

/** Serves the request as if it had never asked for an upgrade, then closes the connection. */
function serveWithoutUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, serve: UpgradeOptions['serveOrdinary']): void {
  delete request.headers.upgrade
  const raw = request.rawHeaders
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === 'upgrade') raw.splice(i, 2)
  if (head.length > 0) socket.unshift(head)
  const response = new ServerResponse(request)
  response.shouldKeepAlive = false
  response.assignSocket(socket as Socket)
  response.once('finish', () => {
    response.detachSocket(socket as Socket)
    socket.end()
  })
  serve(request, response)
}
