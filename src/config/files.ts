/**
 * The checks of a loaded config that read the files it names (check-config, SPEC §2): the
 * TLS certificate and key must be readable and pair. Kept apart from parsing, which reads
 * no files besides `${file:…}` references, so that a config can be validated on a machine
 * that does not hold its certificates (tests, CI of a deployment repository).
 */
import { access } from 'node:fs/promises'

import { readTlsFiles, TlsFileError } from '../tls-files.js'
import type { GatewayConfig } from './types.js'

const exists = (path: string) => access(path).then(() => true, () => false)

/** One line per problem, each starting with its key path; empty when the files are usable. */
export async function checkConfigFiles(config: GatewayConfig): Promise<string[]> {
  const tls = config.server.tls
  if (tls === null) return []
  // Neither file yet: `gatehouse serve` creates a self-signed development certificate there.
  if (!(await exists(tls.cert)) && !(await exists(tls.key))) return []
  try {
    await readTlsFiles(tls)
    return []
  } catch (err) {
    if (err instanceof TlsFileError) return [err.message]
    throw err
  }
}
