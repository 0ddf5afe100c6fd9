import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { access, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import { migrate } from '../src/storage/migrate.js'
import { migrations } from '../src/storage/migrations.js'
import { DatabaseInUseError, openDatabase } from '../src/storage/open.js'
import { databaseContract } from './contracts/database.js'
import { databaseBackends } from './helpers/backends.js'

const backends = databaseBackends()

for (const backend of backends) {
  t.test(`${backend.name}: Database contract`, async (t) => databaseContract(t, backend))

  t.test(`${backend.name}: what was written is there after a restart`, async (t) => {
    const url = await backend.url(t)
    const first = await openDatabase(url)
    await first.query('INSERT INTO users (email, roles) VALUES ($1, $2)', ['kept@example.com', ['admin']])
    await first.close()
    const second = await openDatabase(url)
    t.teardown(() => second.close())
    const { rows } = await second.query('SELECT email, roles FROM users')
    t.same(rows, [{ email: 'kept@example.com', roles: ['admin'] }])
  })
}

const postgres = backends.find((b) => b.name === 'postgres')
if (postgres) {
  t.test('postgres: two processes migrating one database at once apply each migration once', async (t) => {
    const url = await postgres.url(t, { migrated: false })
    const [a, b] = await Promise.all([openDatabase(url), openDatabase(url)])
    t.teardown(() => Promise.all([a.close(), b.close()]))
    const [fromA, fromB] = await Promise.all([migrate(a), migrate(b)])
    t.same([...fromA.applied, ...fromB.applied].sort(), migrations.map((m) => m.version))
    const { rows } = await a.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version')
    t.same(rows.map((r) => r.version), migrations.map((m) => m.version))
  })

  t.test('postgres: a connection lost inside a transaction fails it without crashing the process', async (t) => {
    const db = await postgres.open(t)
    const error = await db
      .transaction(async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
        await db.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid])
        // Wait (on the other connection) until the backend is gone, so that the client hears of
        // it between two statements, when no query of its own is there to receive the error.
        while ((await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [rows[0]?.pid])).rowCount > 0);
        await tx.query('SELECT 1')
      })
      .catch((e: unknown) => e)
    t.type(error, Error)
    t.equal((await db.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one, 1, 'the pool goes on with a new connection')
  })
}

const pglite = backends.find((b) => b.name === 'pglite')
if (pglite) {
  const lockFile = (url: string): string => path.join(url.slice('embedded:'.length), 'gatehouse.lock')

  t.test('embedded: a second open of the same directory fails until the first closes', async (t) => {
    const url = await pglite.url(t)
    const dir = url.slice('embedded:'.length)
    const first = await openDatabase(url)
    const error = await openDatabase(url).catch((e: unknown) => e)
    t.type(error, DatabaseInUseError)
    t.equal(error instanceof DatabaseInUseError && error.dataDir, dir)
    t.match(error instanceof Error ? error.message : '', dir, 'the message names the directory')
    t.equal(await first.query('SELECT 1 AS one').then((r) => r.rows[0]?.one), 1, 'the first one still works')
    await first.close()
    await t.rejects(access(lockFile(url)), 'closing removes the lock file')
    const second = await openDatabase(url)
    t.teardown(() => second.close())
    await t.resolves(second.ping())
  })

  t.test('embedded: a lock left by a dead process is taken over', async (t) => {
    const url = await pglite.url(t)
    const child = spawn(process.execPath, ['-e', ''])
    await once(child, 'exit')
    await writeFile(lockFile(url), `${child.pid}\n`)
    const db = await openDatabase(url)
    t.teardown(() => db.close())
    t.equal((await readFile(lockFile(url), 'utf8')).trim(), String(process.pid), 'the lock now names this process')
  })

  t.test('embedded: a garbled lock file counts as held until it is old', async (t) => {
    const url = await pglite.url(t)
    await writeFile(lockFile(url), '')
    await t.rejects(openDatabase(url), DatabaseInUseError, 'possibly being written right now')
    const longAgo = new Date(Date.now() - 60_000)
    await utimes(lockFile(url), longAgo, longAgo)
    const db = await openDatabase(url)
    t.teardown(() => db.close())
    await t.resolves(db.ping())
  })

  t.test('embedded: the directory and its parents are created', async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-test-new-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const db = await openDatabase(`embedded:${path.join(dir, 'a', 'b', 'db')}`)
    t.teardown(() => db.close())
    t.equal(db.kind, 'embedded')
    t.same(await migrate(db), { applied: migrations.map((m) => m.version) })
  })
}

t.test('openDatabase refuses URLs it does not know, without echoing credentials', async (t) => {
  const error = await openDatabase('mysql://root:s3cret@db:3306/app').catch((e: unknown) => e)
  t.type(error, Error)
  const message = error instanceof Error ? error.message : ''
  t.match(message, /unsupported database URL "mysql:…"/)
  t.notMatch(message, /s3cret/)
  await t.rejects(openDatabase('embedded:'), /needs a directory/)
  await t.rejects(openDatabase('/var/lib/gatehouse'), /unsupported database URL/)
})
