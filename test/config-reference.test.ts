/**
 * docs/configuration.md is generated from the configuration schema (scripts/config-reference.ts);
 * this test regenerates it in memory and fails when the committed file differs, so the
 * reference can never drift from what the gateway accepts.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import t from 'tap'

import { REFERENCE_PATH, renderConfigReference } from '../scripts/config-reference.js'
import { describeSchema } from '../src/config/index.js'

/** Tests run from dist/test: the repository root is two levels up. */
const committedPath = fileURLToPath(new URL(`../../${REFERENCE_PATH}`, import.meta.url))

t.test('docs/configuration.md matches the configuration schema', async (t) => {
  const expected = renderConfigReference()
  let committed: string
  try {
    committed = readFileSync(committedPath, 'utf8')
  } catch {
    t.fail(`${REFERENCE_PATH} is missing: run npm run docs:config and commit the result`)
    return
  }
  if (committed !== expected) {
    const a = committed.split('\n')
    const b = expected.split('\n')
    const line = a.findIndex((text, i) => text !== b[i])
    const at = line === -1 ? b.length : line
    t.fail(
      `${REFERENCE_PATH} is out of date with src/config/schema.ts: run npm run docs:config and commit the result ` +
        `(first difference at line ${at + 1}: committed ${JSON.stringify(a[at] ?? '<end of file>')}, ` +
        `generated ${JSON.stringify(b[at] ?? '<end of file>')})`,
    )
    return
  }
  t.pass('the committed reference is the generated one')
})

t.test('the reference lists every key of the schema, with its type, default and description', async (t) => {
  const text = renderConfigReference()
  const entries = describeSchema()
  t.ok(entries.length > 50, 'the schema describes its keys')
  for (const entry of entries) {
    // Every key path appears, in a table row or as a section heading.
    const inRow = text.includes(`| \`${entry.path}\` |`)
    const asSection = !/[.[]/.test(entry.path) && text.includes(`\n## ${entry.path}\n`)
    t.ok(inRow || asSection, `${entry.path} is in the reference`)
  }
  t.match(text, /\| `server\.port` \| port \| `8443` \| Port of the public listener/, 'a row carries type, default and description')
  t.match(text, /\| `routes\[\]\.upstream` \| URL or list of URL \| \*required\* \|/, 'required keys are marked')
  t.match(text, /\| `auth\.registration` \| open \\\| closed \| `open` \|/, 'pipes inside cells are escaped')
})

t.test('the renderer follows the schema it is given', async (t) => {
  const text = renderConfigReference([
    { path: 'alpha', type: 'mapping', default: '{}', description: 'First section.' },
    { path: 'alpha.size', type: 'integer 1..10', default: '3', description: 'How <many> things.' },
    { path: 'alpha.name', type: 'string', default: null, description: 'Its name.' },
    { path: 'beta', type: 'list of beta', default: '[]', description: 'Second.' },
    { path: 'beta[].mode', type: 'a | b', default: 'a', description: 'Mode.' },
  ])
  t.match(text, /## alpha\n\nFirst section\. Type: mapping; default `\{\}`\./)
  t.match(text, /\| `alpha\.size` \| integer 1\.\.10 \| `3` \| How &lt;many&gt; things\. \|/, 'angle brackets in prose are escaped')
  t.match(text, /\| `alpha\.name` \| string \| \*required\* \| Its name\. \|/)
  t.match(text, /\| `beta\[\]\.mode` \| a \\\| b \| `a` \| Mode\. \|/)
  t.ok(text.indexOf('## alpha') < text.indexOf('## beta'), 'sections keep the schema order')
  t.notMatch(renderConfigReference([{ path: 'x', type: 't', default: 'd', description: 'y' }]), /\| Key \|/,
    'a section without keys below it has no table')
})
