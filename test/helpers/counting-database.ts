/**
 * The real database with every use counted: not a mock, a pass-through, so that a test can
 * prove a path never reaches the database (a malformed PAT) or reaches it once (a cache miss).
 */
import type { Database, Queryable, QueryResult } from '../../src/storage/database.js'

export class CountingDatabase implements Database {
  readonly kind: Database['kind']
  /** Every statement, those inside transactions too. */
  readonly statements: string[] = []
  transactions = 0
  pings = 0
  readonly #db: Database

  constructor(db: Database) {
    this.#db = db
    this.kind = db.kind
  }

  /** Statements run. */
  get count(): number {
    return this.statements.length
  }

  /** Every contact with the database: statements, transactions begun and pings. */
  get touches(): number {
    return this.statements.length + this.transactions + this.pings
  }

  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    this.statements.push(sql)
    return this.#db.query<Row>(sql, params)
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.transactions++
    return this.#db.transaction((tx) =>
      fn({
        query: <Row>(sql: string, params?: readonly unknown[]) => {
          this.statements.push(sql)
          return tx.query<Row>(sql, params)
        },
      }),
    )
  }

  ping(): Promise<void> {
    this.pings++
    return this.#db.ping()
  }

  close(): Promise<void> {
    return this.#db.close()
  }
}
