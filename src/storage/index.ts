/** SQL storage: the Database interface, the factory that opens PostgreSQL or embedded PGlite behind it, and schema migrations. */
export type { Database, Queryable, QueryResult } from './database.js'
export { openDatabase, DatabaseInUseError, type OpenDatabaseOptions } from './open.js'
export { migrate, pendingMigrations } from './migrate.js'
