import { access, mkdir } from 'node:fs/promises'
import { once } from 'node:events'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { PGlite, type Results, type Transaction } from '@electric-sql/pglite'
import { messageOf, translateOutage } from '../dependency-error.js'
import type { Database, Queryable, QueryResult } from './database.js'
import { withoutValues } from './driver-error.js'
import { acquireEmbeddedLock, type EmbeddedLock } from './embedded-lock.js'
import { DATE_OID, INT8_OID, parseDate, parseInt8 } from './type-parsers.js'

/**
 * PostgreSQL's own default of 128 MB of shared buffers lives in this process's memory (the
 * WebAssembly heap only grows). The gateway's tables are small and PGlite has one connection:
 * 16 MB holds 2,048 pages, and the operating system's file cache is behind them anyway.
 */
const START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB']

/** initdb in a worker thread (pglite-initdb.ts), whose memory is returned when it ends. */
async function createCluster(dataDir: string): Promise<void> {
  const worker = new Worker(new URL('./pglite-initdb.js', import.meta.url), { workerData: { dataDir, startParams: START_PARAMS } })
  const [exitCode] = (await once(worker, 'exit')) as [number]
  if (exitCode !== 0) throw new Error(`creating the embedded database in ${dataDir} failed (initdb worker exit ${exitCode})`)
}

const exists = (file: string) => access(file).then(() => true, () => false)

const open = (dataDir: string) => PGlite.create(dataDir, { parsers: { [INT8_OID]: parseInt8, [DATE_OID]: parseDate }, startParams: START_PARAMS })

/** A closed PGlite (shutdown, or a broken embedded database) says so only in its message. */
const outage = translateOutage('database', (err) => /PGlite is closed/i.test(messageOf(err)))

/**
 * PostgreSQL compiled to WebAssembly, running in this process on a data directory.
 * PGlite has a single connection: its `transaction()` holds a mutex that every other
 * `query()` waits for, so a statement from outside never lands inside a running transaction.
 * Inside `transaction(fn)`, `fn` must use the `tx` it is given: calling the database itself
 * there would wait for the transaction to end, forever.
 */
export class PgliteDatabase implements Database {
  readonly kind = 'embedded'
  readonly dataDir: string
  readonly #pglite: PGlite
  readonly #lock: EmbeddedLock
  #closing: Promise<void> | undefined

  private constructor(dataDir: string, pglite: PGlite, lock: EmbeddedLock) {
    this.dataDir = dataDir
    this.#pglite = pglite
    this.#lock = lock
  }

  /**
   * Opens (creating it, with its parents, when missing) the database in `dataDir`, an
   * absolute path. Rejects with DatabaseInUseError while another process has it open.
   */
  static async open(dataDir: string): Promise<PgliteDatabase> {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    const lock = await acquireEmbeddedLock(dataDir)
    try {
      if (!(await exists(path.join(dataDir, 'PG_VERSION')))) await createCluster(dataDir)
      return new PgliteDatabase(dataDir, await open(dataDir), lock)
    } catch (error) {
      await lock.release()
      throw error
    }
  }

  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    return run<Row>(this.#pglite, sql, params)
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#pglite.transaction((tx) => fn({ query: (sql, params) => run(tx, sql, params) })).catch(outage)
  }

  async ping(): Promise<void> {
    await this.#pglite.query('SELECT 1').catch(outage)
  }

  close(): Promise<void> {
    // PGlite's close waits for running queries and transactions; the lock goes last.
    this.#closing ??= this.#pglite.close().finally(() => this.#lock.release())
    return this.#closing
  }
}

async function run<Row>(
  target: PGlite | Transaction,
  sql: string,
  params: readonly unknown[] | undefined,
): Promise<QueryResult<Row>> {
  let result: Results<Row> | undefined
  try {
    if (params && params.length > 0) {
      result = await target.query<Row>(sql, [...params]).catch(outage)
    } else {
      // Like pg without parameters: the simple protocol, which accepts several statements (a
      // migration); the last result is the answer.
      const results = (await target.exec(sql).catch(outage)) as Results<Row>[]
      result = results[results.length - 1]
    }
  } catch (error) {
    throw withoutValues(error)
  }
  // `rowCount` is per statement like pg's; `affectedRows` adds up over a multi-statement exec.
  return { rows: result?.rows ?? [], rowCount: result?.rowCount ?? result?.affectedRows ?? 0 }
}
