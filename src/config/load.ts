/**
 * Reading gateway.yml: locate the file, parse the YAML (js-yaml's safe default schema),
 * apply the GATEHOUSE__ overrides from the environment, validate it completely, and return a frozen GatewayConfig or throw a ConfigError
 * listing every problem.
 */

import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

import yaml from 'js-yaml'

import { Context, INVALID } from './context.js'
import { ConfigError } from './error.js'
import { deepFreeze } from './freeze.js'
import { isMapping } from './node.js'
import { applyOverrides } from './overrides.js'
import { describeSchema, gatewaySchema } from './schema.js'
import type { GatewayConfig } from './types.js'

export interface ParseOptions {
  /** Path of the file the text came from: relative paths in it are resolved against its directory. */
  source: string
  /** Variables for `${NAME}` references and GATEHOUSE__ overrides; process.env by default. */
  env?: NodeJS.ProcessEnv
}

/** Validates gateway.yml's text. Throws ConfigError with every problem found. */
export function parseConfig(text: string, options: ParseOptions): GatewayConfig {
  const source = resolve(options.source)
  const document = readYaml(text, source)
  const context = new Context(options.env ?? process.env, dirname(source))
  applyOverrides(document, context.env, describeSchema(), context)
  const parsed = gatewaySchema.parse(document, '', context)
  context.checkReferences()
  if (parsed === INVALID || context.problems.length > 0) throw new ConfigError(context.problems)
  return deepFreeze({ source, ...parsed })
}

/** Reads and validates the file at `path`. A missing or unreadable file is a ConfigError too. */
export async function loadConfig(path: string, env?: NodeJS.ProcessEnv): Promise<GatewayConfig> {
  const source = resolve(path)
  let text: string
  try {
    text = await readFile(source, 'utf8')
  } catch (error) {
    const reason = error instanceof Error && 'code' in error && error.code === 'ENOENT' ? 'no such file' : String(error)
    throw new ConfigError([`${source}: cannot read the config file: ${reason}`])
  }
  return parseConfig(text, { source, env })
}

/** The config file to use, absolute: `--config`, else $GATEHOUSE_CONFIG, else ./gateway.yml. */
export function resolveConfigPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = [explicit, env.GATEHOUSE_CONFIG].find((candidate) => candidate !== undefined && candidate !== '')
  return resolve(chosen ?? 'gateway.yml')
}

function readYaml(text: string, source: string): Record<string, unknown> {
  let document: unknown
  try {
    document = yaml.load(text, { filename: source })
  } catch (error) {
    if (!(error instanceof yaml.YAMLException)) throw error
    const at = error.mark === undefined ? source : `${source}:${error.mark.line + 1}:${error.mark.column + 1}`
    throw new ConfigError([`${at}: ${error.reason}`])
  }
  if (document === undefined || document === null) throw new ConfigError([`${source}: the file is empty`])
  if (!isMapping(document)) {
    throw new ConfigError([`${source}: expected a mapping of settings (server:, routes:, …) at the top level`])
  }
  return document
}
