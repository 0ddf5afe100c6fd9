/**
 * docs/errors.md is generated from src/errors.ts (scripts/error-reference.ts); this test
 * regenerates it in memory and fails when the committed file differs, and when a code has no
 * sentence saying when it is answered (SPEC §5: stable codes, documented).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ERROR_REFERENCE_PATH, renderErrorReference, WHEN } from '../scripts/error-reference.js'
import { errorCodes } from '../src/errors.js'

/** Tests run from dist/test: the repository root is two levels up. */
const committedPath = fileURLToPath(new URL(`../../${ERROR_REFERENCE_PATH}`, import.meta.url))

t.test('docs/errors.md matches src/errors.ts', async (t) => {
  let committed: string
  try {
    committed = readFileSync(committedPath, 'utf8')
  } catch {
    t.fail(`${ERROR_REFERENCE_PATH} is missing: run npm run docs:errors and commit the result`)
    return
  }
  const expected = renderErrorReference()
  const a = committed.split('\n')
  const b = expected.split('\n')
  const at = a.findIndex((text, i) => text !== b[i])
  t.equal(committed, expected, `${ERROR_REFERENCE_PATH} is out of date: run npm run docs:errors and commit the result` +
    (at === -1 ? '' : ` (first difference at line ${at + 1}: ${JSON.stringify(a[at] ?? '<end of file>')})`))
})

t.test('every code is listed with its status and says when it is answered', async (t) => {
  const reference = renderErrorReference()
  for (const [code, { status }] of Object.entries(errorCodes)) {
    t.match(reference, new RegExp(`^\\| \`${code}\` \\| ${status} `, 'm'), `${code}: listed with ${status}`)
    t.ok(WHEN[code as keyof typeof errorCodes], `${code}: has a sentence in scripts/error-reference.ts`)
  }
})
