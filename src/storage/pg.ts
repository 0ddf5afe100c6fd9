import pg from 'pg'
import { hasNetworkCode, messageOf, translateOutage } from '../dependency-error.js'
import type { Database, Queryable, QueryResult } from './database.js'
import { withoutValues } from './driver-error.js'
import { DATE_OID, INT8_OID, parseDate, parseInt8 } from './type-parsers.js'

export const DEFAULT_POOL_SIZE = 10
export const DEFAULT_CONNECTION_TIMEOUT_MS = 5_000
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000

export interface PgDatabaseOptions {
  /** A postgres:// or postgresql:// URL; its query string may carry pg options such as `options=-c search_path=…`. */
  connectionString: string
  poolSize?: number
  connectionTimeoutMs?: number
  statementTimeoutMs?: number
}

/** Per pool rather than on the global `pg.types`, so that nothing else in the process changes. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary' && oid === INT8_OID) return parseInt8
    if (format !== 'binary' && oid === DATE_OID) return parseDate
    return pg.types.getTypeParser(oid, format)
  }) as typeof pg.types.getTypeParser,
}

/** SQLSTATEs of a server going away or refusing work: admin shutdown, crash shutdown, cannot connect now, too many connections. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300'])
/** pg reports a lost or refused connection, and a pool used after `end()`, only in these messages. */
const UNAVAILABLE_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|Cannot use a pool after calling end on the pool/i

function isUnavailable(err: unknown): boolean {
  if (hasNetworkCode(err)) return true
  const code = (err as { code?: unknown } | null)?.code
  // SQLSTATE class 08: connection exceptions.
  if (typeof code === 'string' && (UNAVAILABLE_STATES.has(code) || /^08[0-9A-Z]{3}$/.test(code))) return true
  return UNAVAILABLE_MESSAGES.test(messageOf(err))
}

const outage = translateOutage('database', isUnavailable)

/** Thrown, as PGlite does, when COMMIT finds the transaction aborted (pg itself answers ROLLBACK silently). */
export class TransactionAbortedError extends Error {
  readonly code = '25P02'
  constructor() {
    super('Transaction was rolled back instead of committed: a statement in it had failed')
    this.name = 'TransactionAbortedError'
  }
}

/** A PostgreSQL server reached through a pool of connections. */
export class PgDatabase implements Database {
  readonly kind = 'postgres'
  readonly #pool: pg.Pool
  #closed = false

  constructor(options: PgDatabaseOptions) {
    this.#pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? DEFAULT_CONNECTION_TIMEOUT_MS,
      statement_timeout: options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS,
      // A transaction left open by a stuck caller must not hold its locks forever.
      idle_in_transaction_session_timeout: 60_000,
      application_name: 'gatehouse',
      types,
    })
    // An idle client losing its connection (server restart, network cut) emits here; without
    // a listener that would crash the process. The pool drops the client and the next query
    // opens a new connection or reports the failure to its caller.
    this.#pool.on('error', () => {})
  }

  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    return run<Row>(this.#pool, sql, params).catch(outage)
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#transaction(fn).catch(outage)
  }

  async #transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect()
    // Set when BEGIN, COMMIT or ROLLBACK fails: the connection may then be in any state, so
    // the pool discards it instead of handing it to the next caller.
    let broken: Error | undefined
    // A checked-out client has no pool listener: a connection lost between two statements
    // of `fn` would otherwise be an unhandled 'error' event.
    const onError = (error: Error): void => {
      broken = error
    }
    client.on('error', onError)
    const control = async (sql: string): Promise<pg.QueryResult> => {
      try {
        return await client.query(sql)
      } catch (error) {
        broken = error instanceof Error ? error : new Error(String(error))
        throw error
      }
    }
    try {
      await control('BEGIN')
      let result: T
      let ended = false
      // A `tx` kept past its transaction would otherwise run on whatever borrows the client next.
      const tx: Queryable = {
        query: <Row>(sql: string, params?: readonly unknown[]) =>
          ended ? Promise.reject(new Error('Transaction is closed')) : run<Row>(client, sql, params).catch(outage),
      }
      try {
        result = await fn(tx)
      } catch (error) {
        ended = true
        await control('ROLLBACK').catch(() => {})
        throw error
      }
      ended = true
      const commit = await control('COMMIT')
      if (commit.command === 'ROLLBACK') throw new TransactionAbortedError()
      return result
    } finally {
      client.off('error', onError)
      client.release(broken)
    }
  }

  async ping(): Promise<void> {
    await this.#pool.query('SELECT 1').catch(outage)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#pool.end()
  }
}

async function run<Row>(
  target: pg.Pool | pg.PoolClient,
  sql: string,
  params: readonly unknown[] | undefined,
): Promise<QueryResult<Row>> {
  // Without parameters pg uses the simple protocol, which accepts several statements (a
  // migration) and then resolves an array of results: the last one is the answer.
  const result: pg.QueryResult | pg.QueryResult[] = await target
    .query(sql, params ? [...params] : undefined)
    .catch((error: unknown) => {
      throw withoutValues(error)
    })
  const last = Array.isArray(result) ? result[result.length - 1] : result
  return { rows: (last?.rows ?? []) as Row[], rowCount: last?.rowCount ?? 0 }
}
