/**
 * A real gateway for a test: the real config pipeline (YAML → parseConfig), real stores from
 * backends.ts, the fastify app on a real port behind real TLS, and an undici client that
 * trusts the test certificate. Closed at the test's teardown.
 */
import { mkdtemp, readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import yaml from 'js-yaml'
import type { DestinationStream } from 'pino'
import type { Test } from 'tap'
import { Agent, request, type Dispatcher } from 'undici'
import { buildApp } from '../../src/app.js'
import { parseConfig } from '../../src/config/index.js'
import type { GatewayConfig } from '../../src/config/types.js'
import type { Clock } from '../../src/core/clock.js'
import { closeH2, h2Request } from './h2-client.js'
import { ensureDevCertificate } from '../../src/dev-certificate.js'
import { GatewayMetrics } from '../../src/metrics/gateway-metrics.js'
import type { BreakerRegistry } from '../../src/resilience/breaker-registry.js'
import { createRuntime, type Runtime } from '../../src/runtime.js'
import type { InvalidationBus } from '../../src/kv/invalidation.js'
import type { KeyValueStore } from '../../src/kv/store.js'
import type { Database } from '../../src/storage/database.js'
import { databaseBackends, sessionStoreBackends, type DatabaseBackend, type KeyValueStoreBackend } from './backends.js'

export const PUBLIC_URL = 'https://gatehouse.test'

/** gateway.yml as a plain object, for tests to adjust before it is validated. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw YAML, deliberately loose so tests can write any shape
export type RawConfig = Record<string, any>

export function baseConfig(): RawConfig {
  return {
    server: { host: '127.0.0.1', port: 0, public_url: PUBLIC_URL },
    auth: {
      // Cheap hashing for tests; the configured parameters are tested in core-password-hasher.
      argon2: { memory_kib: 8192, time_cost: 1, parallelism: 1 },
      password: { min_length: 15 },
      lockout: { max_failures: 5, window: '15m' },
      login_rate_limit: { max: 1000, window: '1m' },
    },
    roles: { viewer: ['app:read'], operator: ['app:read', 'app:write'], admin: ['*'] },
    default_roles: ['viewer'],
    identity: {
      signing_key_file: path.join(os.tmpdir(), `gatehouse-test-keys-${process.pid}`, 'identity-keys.json'),
      data_key_file: path.join(os.tmpdir(), `gatehouse-test-keys-${process.pid}`, 'data-keys.json'),
    },
    logging: { level: 'silent' },
  }
}

let certificate: Promise<{ cert: Buffer; key: Buffer }> | undefined
/** One self-signed certificate per test process, made by the same code as `npm start`'s. */
export function testCertificate(): Promise<{ cert: Buffer; key: Buffer }> {
  certificate ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-cert-'))
    const [cert, key] = [path.join(dir, 'tls.crt'), path.join(dir, 'tls.key')]
    await ensureDevCertificate(cert, key)
    return { cert: await readFile(cert), key: await readFile(key) }
  })()
  return certificate
}

export interface TestGatewayOptions {
  database?: DatabaseBackend
  sessionStore?: KeyValueStoreBackend
  /** An already open store (e.g. shared by two gateways). */
  store?: KeyValueStore
  db?: Database
  /**
   * An already open invalidation bus (e.g. one per replica on one Redis channel); the caller
   * closes it. Default: the bus `storage.sessions` names, closed with the gateway.
   */
  invalidation?: InvalidationBus
  clock?: Clock
  /** Circuit breakers with test settings (e.g. a short reset timeout). */
  breakers?: BreakerRegistry
  /** Where the gateway counts; default: a new registry (read it with `metrics.exposition()`). */
  metrics?: GatewayMetrics
  /** Captures the JSON log lines (default: no logging). */
  logStream?: DestinationStream
  /** Adjust the raw config before validation. */
  configure?: (raw: RawConfig) => void
  /** Listen on this port of 127.0.0.1 (e.g. one public_url names); default: a free one. */
  port?: number
  /** Speak HTTP/2 to the gateway in `call` (node:http2); default: HTTP/1.1 (undici). */
  http2?: boolean
}

export interface Response {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  /** The body parsed as JSON (throws when it is not). */
  json<T = Record<string, unknown>>(): T
}

export interface CallOptions {
  json?: unknown
  body?: string | Buffer
  headers?: Record<string, string | string[]>
}

export interface TestGateway {
  url: string
  config: GatewayConfig
  runtime: Runtime
  metrics: GatewayMetrics
  call(method: Dispatcher.HttpMethod, path: string, options?: CallOptions): Promise<Response>
  /** Resolves once every email queued so far has been sent, refused or found unnecessary. */
  emailsSettled(): Promise<void>
  /**
   * Stops listening and closes the client (as at teardown; idempotent). The stores stay
   * open: whoever opened them closes them.
   */
  close(): Promise<void>
}

export function buildTestConfig(configure?: TestGatewayOptions['configure']): GatewayConfig {
  const raw = baseConfig()
  configure?.(raw)
  return parseConfig(yaml.dump(raw), { source: path.join(os.tmpdir(), 'gatehouse-test', 'gateway.yml'), env: {} })
}

export async function startTestGateway(t: Test, options: TestGatewayOptions = {}): Promise<TestGateway> {
  const config = buildTestConfig(options.configure)
  const db = options.db ?? (await (options.database ?? databaseBackends()[0]!).open(t))
  const store = options.store ?? (await (options.sessionStore ?? sessionStoreBackends()[0]!).open(t, { clock: options.clock }))
  const metrics = options.metrics ?? new GatewayMetrics()
  const runtime = await createRuntime(config, {
    db,
    store,
    clock: options.clock,
    invalidation: options.invalidation,
    breakers: options.breakers,
    onLockout: () => metrics.lockout(),
  })
  const app = await buildApp(runtime, {
    https: await testCertificate(),
    metrics,
    ...(options.logStream ? { logStream: options.logStream } : { logger: false }),
  })
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const url = `https://127.0.0.1:${port}`
  const dispatcher = new Agent({ connect: { ca: (await testCertificate()).cert, servername: 'localhost' } })
  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      await dispatcher.close()
      await closeH2(url)
      await app.close()
      // The database and store belong to the test's backends, which close them.
      await runtime.retire()
      if (options.invalidation === undefined) await runtime.invalidation.close()
    })()
    return closing
  }
  t.teardown(close)

  async function call(method: Dispatcher.HttpMethod, requestPath: string, callOptions: CallOptions = {}): Promise<Response> {
    const headers: Record<string, string | string[]> = { ...callOptions.headers }
    let body = callOptions.body
    if (callOptions.json !== undefined) {
      body = JSON.stringify(callOptions.json)
      headers['content-type'] ??= 'application/json'
    }
    if (options.http2) {
      const answer = await h2Request(url, method, requestPath, headers, body)
      return { status: answer.status, headers: answer.headers, text: answer.body, json: <T>() => JSON.parse(answer.body) as T }
    }
    const response = await request(url + requestPath, { method, headers, body, dispatcher })
    const text = await response.body.text()
    return {
      status: response.statusCode,
      headers: response.headers,
      text,
      json: <T>() => JSON.parse(text) as T,
    }
  }

  const emailsSettled = () => app.emailOutbox?.idle() ?? Promise.resolve()
  return { url, config, runtime, metrics, call, emailsSettled, close }
}
