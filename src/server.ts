/**
 * Runs the gateway: the TLS (or plain) listener, the optional HTTP→HTTPS redirect listener,
 * and graceful shutdown on SIGTERM/SIGINT (stop accepting, finish in-flight requests,
 * close the stores, exit 0).
 */
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.js'
import type { GatewayConfig } from './config/types.js'
import { ensureDevCertificate } from './dev-certificate.js'
import { openRuntime, type Runtime } from './runtime.js'

export interface RunningGateway {
  app: FastifyInstance
  runtime: Runtime
  /** The URL the gateway listens on (with the real port when the config says 0). */
  url: string
  close(): Promise<void>
}

export async function startGateway(config: GatewayConfig): Promise<RunningGateway> {
  let https: { cert: Buffer; key: Buffer } | null = null
  let createdCertificate = false
  if (config.server.tls) {
    const { cert, key } = config.server.tls
    createdCertificate = (await ensureDevCertificate(cert, key)) === 'created'
    https = { cert: await readFile(cert), key: await readFile(key) }
  }

  const runtime = await openRuntime(config)
  let app: FastifyInstance
  try {
    // The dummy hash that unknown-email logins verify against, made before the first login.
    await runtime.hasher.warmUp()
    app = await buildApp(runtime, { https })
    await app.listen({ host: config.server.host, port: config.server.port })
  } catch (err) {
    await runtime.close()
    throw err
  }
  if (createdCertificate) {
    app.log.warn({ cert: config.server.tls?.cert }, 'created a self-signed development certificate; use a real one in production')
  }
  if (runtime.store.kind === 'memory') {
    app.log.warn('sessions are kept in this process only (storage.sessions: memory): they end when it stops and are not shared with replicas')
  }

  const port = (app.server.address() as AddressInfo).port
  const url = `${https ? 'https' : 'http'}://${config.server.host === '0.0.0.0' ? 'localhost' : config.server.host}:${port}`
  const redirect = config.server.redirect_http_port === null ? null : await startRedirect(config, app)

  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= (async () => {
      await new Promise<void>((resolve) => (redirect ? redirect.close(() => resolve()) : resolve()))
      await app.close()
      await runtime.close()
    })()
    return closing
  }
  return { app, runtime, url, close }
}

/** A plain listener that answers every request with 308 to the same path on public_url. */
async function startRedirect(config: GatewayConfig, app: FastifyInstance): Promise<Server> {
  const origin = new URL(config.server.public_url).origin
  const server = createServer((request, response) => {
    response.writeHead(308, { location: origin + (request.url ?? '/'), 'content-length': '0' }).end()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.server.redirect_http_port ?? 0, config.server.host, () => resolve())
  })
  app.log.info({ port: (server.address() as AddressInfo).port }, 'redirecting plain HTTP to HTTPS')
  return server
}

/** Closes the gateway on SIGTERM or SIGINT and exits 0 (1 if closing failed). */
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
  // A full configuration reload comes with the operations work; for now SIGHUP picks up a
  // rotated identity key (see `gatehouse keys rotate`).
  process.on('SIGHUP', () => {
    gateway.runtime.keys.reload().then(
      () => gateway.app.log.info({ kid: gateway.runtime.keys.current.kid }, 'reloaded the identity keys'),
      (err: unknown) => gateway.app.log.error({ err }, 'reloading the identity keys failed; the old keys stay'),
    )
  })
}
