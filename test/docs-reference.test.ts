/**
 * The documentation is the repository's own: README.md and docs/ link only to files inside
 * the repository (a clone has no ../shared/SPEC.md), and docs/reference.md keeps up with the
 * code it describes: every error code of src/errors.ts with its status, every command the
 * CLI registers, and every endpoint of the gateway's OpenAPI document.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import type { Command } from 'commander'
import t from 'tap'

import { buildProgram } from '../src/cli.js'
import { errorCodes } from '../src/errors.js'
import { startTestGateway } from './helpers/gateway.js'

/** Tests run from dist/test: the repository root is two levels up. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const reference = readFileSync(join(ROOT, 'docs', 'reference.md'), 'utf8')
const markdown = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]

t.test('README.md and docs/ link only inside the repository', async (t) => {
  for (const file of markdown) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    t.notMatch(text, /SPEC\.md|shared\//, `${file} names no file outside the repository`)
    for (const link of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = (link[1] as string).split('#')[0] as string
      if (target === '' || /^[a-z]+:/i.test(target)) continue
      const path = resolve(ROOT, dirname(file), target)
      const inside = relative(ROOT, path)
      t.ok(!inside.startsWith('..'), `${file}: ${target} is inside the repository`)
      t.ok(existsSync(path), `${file}: ${target} exists`)
    }
  }
})

t.test('docs/reference.md lists every error code with its status', async (t) => {
  for (const [code, { status }] of Object.entries(errorCodes)) {
    t.match(reference, `| \`${code}\` | ${status} |`, `${code} (${status})`)
  }
  const documented = [...reference.matchAll(/\| `(GH_[A-Z_]+)` \|/g)].map((match) => match[1])
  t.same(documented.filter((code) => !(code! in errorCodes)), [], 'and no code the gateway does not have')
})

t.test('docs/reference.md lists every command of the CLI', async (t) => {
  const leaves = (command: Command, prefix: string[]): string[][] =>
    command.commands.length === 0 ? [prefix] : command.commands.flatMap((sub) => leaves(sub, [...prefix, sub.name()]))
  const commands = buildProgram().commands.flatMap((command) => leaves(command, [command.name()]))
  t.ok(commands.length >= 10, `${commands.length} commands`)
  for (const words of commands) {
    t.match(reference, new RegExp(`\`gatehouse ${words.join(' ')}[ \`]`), `gatehouse ${words.join(' ')}`)
  }
})

t.test('docs/reference.md lists every endpoint of the OpenAPI document', async (t) => {
  const gateway = await startTestGateway(t)
  const response = await gateway.call('GET', '/docs/json')
  t.equal(response.status, 200)
  const paths = response.json<{ paths: Record<string, Record<string, unknown>> }>().paths
  let count = 0
  for (const [path, operations] of Object.entries(paths)) {
    for (const method of Object.keys(operations)) {
      if (method === 'head') continue
      const written = `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`
      t.ok(reference.includes(`\`${written}\``) || reference.includes(`\`${written}?`), written)
      count++
    }
  }
  t.ok(count >= 20, `${count} endpoints`)
})
