import type { Database, Queryable } from './database.js'
import { migrations, type Migration } from './migrations.js'

/**
 * Key of the transaction-scoped advisory lock every migration takes first, so replicas
 * starting together apply each migration once, one after the other.
 */
export const MIGRATION_LOCK_KEY = 7_163_126_455

const CREATE_MIGRATIONS_TABLE = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version int PRIMARY KEY,
    name text,
    applied_at timestamptz DEFAULT now()
  )`

/**
 * Applies the migrations this database lacks, in version order, each in its own transaction;
 * resolves the versions it applied (none when it was up to date). Safe when several
 * processes run it at once against one PostgreSQL.
 */
export async function migrate(db: Database, list: readonly Migration[] = migrations): Promise<{ applied: number[] }> {
  const applied: number[] = []
  for (const migration of inOrder(list)) {
    const didApply = await db.transaction(async (tx) => {
      // Waiting for another replica's migration, or rewriting a big table, may take longer
      // than the statement timeout meant for requests.
      await tx.query('SET LOCAL statement_timeout = 0')
      await tx.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`)
      await tx.query(CREATE_MIGRATIONS_TABLE)
      // Another replica may have applied it while this one waited for the lock.
      if ((await appliedVersions(tx)).has(migration.version)) return false
      try {
        await tx.query(migration.sql)
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error)
        throw new Error(`migration ${migration.version} (${migration.name}) failed: ${reason}`, { cause: error })
      }
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name])
      return true
    })
    if (didApply) applied.push(migration.version)
  }
  return { applied }
}

/** The migrations `migrate` would apply now; reads only. */
export async function pendingMigrations(db: Queryable, list: readonly Migration[] = migrations): Promise<Migration[]> {
  const { rows } = await db.query<{ exists: boolean }>(
    `SELECT to_regclass('schema_migrations') IS NOT NULL AS exists`,
  )
  const done = rows[0]?.exists ? await appliedVersions(db) : new Set<number>()
  return inOrder(list).filter((migration) => !done.has(migration.version))
}

async function appliedVersions(db: Queryable): Promise<Set<number>> {
  const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations')
  return new Set(rows.map((row) => row.version))
}

function inOrder(list: readonly Migration[]): Migration[] {
  const sorted = [...list].sort((a, b) => a.version - b.version)
  sorted.forEach((migration, i) => {
    if (!Number.isInteger(migration.version) || migration.version === sorted[i - 1]?.version) {
      throw new TypeError(`migration versions must be distinct integers (version ${migration.version})`)
    }
  })
  return sorted
}
