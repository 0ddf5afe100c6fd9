/**
 * Writes a file of secret keys (identity signing keys, data keys) so that readers only ever see
 * the old or the new file, never part of one: a private temporary file (0600, in a 0700
 * directory) is written and synced, then renamed over the file (`replace`), or linked to its
 * name (`create`), which fails with EEXIST rather than replace a file another process has just
 * created.
 */
import { randomBytes } from 'node:crypto'
import { link, mkdir, open, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

export async function writeKeyFileAtomically(file: string, text: string, mode: 'create' | 'replace'): Promise<void> {
  const directory = dirname(file)
  await mkdir(directory, { recursive: true, mode: 0o700 })
  const temporary = join(directory, `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(temporary, 'wx', 0o600)
  try {
    await handle.writeFile(text, 'utf8')
    await handle.sync()
  } finally {
    await handle.close()
  }
  try {
    if (mode === 'create') await link(temporary, file)
    else await rename(temporary, file)
  } catch (error) {
    await unlink(temporary).catch(() => undefined)
    throw error
  }
  if (mode === 'create') await unlink(temporary)
}
