import path from 'node:path'
import type { Database } from './database.js'
import { PgDatabase } from './pg.js'
import { PgliteDatabase } from './pglite.js'

export { DatabaseInUseError } from './embedded-lock.js'

export interface OpenDatabaseOptions {
  /** Connections in the pool (PostgreSQL only). */
  poolSize?: number
  /** Longest wait for a connection (PostgreSQL only). */
  connectionTimeoutMs?: number
}

const EMBEDDED_PREFIX = 'embedded:'

/** The absolute directory of an `embedded:` database URL (resolved as openDatabase does), else null. */
export function embeddedDataDir(url: string): string | null {
  if (!url.startsWith(EMBEDDED_PREFIX)) return null
  const dir = url.slice(EMBEDDED_PREFIX.length)
  return dir.trim() === '' ? null : path.resolve(dir)
}

/**
 * Opens the database named by `storage.database`: `embedded:<directory>` (PGlite, locked
 * against other processes: DatabaseInUseError) or `postgres://…` / `postgresql://…` (a pool
 * that connects on first use, so an unreachable server surfaces on the first query or ping).
 * A relative embedded directory is resolved against the working directory.
 */
export async function openDatabase(url: string, options: OpenDatabaseOptions = {}): Promise<Database> {
  if (url.startsWith(EMBEDDED_PREFIX)) {
    const dir = embeddedDataDir(url)
    if (dir === null) throw new Error('storage.database "embedded:" needs a directory, e.g. embedded:./data/db')
    return PgliteDatabase.open(dir)
  }
  if (/^postgres(ql)?:\/\//i.test(url)) {
    return new PgDatabase({ connectionString: url, poolSize: options.poolSize, connectionTimeoutMs: options.connectionTimeoutMs })
  }
  // Only the scheme is echoed: the rest may hold a password.
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? url.slice(0, 12)
  throw new Error(
    `unsupported database URL "${scheme}…": expected embedded:<directory> or postgres://user:password@host:5432/database`,
  )
}
