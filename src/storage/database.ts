/**
 * The database interface: the only thing the core knows about SQL storage.
 * Implementations: `pg.ts` (a PostgreSQL pool) and `pglite.ts` (embedded PGlite);
 * both run the same SQL and pass test/contracts/database.ts.
 */

export interface QueryResult<Row> {
  rows: Row[]
  /**
   * Rows inserted, updated or deleted (or returned by a SELECT): the count of the statement's
   * command tag, 0 for statements without one (DDL).
   */
  rowCount: number
}

/**
 * Columns read the same from both implementations: timestamptz → Date, text[] → string[],
 * jsonb → parsed JSON, uuid, numeric and date → string, int2/int4/int8/float → number (an
 * int8 beyond 2^53 rejects instead of rounding), bool → boolean, NULL → null.
 * Parameters: pass jsonb as JSON text (`JSON.stringify(value)`), since pg would send a JS
 * array as a PostgreSQL array; Date and string[] work as they are.
 * A failed statement rejects with the server's error, whose `code` is the SQLSTATE
 * (`'23505'` unique violation, `'23503'` foreign key violation, `'25P02'` aborted transaction).
 */
export interface Queryable {
  /** Without `params`, `sql` may hold several statements (a migration); the result is the last one's. */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>
}

export interface Database extends Queryable {
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * `fn` runs its statements on `tx`, never on the database itself (PGlite has one connection:
   * that call would wait for the transaction, forever). When a statement failed and `fn`
   * caught the error and resolved anyway, nothing is committed and this rejects with `code`
   * '25P02'.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>
  /** Round trip to the server; rejects when it is unreachable. */
  ping(): Promise<void>
  close(): Promise<void>
  /** 'postgres' or 'embedded', for health output and messages. */
  readonly kind: 'postgres' | 'embedded'
}

/** A statement refused by a unique constraint (SQLSTATE 23505), on either implementation. */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505'
}
