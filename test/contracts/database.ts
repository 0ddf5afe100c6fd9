/**
 * What every Database implementation does, run against each of them (test/storage.test.ts):
 * the core relies on exactly this and nothing driver-specific.
 */
import type { Test } from 'tap'
import type { Database, Queryable } from '../../src/storage/database.js'
import { migrate, pendingMigrations } from '../../src/storage/migrate.js'
import { migrations } from '../../src/storage/migrations.js'
import type { DatabaseBackend } from '../helpers/backends.js'
import { insertUser } from '../helpers/users.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

interface UserRow {
  id: string
  email: string
  name: string | null
  roles: string[]
  disabled: boolean
  created_at: Date
}

async function countUsers(db: Pick<Database, 'query'>, email: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*) AS n FROM users WHERE email = $1', [email])
  return rows[0]?.n ?? -1
}

function sqlState(error: unknown): unknown {
  return error instanceof Error && 'code' in error ? error.code : undefined
}

export function databaseContract(t: Test, backend: DatabaseBackend): void {
  t.test('query with parameters returns typed rows', async (t) => {
    const db = await backend.open(t)
    const id = await insertUser(db, 'ada@example.com', { roles: ['admin', 'viewer'] })
    t.match(id, UUID, 'gen_random_uuid() fills the id')
    const { rows, rowCount } = await db.query<UserRow>(
      'SELECT id, email, name, roles, disabled, created_at FROM users WHERE email = $1',
      ['ada@example.com'],
    )
    t.equal(rowCount, 1)
    t.same(rows, [{ id, email: 'ada@example.com', name: null, roles: ['admin', 'viewer'], disabled: false, created_at: rows[0]?.created_at }])
    t.type(rows[0]?.created_at, Date)
    t.same((await db.query('SELECT 1 AS one WHERE false')).rows, [], 'no rows is an empty array')
  })

  t.test('rowCount counts inserted, updated and deleted rows', async (t) => {
    const db = await backend.open(t)
    const inserted = await db.query('INSERT INTO users (email) VALUES ($1), ($2), ($3)', ['a@x', 'b@x', 'c@x'])
    t.equal(inserted.rowCount, 3, 'insert')
    t.equal((await db.query('UPDATE users SET disabled = true WHERE email <> $1', ['a@x'])).rowCount, 2, 'update')
    t.equal((await db.query('UPDATE users SET disabled = true WHERE email = $1', ['nobody@x'])).rowCount, 0, 'update of nothing')
    t.equal((await db.query('DELETE FROM users WHERE disabled = $1', [true])).rowCount, 2, 'delete')
    t.equal((await db.query('CREATE TABLE scratch (a int)')).rowCount, 0, 'DDL counts nothing')
  })

  t.test('several statements without parameters: the last one answers', async (t) => {
    const db = await backend.open(t)
    const result = await db.query(`
      INSERT INTO users (email) VALUES ('m1@x');
      INSERT INTO users (email) VALUES ('m2@x');
      SELECT email FROM users ORDER BY email`)
    t.same(result.rows, [{ email: 'm1@x' }, { email: 'm2@x' }])
  })

  t.test('column types read the same on every backend', async (t) => {
    const db = await backend.open(t)
    const userId = await insertUser(db, 'types@example.com', { roles: ['a,b', 'with "quotes"', 'ünïcode', ''] })
    const at = new Date('2026-02-03T04:05:06.789Z')
    const details = { nested: { list: [1, 'two', null, true] }, empty: {}, text: 'é' }
    await db.query('INSERT INTO audit_events (type, user_id, details, created_at) VALUES ($1, $2, $3, $4)', [
      'login', userId, JSON.stringify(details), at,
    ])
    const { rows } = await db.query<{ id: number; user_id: string; details: unknown; created_at: Date; roles: string[]; permissions: string[] | null }>(
      `SELECT e.id, e.user_id, e.details, e.created_at, u.roles, NULL::text[] AS permissions
         FROM audit_events e JOIN users u ON u.id = e.user_id`,
    )
    const row = rows[0]
    t.equal(typeof row?.id, 'number', 'bigserial (int8) → number')
    t.equal(row?.user_id, userId, 'uuid → string')
    t.same(row?.details, details, 'jsonb → parsed JSON')
    t.type(row?.created_at, Date, 'timestamptz → Date')
    t.equal(row?.created_at.getTime(), at.getTime(), 'timestamptz keeps milliseconds')
    t.same(row?.roles, ['a,b', 'with "quotes"', 'ünïcode', ''], 'text[] → string[]')
    t.equal(row?.permissions, null, 'NULL → null')

    const scalars = await db.query(
      `SELECT count(*) AS n, '{}'::text[] AS empty, 1.50::numeric AS num, DATE '2026-03-04' AS day,
              42::int4 AS int4, true AS yes, '[1,{"a":2}]'::jsonb AS list`,
    )
    t.same(scalars.rows, [{ n: 1, empty: [], num: '1.50', day: '2026-03-04', int4: 42, yes: true, list: [1, { a: 2 }] }])
    await t.rejects(db.query(`SELECT 9007199254740993::int8 AS big`), RangeError, 'an int8 past 2^53 is refused, not rounded')
  })

  t.test('a transaction commits when its function resolves', async (t) => {
    const db = await backend.open(t)
    const result = await db.transaction(async (tx) => {
      await insertUser(tx, 'tx1@x')
      await insertUser(tx, 'tx2@x')
      return 'done'
    })
    t.equal(result, 'done', 'resolves what the function resolved')
    t.equal(await countUsers(db, 'tx1@x'), 1)
    t.equal(await countUsers(db, 'tx2@x'), 1)
  })

  t.test('a transaction whose function throws rolls back and rethrows', async (t) => {
    const db = await backend.open(t)
    const failure = new Error('changed my mind')
    await t.rejects(
      db.transaction(async (tx) => {
        await insertUser(tx, 'gone@x')
        throw failure
      }),
      failure,
    )
    t.equal(await countUsers(db, 'gone@x'), 0)
  })

  t.test('a failing statement rolls the transaction back', async (t) => {
    const db = await backend.open(t)
    await insertUser(db, 'taken@x')
    const error = await db
      .transaction(async (tx) => {
        await insertUser(tx, 'first@x')
        await insertUser(tx, 'taken@x')
      })
      .catch((e: unknown) => e)
    t.equal(sqlState(error), '23505')
    t.equal(await countUsers(db, 'first@x'), 0, 'earlier statements are undone')
    t.equal(await countUsers(db, 'taken@x'), 1)
  })

  t.test('a failed statement whose error was swallowed still aborts the transaction', async (t) => {
    const db = await backend.open(t)
    await insertUser(db, 'taken@x')
    const error = await db
      .transaction(async (tx) => {
        await insertUser(tx, 'first@x')
        await insertUser(tx, 'taken@x').catch(() => {})
        return 'looks fine'
      })
      .catch((e: unknown) => e)
    t.equal(sqlState(error), '25P02', 'rejects as an aborted transaction')
    t.equal(await countUsers(db, 'first@x'), 0)
  })

  t.test('statements from outside never see or join a running transaction', async (t) => {
    const db = await backend.open(t)
    let outside: Promise<number> | undefined
    await t.rejects(
      db.transaction(async (tx) => {
        await insertUser(tx, 'uncommitted@x')
        outside = countUsers(db, 'uncommitted@x')
        // More statements give an outside query every chance to slip in between.
        for (let i = 0; i < 5; i++) await tx.query('SELECT 1')
        throw new Error('roll back')
      }),
    )
    t.equal(await outside, 0, 'the outside query saw neither the row nor ran inside the transaction')

    const committed = db.transaction(async (tx) => insertUser(tx, 'committed@x'))
    const [id, count] = await Promise.all([committed, countUsers(db, 'committed@x')])
    t.match(id, UUID)
    t.ok(count === 0 || count === 1, 'an outside query sees the transaction all or nothing')
  })

  t.test('the tx of a finished transaction refuses statements', async (t) => {
    const db = await backend.open(t)
    let kept: Queryable | undefined
    await db.transaction(async (tx) => {
      kept = tx
    })
    await t.rejects(async () => kept?.query('SELECT 1'), /closed/)
  })

  t.test('a unique violation carries SQLSTATE 23505 in `code`', async (t) => {
    const db = await backend.open(t)
    await insertUser(db, 'dup@example.com')
    const error = await insertUser(db, 'dup@example.com').catch((e: unknown) => e)
    t.type(error, Error)
    t.equal(sqlState(error), '23505')
    const fk = await db
      .query('INSERT INTO personal_access_tokens (user_id, name, token_hash, mask) VALUES ($1, $2, $3, $4)', [
        '00000000-0000-4000-8000-000000000000', 'n', 'h', 'm',
      ])
      .catch((e: unknown) => e)
    t.equal(sqlState(fk), '23503', 'a foreign key violation carries 23503')
  })

  t.test('ping answers while open and rejects once closed', async (t) => {
    const db = await backend.open(t)
    await t.resolves(db.ping())
    t.ok(db.kind === 'postgres' || db.kind === 'embedded')
    await db.close()
    await t.rejects(db.ping())
    await t.resolves(db.close(), 'closing twice is harmless')
  })

  t.test('migrate applies what is missing, once', async (t) => {
    const fresh = await backend.open(t, { migrated: false })
    t.same((await pendingMigrations(fresh)).map((m) => m.version), migrations.map((m) => m.version))
    t.same(await migrate(fresh), { applied: migrations.map((m) => m.version) })
    t.same(await migrate(fresh), { applied: [] }, 'a second run applies nothing')
    t.same(await pendingMigrations(fresh), [])
    const { rows } = await fresh.query<{ version: number; name: string; applied_at: Date }>('SELECT * FROM schema_migrations')
    t.same(rows.map((r) => [r.version, r.name]), migrations.map((m) => [m.version, m.name]))

    const migrated = await backend.open(t)
    t.same(await migrate(migrated), { applied: [] }, 'an opened test database is already migrated')
  })

  t.test('migrations running at once on one database apply each migration once', async (t) => {
    const db = await backend.open(t, { migrated: false })
    const results = await Promise.all([migrate(db), migrate(db), migrate(db)])
    t.same(results.flatMap((r) => r.applied).sort(), migrations.map((m) => m.version))
  })
}
