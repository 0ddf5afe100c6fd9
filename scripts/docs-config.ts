/**
 * `npm run docs:config`: writes docs/configuration.md from the configuration schema.
 * Run it after changing src/config/schema.ts; test/config-reference.test.ts checks it was.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { REFERENCE_PATH, renderConfigReference } from './config-reference.js'

// This file runs as dist/scripts/docs-config.js: the repository root is two levels up.
const target = fileURLToPath(new URL(`../../${REFERENCE_PATH}`, import.meta.url))
const text = renderConfigReference()
const before = await readFile(target, 'utf8').catch(() => null)
if (before === text) {
  process.stdout.write(`${REFERENCE_PATH} is up to date\n`)
} else {
  await mkdir(dirname(target), { recursive: true })
  await writeFile(target, text)
  process.stdout.write(`wrote ${REFERENCE_PATH}\n`)
}
