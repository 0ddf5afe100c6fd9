/**
 * How every test gets its storage: a fresh, isolated database, session store or invalidation
 * bus per call, removed at the end of the test that asked for it. PGlite and the memory store
 * and bus always run;
 * PostgreSQL and Redis run when TEST_DATABASE_URL / TEST_REDIS_URL are set, and must be set
 * when GATEHOUSE_REQUIRE_BACKENDS=1 (CI), where a missing one fails instead of skipping.
 */
import { createHash, randomBytes } from 'node:crypto'
import { access, constants, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, statfs } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import pg from 'pg'
import tap, { type Test } from 'tap'
import type { Clock } from '../../src/core/clock.js'
import type { InvalidationBus } from '../../src/kv/invalidation.js'
import { MemoryInvalidationBus } from '../../src/kv/memory-invalidation.js'
import { openKeyValueStore } from '../../src/kv/open.js'
import { RedisInvalidationBus } from '../../src/kv/redis-invalidation.js'
import type { KeyValueStore } from '../../src/kv/store.js'
import type { Database } from '../../src/storage/database.js'
import { migrate } from '../../src/storage/migrate.js'
import { migrations } from '../../src/storage/migrations.js'
import { openDatabase } from '../../src/storage/open.js'

export interface DatabaseOptions {
  /** Default true: the schema of migrations.ts is in place. False: an empty database. */
  migrated?: boolean
}

export interface DatabaseBackend {
  name: 'pglite' | 'postgres'
  /** A fresh, isolated database, open; closed and dropped at t's teardown. */
  open(t: Test, options?: DatabaseOptions): Promise<Database>
  /**
   * The `storage.database` URL of a fresh, isolated database nobody has open: for tests that
   * close and reopen it, or hand it to a gateway. Dropped at t's teardown; close what you
   * open from it before then.
   */
  url(t: Test, options?: DatabaseOptions): Promise<string>
}

export interface KeyValueStoreOptions {
  /** Drives the memory store's TTLs; Redis keeps its own time. */
  clock?: Clock
  /** Redis only: reuse a prefix to see what an earlier store wrote. Default: a fresh one. */
  keyPrefix?: string
}

export interface KeyValueStoreBackend {
  name: 'memory' | 'redis'
  /** True when TTLs follow the injected clock; false when tests must wait real time. */
  clockDriven: boolean
  /** An isolated, open store (Redis: its own key prefix, whose keys go at t's teardown). */
  open(t: Test, options?: KeyValueStoreOptions): Promise<KeyValueStore>
}

export interface InvalidationBusBackend {
  name: 'memory' | 'redis'
  /** One replica's bus, on a channel of its own (Redis: a fresh key prefix); closed at t's teardown. */
  open(t: Test): Promise<InvalidationBus>
  /**
   * The buses of two replicas sharing one channel. In memory that is one bus: replicas in
   * one process share it, as they share one Redis channel.
   */
  pair(t: Test): Promise<[InvalidationBus, InvalidationBus]>
}

export function requireBackends(): boolean {
  return process.env.GATEHOUSE_REQUIRE_BACKENDS === '1'
}

/** pglite always; postgres when TEST_DATABASE_URL is set. */
export function databaseBackends(): DatabaseBackend[] {
  const url = externalBackend('TEST_DATABASE_URL', 'postgres')
  return url === undefined ? [pglite] : [pglite, postgres(url)]
}

/** memory always; redis when TEST_REDIS_URL is set. */
export function sessionStoreBackends(): KeyValueStoreBackend[] {
  const url = externalBackend('TEST_REDIS_URL', 'redis')
  return url === undefined ? [memory] : [memory, redis(url)]
}

/** memory always; redis when TEST_REDIS_URL is set. */
export function invalidationBusBackends(): InvalidationBusBackend[] {
  const url = externalBackend('TEST_REDIS_URL', 'redis')
  return url === undefined ? [memoryBus] : [memoryBus, redisBus(url)]
}

function externalBackend(variable: string, name: string): string | undefined {
  const url = process.env[variable]
  if (url) return url
  if (requireBackends()) {
    throw new Error(`GATEHOUSE_REQUIRE_BACKENDS=1 but ${variable} is not set: the ${name} tests cannot run`)
  }
  tap.comment(`${name} contract tests skipped: ${variable} is not set`)
  return undefined
}

// ---- PGlite -------------------------------------------------------------------------------

const pglite: DatabaseBackend = {
  name: 'pglite',
  open: (t, options) => openFrom(t, pglite, options),
  async url(t, options) {
    const template = options?.migrated === false ? await emptyTemplate() : await migratedTemplate()
    const dir = await mkdtemp(path.join(await scratchRoot(), 'gatehouse-test-db-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    await copyDir(template, dir)
    return `embedded:${dir}`
  },
}

// Creating a PGlite data directory runs initdb (seconds); copying one (40 MB, 1,000 files)
// is a fraction of that. So test processes share templates, keyed by what they contain.
let emptyTemplatePromise: Promise<string> | undefined
let migratedTemplatePromise: Promise<string> | undefined

function emptyTemplate(): Promise<string> {
  emptyTemplatePromise ??= pgliteVersion().then((version) =>
    template(`empty-${hash(version)}`, async (dir) => {
      const db = await openDatabase(`embedded:${dir}`)
      await db.close()
    }),
  )
  return emptyTemplatePromise
}

function migratedTemplate(): Promise<string> {
  migratedTemplatePromise ??= Promise.all([emptyTemplate(), pgliteVersion()]).then(([empty, version]) =>
    template(`${hash(version + JSON.stringify(migrations))}`, async (dir) => {
      await copyDir(empty, dir)
      const db = await openDatabase(`embedded:${dir}`)
      try {
        await migrate(db)
      } finally {
        await db.close()
      }
    }),
  )
  return migratedTemplatePromise
}

/**
 * The directory `gatehouse-pglite-template-<key>` in the temp directory, built by `build` if
 * missing. Built aside and renamed into place, so that two test processes racing to build it
 * never see half a template: the loser of the rename uses the winner's.
 */
async function template(key: string, build: (dir: string) => Promise<void>): Promise<string> {
  const dir = path.join(await scratchRoot(), `gatehouse-pglite-template-${key}`)
  if (await exists(dir)) return dir
  const building = await mkdtemp(`${dir}.building-`)
  try {
    await build(building)
    await rename(building, dir)
  } catch (error) {
    await rm(building, { recursive: true, force: true })
    if (await exists(dir)) return dir
    throw error
  }
  return dir
}

let scratchRootPromise: Promise<string> | undefined

/**
 * Where templates and test databases go: /dev/shm (memory) when it has room, since copying
 * a data directory there takes tens of milliseconds against a second on a slow disk; else
 * the temp directory. Containers often give /dev/shm only 64 MB, too little.
 */
function scratchRoot(): Promise<string> {
  scratchRootPromise ??= statfs('/dev/shm')
    .then(async (fs) => {
      if (fs.bavail * fs.bsize < 1024 ** 3) return os.tmpdir()
      await access('/dev/shm', constants.W_OK)
      return '/dev/shm'
    })
    .catch(() => os.tmpdir())
  return scratchRootPromise
}

/** A recursive copy with many files in flight: several times faster than fs.cp here. */
async function copyDir(from: string, to: string): Promise<void> {
  const entries = await readdir(from, { recursive: true, withFileTypes: true })
  const target = (entry: { parentPath: string; name: string }): string =>
    path.join(to, path.relative(from, path.join(entry.parentPath, entry.name)))
  await mkdir(to, { recursive: true })
  for (const entry of entries) if (entry.isDirectory()) await mkdir(target(entry), { recursive: true })
  const files = entries.filter((entry) => entry.isFile())
  let next = 0
  const worker = async (): Promise<void> => {
    for (let file = files[next++]; file !== undefined; file = files[next++]) {
      await copyFile(path.join(file.parentPath, file.name), target(file), constants.COPYFILE_FICLONE)
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
}

async function pgliteVersion(): Promise<string> {
  const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'))
  const manifest = JSON.parse(await readFile(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as { version: string }
  return manifest.version
}

// ---- PostgreSQL ---------------------------------------------------------------------------

/** Every database lives in its own schema of the shared test database, dropped at teardown. */
function postgres(adminUrl: string): DatabaseBackend {
  const backend: DatabaseBackend = {
    name: 'postgres',
    open: (t, options) => openFrom(t, backend, options),
    async url(t, options) {
      const schema = `gh_test_${randomBytes(6).toString('hex')}`
      await withAdmin(adminUrl, (client) => client.query(`CREATE SCHEMA ${schema}`))
      t.teardown(() => withAdmin(adminUrl, (client) => client.query(`DROP SCHEMA ${schema} CASCADE`)))
      // Startup options apply to every connection of the pool, so each one sees only this schema.
      const url = new URL(adminUrl)
      url.searchParams.set('options', `-c search_path=${schema}`)
      if (options?.migrated !== false) {
        const db = await openDatabase(url.href)
        try {
          await migrate(db)
        } finally {
          await db.close()
        }
      }
      return url.href
    },
  }
  return backend
}

async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

async function openFrom(t: Test, backend: DatabaseBackend, options?: DatabaseOptions): Promise<Database> {
  const db = await openDatabase(await backend.url(t, options))
  // Registered after url()'s removal, so it runs before it (teardowns run last-in, first-out).
  t.teardown(() => db.close())
  return db
}

// ---- Session stores -----------------------------------------------------------------------

const memory: KeyValueStoreBackend = {
  name: 'memory',
  clockDriven: true,
  async open(t, options) {
    const store = await openKeyValueStore('memory', { clock: options?.clock })
    t.teardown(() => store.close())
    return store
  },
}

function redis(url: string): KeyValueStoreBackend {
  return {
    name: 'redis',
    clockDriven: false,
    async open(t, options) {
      const keyPrefix = options?.keyPrefix ?? `gh-test:${randomBytes(6).toString('hex')}:`
      t.teardown(() => deleteKeys(url, keyPrefix))
      const store = await openKeyValueStore(url, { keyPrefix })
      t.teardown(() => store.close())
      return store
    },
  }
}

// ---- Invalidation buses -------------------------------------------------------------------

const memoryBus: InvalidationBusBackend = {
  name: 'memory',
  async open(t) {
    const bus = new MemoryInvalidationBus()
    t.teardown(() => bus.close())
    return bus
  },
  async pair(t) {
    const bus = await memoryBus.open(t)
    return [bus, bus]
  },
}

function redisBus(url: string): InvalidationBusBackend {
  // Pub/sub channels are shared by every database number of a Redis: a prefix per test.
  const openOn = async (t: Test, keyPrefix: string): Promise<InvalidationBus> => {
    const bus = await RedisInvalidationBus.open({ url, keyPrefix })
    t.teardown(() => bus.close())
    return bus
  }
  const freshPrefix = (): string => `gh-test:${randomBytes(6).toString('hex')}:`
  return {
    name: 'redis',
    open: (t) => openOn(t, freshPrefix()),
    async pair(t) {
      const keyPrefix = freshPrefix()
      return [await openOn(t, keyPrefix), await openOn(t, keyPrefix)]
    },
  }
}

/** Deletes this test's keys only: the Redis is shared with other test files and people. */
async function deleteKeys(url: string, keyPrefix: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  try {
    await client.connect()
    let cursor = '0'
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${escapeGlob(keyPrefix)}*`, 'COUNT', 500)
      if (keys.length > 0) await client.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    client.disconnect()
  }
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

// ---- small things -------------------------------------------------------------------------

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16)
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file)
    return true
  } catch {
    return false
  }
}
