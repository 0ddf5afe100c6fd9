/**
 * Runs the gateway: the TLS (or plain) listener, the metrics listener, the optional
 * HTTP→HTTPS redirect listener, configuration reloads and graceful shutdown (SPEC §7).
 *
 * The listener is a node server of our own that hands each request to the app of the
 * current configuration. A reload builds a complete new app (new routes, limits, roles,
 * services) on the same stores and breakers, swaps it in for new requests, and lets the old
 * one finish its in-flight requests before closing it: no connection is dropped and every
 * request sees one configuration. The certificate is swapped with setSecureContext, which
 * affects new TLS handshakes only.
 */
import { createServer as createHttpServer, Server, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createSecureServer, type Http2SecureServer, type Http2Session } from 'node:http2'
import type { AddressInfo, Server as NetServer, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { DestinationStream } from 'pino'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config/index.js'
import { configChanges } from './config/changes.js'
import { restartOnlyChanges } from './config/restart-keys.js'
import type { GatewayConfig } from './config/types.js'
import { ensureDevCertificate } from './dev-certificate.js'
import { hasDuplicateHost, isOriginForm } from './http/malformed-requests.js'
import { trustedProxies } from './http/trusted-proxies.js'
import { GatewayMetrics } from './metrics/gateway-metrics.js'
import { startMetricsServer, type MetricsServer } from './metrics/metrics-server.js'
import { BreakerRegistry } from './resilience/breaker-registry.js'
import { proxyProtocolListener } from './proxy-protocol/listener.js'
import { openRuntime, type Runtime } from './runtime.js'
import { addressOf, errorCode, listenFailure, safeMessage, startupStep } from './startup-error.js'
import { CloseCode, OpenSockets } from './core/websockets/index.js'
import { readTlsFiles, type TlsMaterial } from './tls-files.js'

export interface GatewayOptions {
  /** Where the JSON logs go (default: stdout); tests capture them. */
  logStream?: DestinationStream
  /** Default: a registry with the default breaker settings. */
  breakers?: BreakerRegistry
  /** How long a shutdown or a reload waits for in-flight requests (and a shutdown for WebSockets). Default: `server.drain_timeout`. */
  drainTimeoutMs?: number
}

export type ReloadResult = { ok: true; config: GatewayConfig } | { ok: false; error: string }

export interface RunningGateway {
  /** The app serving new requests (replaced by each successful reload). */
  readonly app: FastifyInstance
  readonly runtime: Runtime
  readonly config: GatewayConfig
  readonly metrics: GatewayMetrics
  /** The open WebSockets, across reloads. */
  readonly websockets: OpenSockets
  /** The URL the gateway listens on (with the real port when the config says 0). */
  readonly url: string
  readonly port: number
  readonly metricsPort: number
  readonly redirectPort: number | null
  /** Reads the config file again and applies it; a bad one is refused and the old one stays. */
  reload(): Promise<ReloadResult>
  /** Stops accepting, finishes in-flight requests, closes the stores. */
  close(): Promise<void>
}

/** One configuration's app and the requests it is still answering. */
interface Mounted {
  app: FastifyInstance
  runtime: Runtime
  handler: (request: IncomingMessage, response: ServerResponse) => void
  inFlight: number
  idle: (() => void)[]
}

export async function startGateway(initialConfig: GatewayConfig, options: GatewayOptions = {}): Promise<RunningGateway> {
  let config = initialConfig
  const metrics = new GatewayMetrics()
  const breakers = options.breakers ?? new BreakerRegistry()
  let createdCertificate = false
  let tls: TlsMaterial | null = null
  if (config.server.tls) {
    const files = config.server.tls
    const created = await startupStep('server.tls.cert', () => ensureDevCertificate(files.cert, files.key),
      (err) => `cannot create a development certificate at ${files.cert} (${errorCode(err) ?? safeMessage(err)})`)
    createdCertificate = created === 'created'
    tls = await readTlsFiles(files)
  }
  metrics.setSources({ certificateExpiry: () => tls?.expiresAt ?? null })

  // Fixed for the process: the listener is made once (server.http2 needs a restart).
  const http2 = tls !== null && config.server.http2
  const runtime = await openRuntime(config, { breakers, onLockout: () => metrics.lockout() })
  // One set of open WebSockets for the process: a reload re-checks them, it does not close them.
  const websockets = new OpenSockets({ bus: runtime.invalidation, clock: runtime.clock })
  let current: Mounted
  try {
    current = await mount(runtime, config)
  } catch (err) {
    websockets.stop()
    await runtime.close()
    throw err
  }

  let closing = false
  const publicListener = createListener(tls, http2)
  const { server } = publicListener
  const secure = tls ? (server as Http2SecureServer | ReturnType<typeof createHttpsServer>) : null
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    // While shutting down, a kept-alive connection is closed after its current answer.
    if (closing) response.setHeader('connection', 'close')
    dispatch(current, request, response)
  })
  // Handshakes go to the current app's server, where its WebSocket plugin listens.
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (closing) return void socket.destroy()
    current.app.server.emit('upgrade', request, socket, head)
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return socket.destroy()
    const body = JSON.stringify({ statusCode: 400, code: 'GH_VALIDATION', error: 'Bad Request', message: 'Malformed HTTP request' })
    socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  })

  // server.proxy_protocol: a layer of our own accepts the connections and hands them on once
  // their header is read; trust_proxy is read at each connection, so a reload applies to it.
  let proxies = trustedProxies(config.server.trust_proxy)
  const listener = config.server.proxy_protocol
    ? proxyProtocolListener(server, {
      trusts: (peer) => proxies.trusts(peer),
      onRefused: (peer, reason) => current.app.log.warn({ peer, reason }, 'connection closed: PROXY protocol'),
    })
    : server

  let metricsServer: MetricsServer | null = null
  let redirect: Server | null = null
  try {
    const { host, port, redirect_http_port: redirectPort } = config.server
    await startupStep('server.port', () => listen(listener, port, host), (err) => listenFailure(host, port, err))
    // node starts enforcing headersTimeout and requestTimeout on 'listening'; the server that
    // only gets connections handed over never listens itself.
    if (listener !== server) server.emit('listening')
    metricsServer = await startupStep('metrics.port', () => startMetricsServer(metrics, config.metrics.host, config.metrics.port),
      (err) => listenFailure(config.metrics.host, config.metrics.port, err))
    redirect = redirectPort === null
      ? null
      : await startupStep('server.redirect_http_port', () => startRedirect(config), (err) => listenFailure(host, redirectPort, err))
  } catch (err) {
    listener.close()
    server.close()
    await metricsServer?.close()
    await current.app.close()
    await runtime.close()
    throw err
  }

  const log = () => current.app.log
  const port = (listener.address() as AddressInfo).port
  const url = `${tls ? 'https' : 'http'}://${config.server.host === '0.0.0.0' ? 'localhost' : config.server.host}:${port}`
  if (createdCertificate) {
    log().warn({ cert: config.server.tls?.cert }, 'created a self-signed development certificate; use a real one in production')
  }
  if (config.storage.pool !== null && runtime.db.kind !== 'postgres') {
    log().warn('storage.pool is ignored: embedded storage is one connection (the pool is for PostgreSQL)')
  }
  if (runtime.store.kind === 'memory') {
    log().warn('sessions are kept in this process only (storage.sessions: memory): they end when it stops and are not shared with replicas')
  }
  log().debug({ config: config.source, routes: config.routes.length }, 'configuration loaded')
  log().debug({ database: storeAddress(config.storage.database), sessions: storeAddress(config.storage.sessions) }, 'stores connected')
  log().info(
    { url, metrics: `http://${config.metrics.host}:${metricsServer.port}/metrics`, ed25519: runtime.signer.implementation },
    'gatehouse is listening',
  )

  async function mount(next: Runtime, nextConfig: GatewayConfig): Promise<Mounted> {
    // The dummy hash that unknown-email logins verify against, made before the first login.
    await next.hasher.warmUp()
    let handler: Mounted['handler'] | undefined
    const app = await buildApp(next, {
      // Only tells the app that it is served over TLS (and HTTP/2): our listener holds the certificate.
      https: nextConfig.server.tls ? {} : null,
      http2,
      metrics,
      websockets,
      logStream: options.logStream,
      // fastify's handler, for our listener to call; the server it gets is never started.
      serverFactory: (fastifyHandler) => {
        handler = fastifyHandler
        return new Server()
      },
    })
    await app.ready()
    if (handler === undefined) throw new Error('fastify did not hand over its request handler')
    return { app, runtime: next, handler, inFlight: 0, idle: [] }
  }

  function dispatch(mounted: Mounted, request: IncomingMessage, response: ServerResponse): void {
    mounted.inFlight++
    response.once('close', () => {
      if (--mounted.inFlight === 0) for (const resolve of mounted.idle.splice(0)) resolve()
    })
    mounted.handler(request, response)
  }

  const drainTimeoutMs = () => options.drainTimeoutMs ?? config.server.drain_timeout

  /** Resolves once the mounted app has answered everything it took, or after the drain timeout. */
  function drained(mounted: Mounted): Promise<boolean> {
    if (mounted.inFlight === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), drainTimeoutMs())
      mounted.idle.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }

  async function retire(mounted: Mounted): Promise<void> {
    if (!(await drained(mounted))) log().warn({ in_flight: mounted.inFlight }, 'closing an old configuration with requests still in flight')
    await mounted.app.close()
    await mounted.runtime.retire()
  }

  let reloading: Promise<ReloadResult> | undefined
  const retirements = new Set<Promise<void>>()
  async function reload(): Promise<ReloadResult> {
    const result = await attemptReload().catch((err: unknown): ReloadResult => ({ ok: false, error: describe(err) }))
    metrics.configReload(result.ok ? 'success' : 'failure')
    if (result.ok) log().info({ config: config.source }, 'reloaded the configuration')
    else log().error({ config: config.source, problems: result.error.split('\n') }, 'configuration reload refused; the running configuration stays')
    return result
  }

  async function attemptReload(): Promise<ReloadResult> {
    if (closing) return { ok: false, error: 'the gateway is shutting down' }
    const next = await loadConfig(config.source)
    const restartOnly = restartOnlyChanges(config, next)
    if (restartOnly.length > 0) {
      return { ok: false, error: restartOnly.map((key) => `${key}: changing this needs a restart`).join('\n') }
    }
    const nextTls = next.server.tls ? await readTlsFiles(next.server.tls) : null
    const nextRuntime = await current.runtime.reconfigure(next)
    let mounted: Mounted
    try {
      mounted = await mount(nextRuntime, next)
    } catch (err) {
      await nextRuntime.retire()
      throw err
    }
    if (nextTls) secure?.setSecureContext({ cert: nextTls.cert, key: nextTls.key })
    const previous = current
    current = mounted
    log().debug({ config: next.source, changed: configChanges(config, next), routes: next.routes.length }, 'configuration reload details')
    config = next
    proxies = trustedProxies(next.server.trust_proxy)
    tls = nextTls
    const retiring = retire(previous).catch((err: unknown) => log().error({ err }, 'closing the previous configuration failed'))
    retirements.add(retiring)
    void retiring.finally(() => retirements.delete(retiring))
    return { ok: true, config: next }
  }

  let closed: Promise<void> | undefined
  const close = () => {
    closed ??= (async () => {
      closing = true
      await reloading?.catch(() => undefined)
      const stopped = new Promise<void>((resolve) => listener.close(() => resolve()))
      if (listener !== server) server.close()
      publicListener.closeIdleConnections()
      await new Promise<void>((resolve) => (redirect ? redirect.close(() => resolve()) : resolve()))
      const [requestsDone, socketsDone] = await Promise.all([drained(current), websockets.whenEmpty(drainTimeoutMs())])
      if (!requestsDone) log().warn({ in_flight: current.inFlight }, 'shutting down with requests still in flight')
      if (!socketsDone) {
        log().info({ websockets: websockets.size }, 'closing the open WebSockets (1001)')
        websockets.closeAll(CloseCode.goingAway, 'shutdown')
        // Each gets its close frame and a moment to answer (the tunnel cuts it after 1 s).
        await websockets.whenEmpty(2_000)
      }
      websockets.stop()
      await Promise.all(retirements)
      publicListener.closeAllConnections()
      await stopped
      await current.app.close()
      await current.runtime.close()
      await metricsServer?.close()
      breakers.shutdown()
    })()
    return closed
  }

  return {
    get app() {
      return current.app
    },
    get runtime() {
      return current.runtime
    },
    get config() {
      return config
    },
    metrics,
    websockets,
    url,
    port,
    metricsPort: metricsServer.port,
    redirectPort: redirect === null ? null : (redirect.address() as AddressInfo).port,
    reload: () => {
      reloading = (reloading ?? Promise.resolve()).catch(() => undefined).then(reload)
      return reloading
    },
    close,
  }
}

/** Where a store is, for the log: `embedded:<dir>`, `memory`, or scheme://host:port without credentials. */
function storeAddress(url: string): string {
  if (url === 'memory' || url.startsWith('embedded:')) return url
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? ''
  return `${scheme}//${addressOf(url, scheme.startsWith('redis') ? 6379 : 5432)}`
}

interface Listener {
  server: Server | Http2SecureServer
  http2: boolean
  /** Shutdown: idle keep-alive connections close now (HTTP/2 sessions get a GOAWAY and finish their streams). */
  closeIdleConnections(): void
  closeAllConnections(): void
}

/**
 * The public listener: plain HTTP, HTTPS, or with `server.http2` one TLS listener offering h2
 * and http/1.1 by ALPN. Both kinds of request reach the same handler (fastify's compat mode).
 */
function createListener(tls: TlsMaterial | null, http2: boolean): Listener {
  if (tls === null || !http2) {
    const server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }) : createHttpServer()
    // fastify's defaults, which it would have set on a server of its own.
    server.keepAliveTimeout = 72_000
    return { server, http2: false, closeIdleConnections: () => server.closeIdleConnections(), closeAllConnections: () => server.closeAllConnections() }
  }
  const server = createSecureServer({ cert: tls.cert, key: tls.key, allowHTTP1: true })
  const sessions = new Set<Http2Session>()
  const sockets = new Set<Socket>()
  server.on('session', (session: Http2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
  })
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  return {
    server,
    http2: true,
    closeIdleConnections: () => {
      for (const session of sessions) session.close()
    },
    closeAllConnections: () => {
      for (const session of sessions) session.destroy()
      for (const socket of sockets) socket.destroy()
    },
  }
}

function describe(err: unknown): string {
  if (err instanceof ConfigError) return err.problems.join('\n')
  return err instanceof Error ? err.message : String(err)
}

function listen(server: NetServer | Server | Http2SecureServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/** A plain listener that answers every request for a path with 308 to the same path on public_url. */
async function startRedirect(config: GatewayConfig): Promise<Server> {
  const origin = new URL(config.server.public_url).origin
  const server = createHttpServer((request, response) => {
    const target = request.url ?? ''
    if (!isOriginForm(target) || hasDuplicateHost(request.rawHeaders)) {
      const body = JSON.stringify({ statusCode: 400, code: 'GH_VALIDATION', error: 'Bad Request', message: 'The request target must be a path' })
      response.writeHead(400, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body)
      return
    }
    response.writeHead(308, { location: origin + target, 'content-length': '0' }).end()
  })
  await listen(server, config.server.redirect_http_port ?? 0, config.server.host)
  return server
}

/**
 * SIGTERM and SIGINT: drain and exit 0 (1 if closing failed). SIGHUP: reload gateway.yml,
 * the TLS certificate and the identity keys (after `gatehouse keys rotate`).
 */
export function closeOnSignals(gateway: RunningGateway): void {
  const stop = (signal: NodeJS.Signals) => {
    gateway.app.log.info({ signal }, 'shutting down: finishing in-flight requests')
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        gateway.app.log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  process.on('SIGHUP', () => void gateway.reload())
}
