/**
 * The database behind its circuit breaker: once it is open, every statement fails at once
 * with BreakerOpenError (503 with Retry-After) instead of waiting for a connect timeout.
 */
import type { Database, Queryable, QueryResult } from '../storage/database.js'
import type { Breaker } from './circuit-breaker.js'

export class GuardedDatabase implements Database {
  readonly #db: Database
  readonly #breaker: Breaker

  constructor(db: Database, breaker: Breaker) {
    this.#db = db
    this.#breaker = breaker
  }

  get kind(): Database['kind'] {
    return this.#db.kind
  }

  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    return this.#breaker.run(() => this.#db.query<Row>(sql, params))
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#breaker.run(() => this.#db.transaction(fn))
  }

  ping(): Promise<void> {
    return this.#breaker.run(() => this.#db.ping())
  }

  close(): Promise<void> {
    return this.#db.close()
  }
}
