/**
 * `npm run docs:errors`: writes docs/errors.md from src/errors.ts. Run it after adding or
 * changing a code; test/errors-reference.test.ts checks it was.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ERROR_REFERENCE_PATH, renderErrorReference } from './error-reference.js'

// This file runs as dist/scripts/docs-errors.js: the repository root is two levels up.
const target = fileURLToPath(new URL(`../../${ERROR_REFERENCE_PATH}`, import.meta.url))
const text = renderErrorReference()
const before = await readFile(target, 'utf8').catch(() => null)
if (before === text) {
  process.stdout.write(`${ERROR_REFERENCE_PATH} is up to date\n`)
} else {
  await mkdir(dirname(target), { recursive: true })
  await writeFile(target, text)
  process.stdout.write(`wrote ${ERROR_REFERENCE_PATH}\n`)
}
