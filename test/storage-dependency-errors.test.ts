/**
 * Drivers translate their own failures into one DependencyUnavailableError at their edge
 * (issue 12, item 5), so that the breakers, the rate-limit fallback and the 503 answers never
 * read driver messages. Real drivers: PGlite, PostgreSQL, Redis and the memory store, each
 * closed (or pointed at a port nobody listens on) under a caller. A bug stays a bug.
 */
import t from 'tap'
import { DependencyUnavailableError } from '../src/dependency-error.js'
import { isDependencyOutage } from '../src/resilience/outage.js'
import { PgDatabase } from '../src/storage/pg.js'
import { databaseBackends, sessionStoreBackends } from './helpers/backends.js'
import { freePort } from './helpers/ports.js'

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

for (const backend of databaseBackends()) {
  t.test(`${backend.name}: a closed database is unavailable; a bad statement is not`, async (t) => {
    const db = await backend.open(t)
    const bad = await rejection(db.query('SELEKT 1'))
    t.notOk(bad instanceof DependencyUnavailableError, 'a syntax error is a bug, not an outage')
    t.notOk(isDependencyOutage(bad))
    await db.close()
    for (const [what, call] of [
      ['query', () => db.query('SELECT 1')],
      ['transaction', () => db.transaction((tx) => tx.query('SELECT 1'))],
      ['ping', () => db.ping()],
    ] as const) {
      const err = await rejection(call())
      t.ok(err instanceof DependencyUnavailableError, `${what}: DependencyUnavailableError`)
      t.equal((err as DependencyUnavailableError).dependency, 'database')
      t.ok(isDependencyOutage(err), `${what}: an outage for the breakers and the 503`)
    }
  })
}

t.test('postgres: a server nobody listens on is unavailable', async (t) => {
  const db = new PgDatabase({ connectionString: `postgres://postgres@127.0.0.1:${await freePort()}/none`, connectionTimeoutMs: 2_000 })
  t.teardown(() => db.close())
  for (const call of [() => db.query('SELECT 1'), () => db.transaction(async () => 1), () => db.ping()]) {
    const err = await rejection(call())
    t.ok(err instanceof DependencyUnavailableError, String(err))
    t.ok((err as Error).cause, 'the driver error is kept as the cause')
  }
})

for (const backend of sessionStoreBackends()) {
  t.test(`${backend.name}: a closed session store is unavailable`, async (t) => {
    const store = await backend.open(t)
    await store.close()
    for (const [what, call] of [
      ['get', () => store.get('k')],
      ['set', () => store.set('k', 'v', 1_000)],
      ['increment', () => store.increment('k', 1_000)],
    ] as const) {
      const err = await rejection(call())
      t.ok(err instanceof DependencyUnavailableError, `${what}: ${String(err)}`)
      t.equal((err as DependencyUnavailableError).dependency, 'session store')
    }
  })
}
