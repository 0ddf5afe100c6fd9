import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'

export const LOCK_FILE_NAME = 'gatehouse.lock'

/**
 * A lock file being written has no pid yet for a moment; only a garbled lock older than
 * this is considered abandoned.
 */
const GARBLED_LOCK_GRACE_MS = 10_000

/** Another process (or this one, a second time) has the embedded database open. */
export class DatabaseInUseError extends Error {
  readonly dataDir: string
  /** The holder's pid, when the lock file names one. */
  readonly pid: number | null

  constructor(dataDir: string, pid: number | null) {
    const holder = pid === process.pid
      ? `is already open in this process (pid ${pid})`
      : `is in use by another gatehouse process${pid === null ? '' : ` (pid ${pid})`}`
    super(
      `the embedded database at ${dataDir} ${holder}; stop it first, or use the admin API of the running gateway` +
        ` (if no gatehouse process is running, delete ${path.join(dataDir, LOCK_FILE_NAME)})`,
    )
    this.name = 'DatabaseInUseError'
    this.dataDir = dataDir
    this.pid = pid
  }
}

export interface EmbeddedLock {
  /** Removes the lock file if it is still ours. */
  release(): Promise<void>
}

/**
 * Takes the exclusive lock of an embedded database directory (which must exist): a file
 * created with O_EXCL holding our pid. A lock whose pid is no longer alive is left over from
 * a crash and is taken over.
 */
export async function acquireEmbeddedLock(dataDir: string): Promise<EmbeddedLock> {
  const file = path.join(dataDir, LOCK_FILE_NAME)
  // Each round either creates the file or removes a stale one; a few rounds settle a race
  // with another process doing the same.
  for (let round = 0; round < 3; round++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 })
      return { release: () => releaseLock(file) }
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error
    }
    const holder = await readHolder(file)
    if (holder === 'gone') continue
    if (holder === 'garbled') {
      if (!(await olderThan(file, GARBLED_LOCK_GRACE_MS))) throw new DatabaseInUseError(dataDir, null)
    } else if (isAlive(holder)) {
      throw new DatabaseInUseError(dataDir, holder)
    }
    await rm(file, { force: true })
  }
  throw new DatabaseInUseError(dataDir, null)
}

async function releaseLock(file: string): Promise<void> {
  if ((await readHolder(file)) === process.pid) await rm(file, { force: true })
}

async function readHolder(file: string): Promise<number | 'gone' | 'garbled'> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return 'gone'
    throw error
  }
  const pid = Number(text.trim())
  return Number.isSafeInteger(pid) && pid > 0 ? pid : 'garbled'
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return errorCode(error) !== 'ESRCH'
  }
}

async function olderThan(file: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(file)).mtimeMs > ms
  } catch {
    return true
  }
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined
}
