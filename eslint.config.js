// @ts-check
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

// Modules the framework-free core must never reach: web frameworks, HTTP stacks and the
// concrete storage drivers. The core talks to the world only through the interfaces in
// src/storage/database.ts and src/kv/store.ts.
const forbiddenInCore = [
  'fastify', 'fastify-*', '@fastify/*', 'http', 'https', 'http2', 'node:http', 'node:https',
  'node:http2', 'undici', 'ioredis', 'pg', '@electric-sql/*', '../http/*', '../app.js',
  '../server.js', '../cli.js', '../kv/memory.js', '../kv/redis.js',
  '../storage/pg.js', '../storage/pglite.js',
]

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
    files: ['src/core/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-imports': ['error', {
        patterns: forbiddenInCore.map((group) => ({
          group: [group],
          message: 'src/core is framework-free: it must not import HTTP frameworks, HTTP modules or storage drivers.',
        })),
      }],
    },
  },
  {
    // Route plugins get narrow options (the services they use), never the composition root.
    files: ['src/http/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          group: ['../runtime.js', '../app.js', '../server.js', '../cli.js'],
          message: 'src/http gets its services as plugin options, not from the runtime or the composition root.',
        }],
      }],
    },
  },
)
