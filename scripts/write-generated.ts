/** Writes a generated document (relative to the repository root) when its text changed. */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

export async function writeGenerated(relativePath: string, text: string): Promise<void> {
  // The scripts run from dist/scripts: the repository root is two levels up.
  const target = fileURLToPath(new URL(`../../${relativePath}`, import.meta.url))
  const before = await readFile(target, 'utf8').catch(() => null)
  if (before === text) {
    process.stdout.write(`${relativePath} is up to date\n`)
    return
  }
  await mkdir(dirname(target), { recursive: true })
  await writeFile(target, text)
  process.stdout.write(`wrote ${relativePath}\n`)
}
