/**
 * Creates an embedded database cluster (PGlite's initdb) in a worker thread. initdb runs in a
 * WebAssembly instance of its own that stays reachable from the PGlite that ran it (about
 * 500 MB); in a worker, all of it goes when the worker ends, and the gateway then opens the
 * finished cluster with only the server's own memory.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { PGlite } from '@electric-sql/pglite'

const { dataDir, startParams } = workerData as { dataDir: string; startParams: string[] }
const pglite = await PGlite.create(dataDir, { startParams })
await pglite.close()
parentPort?.postMessage('created')
