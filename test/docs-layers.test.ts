/**
 * The layer table of docs/architecture.md is enforced by eslint.config.js. This test runs
 * ESLint with the repository's own config over sources placed (virtually: lintText with a
 * path inside src/<layer>/) where the layer rules apply, and expects every forbidden import
 * to be reported — static, type-only, a re-export, a barrel, a dynamic import() — and the
 * allowed ones not to be. It also checks that the documented table names every layer of the
 * config.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { ESLint } from 'eslint'
import t from 'tap'

/** Tests run from dist/test: the repository root is two levels up. */
const root = fileURLToPath(new URL('../../', import.meta.url))

interface Fixture {
  /** Where the source pretends to live; the file does not exist. */
  file: string
  code: string
}

/** Every one of these breaks a layer rule. */
const forbidden: Record<string, Fixture> = {
  'core: static import of an HTTP plugin': {
    file: 'src/core/layers-fixture.ts',
    code: "import { edgePlugin } from '../http/edge.js'\nexport const plugin = edgePlugin\n",
  },
  'core: type-only import of the runtime, from a subfolder': {
    file: 'src/core/pipeline/layers-fixture.ts',
    code: "import type { Runtime } from '../../runtime.js'\nexport type R = Runtime\n",
  },
  'core: a store implementation': {
    file: 'src/core/layers-fixture.ts',
    code: "import { RedisKeyValueStore } from '../kv/redis.js'\nexport const store = RedisKeyValueStore\n",
  },
  'core: a barrel re-exporting the HTTP layer': {
    file: 'src/core/index.ts',
    code: "export * from '../http/edge.js'\n",
  },
  'core: a named re-export of the CLI': {
    file: 'src/core/layers-fixture.ts',
    code: "export { runCli } from '../cli.js'\n",
  },
  'core: dynamic import of the HTTP layer': {
    file: 'src/core/layers-fixture.ts',
    code: "export async function late(): Promise<unknown> {\n  return import('../http/edge.js')\n}\n",
  },
  'core: fastify': {
    file: 'src/core/layers-fixture.ts',
    code: "import Fastify from 'fastify'\nexport const app = Fastify\n",
  },
  'core: fastify, loaded late': {
    file: 'src/core/layers-fixture.ts',
    code: "export async function late(): Promise<unknown> {\n  return import('fastify')\n}\n",
  },
  'core: node:http, loaded late': {
    file: 'src/core/layers-fixture.ts',
    code: "export async function late(): Promise<unknown> {\n  return import('node:http')\n}\n",
  },
  'core: node:http': {
    file: 'src/core/layers-fixture.ts',
    code: "import { createServer } from 'node:http'\nexport const server = createServer\n",
  },
  'core: a library outside the approved list': {
    file: 'src/core/layers-fixture.ts',
    code: "import { Redis } from 'ioredis'\nexport const client = Redis\n",
  },
  'core: OIDC': {
    file: 'src/core/layers-fixture.ts',
    code: "import type { JwtBearer } from '../oidc/jwt-bearer.js'\nexport type J = JwtBearer\n",
  },
  'http: the runtime': {
    file: 'src/http/layers-fixture.ts',
    code: "import type { Runtime } from '../runtime.js'\nexport type R = Runtime\n",
  },
  'http: the runtime, loaded late': {
    file: 'src/http/layers-fixture.ts',
    code: "export async function late(): Promise<unknown> {\n  return import('../runtime.js')\n}\n",
  },
  'http: the config loader, through its barrel': {
    file: 'src/http/layers-fixture.ts',
    code: "import { loadConfig } from '../config/index.js'\nexport const load = loadConfig\n",
  },
  'http: a store implementation': {
    file: 'src/http/layers-fixture.ts',
    code: "import { openKeyValueStore } from '../kv/open.js'\nexport const open = openKeyValueStore\n",
  },
  'http: the CLI': {
    file: 'src/http/websocket/layers-fixture.ts',
    code: "import { runCli } from '../../cli.js'\nexport const cli = runCli\n",
  },
  'http: a computed import()': {
    file: 'src/http/layers-fixture.ts',
    code: "export async function late(name: string): Promise<unknown> {\n  return import(name)\n}\n",
  },
  'kv: a core service': {
    file: 'src/kv/layers-fixture.ts',
    code: "import type { SessionService } from '../core/sessions.js'\nexport type S = SessionService\n",
  },
  'storage: the HTTP layer': {
    file: 'src/storage/layers-fixture.ts',
    code: "import { edgePlugin } from '../http/edge.js'\nexport const plugin = edgePlugin\n",
  },
  'resilience: the Redis store': {
    file: 'src/resilience/layers-fixture.ts',
    code: "import { RedisKeyValueStore } from '../kv/redis.js'\nexport const store = RedisKeyValueStore\n",
  },
  'oidc: the HTTP layer': {
    file: 'src/oidc/layers-fixture.ts',
    code: "import { oidcRoutes } from '../http/oidc-routes.js'\nexport const routes = oidcRoutes\n",
  },
  'cli: the HTTP layer': {
    file: 'src/cli/layers-fixture.ts',
    code: "import { edgePlugin } from '../http/edge.js'\nexport const plugin = edgePlugin\n",
  },
  'the clock: any file of the gateway': {
    file: 'src/core/clock.ts',
    code: "import type { Database } from '../storage/database.js'\nexport type D = Database\n",
  },
  'verify (the published library): gateway code': {
    file: 'src/verify.ts',
    code: "export { GatehouseError } from './errors.js'\n",
  },
}

/** Every one of these is allowed, and must stay so. */
const allowed: Record<string, Fixture> = {
  'core: the ports, the clock, the errors, an approved library and node:crypto': {
    file: 'src/core/layers-fixture.ts',
    code: [
      "import { randomUUID } from 'node:crypto'",
      "import argon2 from 'argon2'",
      "import type { Clock } from './clock.js'",
      "import type { KeyValueStore } from '../kv/store.js'",
      "import type { Database } from '../storage/database.js'",
      "import { GatehouseError } from '../errors.js'",
      'export type Ports = Clock | KeyValueStore | Database',
      'export const used = [randomUUID, argon2, GatehouseError]',
      '',
    ].join('\n'),
  },
  'kv: the clock': {
    file: 'src/kv/layers-fixture.ts',
    code: "import { systemClock } from '../core/clock.js'\nexport const clock = systemClock\n",
  },
  'http: the core, through its pipeline barrel, loaded late': {
    file: 'src/http/layers-fixture.ts',
    code: "export async function late(): Promise<unknown> {\n  return import('../core/pipeline/index.js')\n}\n",
  },
}

async function lint(eslint: ESLint, fixture: Fixture): Promise<string[]> {
  const [result] = await eslint.lintText(fixture.code, { filePath: `${root}${fixture.file}` })
  return (result?.messages ?? []).map((message) => `${message.ruleId ?? 'parse'}: ${message.message}`)
}

t.test('the layer rules report every forbidden import', async (t) => {
  const eslint = new ESLint({ cwd: root })
  for (const [name, fixture] of Object.entries(forbidden)) {
    const messages = await lint(eslint, fixture)
    t.ok(
      messages.some((text) => /^(import-x\/no-restricted-paths|no-restricted-imports|no-restricted-syntax): /.test(text)),
      `${name} is reported`,
      { messages },
    )
    t.notOk(messages.some((text) => text.startsWith('parse')), `${name} parses`, { messages })
  }
})

t.test('the layer rules let the allowed imports through', async (t) => {
  const eslint = new ESLint({ cwd: root })
  for (const [name, fixture] of Object.entries(allowed)) {
    t.same(await lint(eslint, fixture), [], `${name} is not reported`)
  }
})

t.test('docs/architecture.md lists every layer of eslint.config.js', async (t) => {
  const config = (await import(pathToFileURL(`${root}eslint.config.js`).href)) as { layers: Array<{ name: string; dir: string }> }
  const architecture = readFileSync(`${root}docs/architecture.md`, 'utf8')
  const section = architecture.slice(architecture.indexOf('### Layers'))
  t.ok(config.layers.length >= 10, 'the config exports its layer table')
  for (const layer of config.layers) {
    t.match(section, new RegExp(`^\\| \`${layer.dir.replace('.', '\\.')}/?\` \\|`, 'm'), `${layer.dir} has a row`)
  }
})
