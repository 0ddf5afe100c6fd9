/**
 * A directory holding what `gatehouse serve` needs: a development certificate, an embedded
 * database (a copy of the migrated template) and a gateway.yml that the test rewrites at will
 * (then sends SIGHUP, or reloads). Removed at t's teardown.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import yaml from 'js-yaml'
import type { Test } from 'tap'
import { ensureDevCertificate } from '../../src/dev-certificate.js'
import { databaseBackends } from './backends.js'
import { baseConfig, type RawConfig } from './gateway.js'

export interface Workspace {
  dir: string
  configPath: string
  /** Writes gateway.yml: the workspace's own settings, then `configure` on top. */
  write(configure?: (raw: RawConfig) => void): Promise<void>
}

/**
 * A workspace whose gateway.yml is the test base config with TLS from the directory, PGlite,
 * memory sessions, metrics on a free port and warnings only, then `settings` (routes and the
 * like, applied on every write).
 */
export async function workspace(t: Test, name: string, settings: (raw: RawConfig) => void): Promise<Workspace> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `gatehouse-${name}-`))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await ensureDevCertificate(path.join(dir, 'tls.crt'), path.join(dir, 'tls.key'))
  const database = await databaseBackends()[0]!.url(t)
  const configPath = path.join(dir, 'gateway.yml')
  const write = async (configure: (raw: RawConfig) => void = () => {}): Promise<void> => {
    const raw = baseConfig()
    raw.server.tls = { cert: 'tls.crt', key: 'tls.key' }
    raw.storage = { database, sessions: 'memory' }
    raw.identity.signing_key_file = 'identity-keys.json'
    raw.metrics = { port: 0 }
    raw.logging = { level: 'warn' }
    settings(raw)
    configure(raw)
    await writeFile(configPath, yaml.dump(raw))
  }
  await write()
  return { dir, configPath, write }
}
