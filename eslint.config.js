// @ts-check
import js from '@eslint/js'
import importX, { createNodeResolver } from 'eslint-plugin-import-x'
import tseslint from 'typescript-eslint'

// The layers of src/ and what each may import (docs/architecture.md, "Layers"). Dependencies
// point inward: the core is innermost and knows the outside only through the ports below.
// Each rule is an allow-list of the repository's own files, checked on the resolved path of
// every import: static, type-only, `export … from` and `import('…')` with a literal
// specifier. A barrel (an index.ts that re-exports) is a file like any other: a layer may
// import it only if the barrel lies in a place it may import, and the barrel itself answers
// to the rules of its own layer, so nothing forbidden is reached through a re-export.

/** Leaves every layer may import: the clock and the error type (neither imports anything). */
const leaves = ['src/core/clock.ts', 'src/errors.ts']
/** The ports: interfaces the core is written against, implemented in storage and kv. */
const ports = ['src/storage/database.ts', 'src/kv/store.ts', 'src/kv/invalidation.ts']
/** Types of the loaded configuration (no code). */
const configTypes = 'src/config/types.ts'

/**
 * @typedef {{ name: string, dir: string, may: string[], why: string }} Layer
 * @type {Layer[]}
 */
export const layers = [
  {
    name: 'clock', dir: 'src/core/clock.ts',
    may: [],
    why: 'src/core/clock.ts is a leaf every layer imports: it imports nothing',
  },
  {
    name: 'errors', dir: 'src/errors.ts',
    may: [],
    why: 'src/errors.ts is a leaf every layer imports: it imports nothing',
  },
  {
    name: 'core', dir: 'src/core',
    may: [...leaves, ...ports, configTypes],
    why: 'src/core is innermost: it imports only itself, the clock, the errors, the config types and the storage/kv interfaces',
  },
  {
    name: 'storage', dir: 'src/storage',
    may: [...leaves, 'src/dependency-error.ts'],
    why: 'src/storage implements the database interface: it knows no core service, HTTP, runtime or CLI',
  },
  {
    name: 'kv', dir: 'src/kv',
    may: [...leaves, 'src/dependency-error.ts'],
    why: 'src/kv implements the key-value store and the invalidation bus: it knows no core service, HTTP, runtime or CLI',
  },
  {
    name: 'resilience', dir: 'src/resilience',
    may: [...leaves, ...ports, 'src/kv/memory.ts', 'src/dependency-error.ts'],
    why: 'src/resilience wraps the storage interfaces (the memory store is its per-replica fallback); it knows no service, HTTP or runtime',
  },
  {
    name: 'email', dir: 'src/email',
    may: [...leaves, 'src/core/mailer.ts'],
    why: 'src/email implements the core\'s Mailer interface and nothing else',
  },
  {
    name: 'oidc', dir: 'src/oidc',
    may: [...leaves, ...ports, configTypes, 'src/core/**'],
    why: 'src/oidc talks to OpenID providers for the core: it never imports HTTP routes, the runtime, the CLI or a store implementation',
  },
  {
    name: 'metrics', dir: 'src/metrics',
    may: [...leaves, configTypes, 'src/core/**', 'src/resilience/**', 'src/version.ts'],
    why: 'src/metrics observes the core and the breakers: it never imports HTTP routes, the runtime or a store',
  },
  {
    name: 'config', dir: 'src/config',
    may: [...leaves, 'src/core/permissions.ts', 'src/core/user-secrets/header-name.ts', 'src/kv/redis-url.ts', 'src/tls-files.ts', 'src/startup-error.ts'],
    why: 'src/config loads and checks gateway.yml: it never imports services, HTTP, the runtime or a store',
  },
  {
    name: 'http', dir: 'src/http',
    may: [...leaves, ...ports, configTypes, 'src/core/**', 'src/oidc/**', 'src/resilience/**', 'src/metrics/**', 'src/version.ts'],
    why: 'src/http gets its services as plugin options: never the runtime, the composition root, the CLI or a store implementation',
  },
  {
    name: 'control', dir: 'src/control',
    may: [...leaves, 'src/config/**', 'src/core/**', 'src/runtime.ts', 'src/server.ts', 'src/storage/open.ts', 'src/storage/migrate.ts'],
    why: 'src/control runs commands on a runtime: never HTTP routes or a store driver',
  },
  {
    name: 'cli', dir: 'src/cli',
    may: [...leaves, 'src/config/**', 'src/control/**', 'src/core/**', 'src/runtime.ts', 'src/storage/open.ts', 'src/storage/migrate.ts'],
    why: 'src/cli runs commands through the control layer: never HTTP routes, the server or a store driver',
  },
  {
    name: 'proxy-protocol', dir: 'src/proxy-protocol',
    may: [],
    why: 'src/proxy-protocol is a self-contained listener wrapper',
  },
  {
    name: 'verify', dir: 'src/verify.ts',
    may: [],
    why: 'src/verify.ts is the published upstream-side library: it carries no gateway code',
  },
]

/** Packages the core may use; everything else in node_modules is refused. */
// Libraries that only compute (hashing, signing, TOTP, QR codes, WebAuthn verification): no I/O
// of their own. sodium-native is loaded with createRequire (src/core/ed25519.ts), which this
// rule does not see; it is listed for the reader.
const approvedInCore = ['argon2', 'sodium-native', '@zxcvbn-ts/language-common', 'otpauth', 'qrcode', '@simplewebauthn/server']
/** Node built-ins the core must not use (it never opens a connection itself). */
const builtinsForbiddenInCore = ['http', 'https', 'http2', 'net', 'tls', 'dgram']

const here = import.meta.dirname
/** A path of the table as an absolute glob (import-x wants every exception of a glob zone to be one). */
const glob = (/** @type {string} */ path) => {
  if (path.endsWith('**')) return `${here}/${path}`
  if (!path.endsWith('.ts')) return `${here}/${path}/**`
  const slash = path.lastIndexOf('/')
  return `${here}/${path.slice(0, slash)}/@(${path.slice(slash + 1)})`
}

/** @type {Array<{ target: string, from: string, except: string[], message: string }>} */
const zones = layers.flatMap((layer) => [
  {
    target: glob(layer.dir),
    from: 'src/**',
    except: [layer.dir, ...layer.may].map(glob),
    message: `Layer rule: ${layer.why} (docs/architecture.md, "Layers").`,
  },
])
zones.push({
  target: 'src/core/**',
  from: 'node_modules/**',
  except: approvedInCore.map((name) => glob(`node_modules/${name}`)),
  message: 'Layer rule: src/core uses only Node built-ins and the approved libraries (eslint.config.js approvedInCore): no web framework, HTTP stack or storage driver.',
})

// No slash in it: esquery's regex literals cannot hold one.
const builtinPattern = `^(node:)?(${builtinsForbiddenInCore.join('|')})(\\x2F|$)`
const packagePattern = '^(fastify|@fastify\\x2F|undici|ioredis|pg$|@electric-sql\\x2F|opossum|openid-client|jose)'
const computedImport = {
  selector: 'ImportExpression[source.type!="Literal"]',
  message: 'import() with a computed specifier: the layer rules cannot check it. Import a literal path.',
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createNodeResolver({
        extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.node'],
        extensionAlias: { '.js': ['.ts', '.js'] },
      })],
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { basePath: here, zones }],
      'no-restricted-syntax': ['error', computedImport],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // Built-ins do not resolve to a file, so import-x cannot see them: name them here.
      'no-restricted-imports': ['error', {
        patterns: [{
          regex: builtinPattern,
          message: 'src/core is framework-free: it never opens a connection or serves HTTP itself.',
        }],
      }],
      'no-restricted-syntax': ['error', computedImport, {
        selector: `ImportExpression[source.value=/${builtinPattern}|${packagePattern}/]`,
        message: 'src/core is framework-free: no HTTP framework, HTTP module or storage driver, loaded late or not.',
      }],
    },
  },
)
