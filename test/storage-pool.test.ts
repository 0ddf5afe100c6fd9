/**
 * `storage.pool` (SPEC §2, PostgreSQL only): `max` bounds the connections a gateway opens
 * and `connect_timeout` how long a query waits for one, from gateway.yml through the runtime
 * to the pg pool, on the real PostgreSQL. With embedded storage the key is ignored, and the
 * gateway says so at start.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import yaml from 'js-yaml'
import t, { type Test } from 'tap'
import { loadConfig } from '../src/config/index.js'
import { openRuntime } from '../src/runtime.js'
import { startGateway } from '../src/server.js'
import { databaseBackends } from './helpers/backends.js'
import { baseConfig, type RawConfig } from './helpers/gateway.js'

async function configFile(t: Test, configure: (raw: RawConfig) => void): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-pool-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const raw = baseConfig()
  raw.metrics = { port: 0 }
  configure(raw)
  const file = path.join(dir, 'gateway.yml')
  await writeFile(file, yaml.dump(raw))
  return file
}

const postgres = databaseBackends().find((backend) => backend.name === 'postgres')

t.test('pool.max and pool.connect_timeout reach the PostgreSQL pool', { skip: !postgres && 'TEST_DATABASE_URL is not set' }, async (t) => {
  const database = await postgres!.url(t)
  for (const [pool, nestedAnswers] of [[{ max: 1, connect_timeout: '300ms' }, false], [null, true]] as const) {
    const config = await loadConfig(await configFile(t, (raw) => {
      raw.storage = { database, sessions: 'memory', ...(pool ? { pool } : {}) }
    }))
    const runtime = await openRuntime(config)
    try {
      // A query made while a transaction holds a connection needs a second one.
      const nested = await runtime.db.transaction(async (tx) => {
        await tx.query('SELECT 1')
        // The driver's timeout reaches callers as the typed outage, with the driver's error as its cause.
        return runtime.db.query('SELECT 1').then(() => 'answered', (err: Error) => `${err.message}: ${(err.cause as Error | undefined)?.message ?? ''}`)
      })
      if (nestedAnswers) t.equal(nested, 'answered', 'the default pool has a second connection')
      else t.match(nested, /timeout/i, 'max 1: the second query waits connect_timeout for a connection, then fails')
    } finally {
      await runtime.close()
    }
  }
})

t.test('with embedded storage, storage.pool is ignored with a warning at start', async (t) => {
  const database = await databaseBackends()[0]!.url(t)
  const file = await configFile(t, (raw) => {
    raw.storage = { database, sessions: 'memory', pool: { max: 3 } }
    raw.identity.signing_key_file = 'identity-keys.json'
    raw.logging = { level: 'warn' }
  })
  const lines: Array<Record<string, unknown>> = []
  const gateway = await startGateway(await loadConfig(file), {
    logStream: new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
        done()
      },
    }),
  })
  await gateway.close()
  t.ok(lines.some((line) => /storage\.pool is ignored/.test(String(line.msg))), 'the warning names storage.pool', { lines })
})
