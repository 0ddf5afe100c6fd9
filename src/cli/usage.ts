/** What every CLI command shares: the `--config` option, its config, and the usage error. */
import { Option } from 'commander'
import { loadConfig, resolveConfigPath } from '../config/index.js'
import type { GatewayConfig } from '../config/types.js'

/** The command line itself is wrong: exit 2, like commander's own usage errors. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

export interface ConfigOptions {
  config?: string
}

export const configOption = () =>
  new Option('--config <file>', 'gateway.yml to use (default: $GATEHOUSE_CONFIG, then ./gateway.yml)')

export { resolveConfigPath }

export function loadCommandConfig(options: ConfigOptions): Promise<GatewayConfig> {
  return loadConfig(resolveConfigPath(options.config))
}

/** Collects a repeatable option's values. */
export const collect = (value: string, previous: string[]) => [...previous, value]

/** The whole of standard input, without its final newline (a password piped in). */
export async function readStdin(flag: string): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError(`${flag} reads the password from standard input; pipe it in`)
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}
