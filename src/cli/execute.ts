/**
 * Runs an operator command where the database is: in this process, or, when a running gateway
 * holds the embedded database (its lock names a live process), inside that gateway through its
 * control socket (SPEC §8). Both run the same function (control/commands.ts).
 */
import type { GatewayConfig } from '../config/types.js'
import { runCommand, servicesOf, type CommandName, type ControlCommands } from '../control/commands.js'
import { controlSocketPath, sendControlRequest } from '../control/socket.js'
import { openRuntime } from '../runtime.js'
import { migrate } from '../storage/migrate.js'
import { DatabaseInUseError, openDatabase } from '../storage/open.js'
import { loadCommandConfig, type ConfigOptions } from './usage.js'

type Result<C extends CommandName> = ControlCommands[C]['result']

export async function execute<C extends CommandName>(
  options: ConfigOptions,
  command: C,
  args: ControlCommands[C]['args'],
): Promise<Result<C>> {
  const config = await loadCommandConfig(options)
  try {
    return await runHere(config, command, args)
  } catch (err) {
    // Only opening the embedded database throws this (as the cause of the start-up error that
    // names storage.database): nothing of the command has run.
    const inUse = databaseInUse(err)
    if (inUse !== null && inUse.pid !== null && inUse.pid !== process.pid) {
      // The gateway runs the same version of these commands and answers their result types.
      return (await sendControlRequest(controlSocketPath(inUse.dataDir), command, args)) as Result<C>
    }
    throw err
  }
}

function databaseInUse(err: unknown): DatabaseInUseError | null {
  for (let cause = err; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof DatabaseInUseError) return cause
  }
  return null
}

async function runHere<C extends CommandName>(config: GatewayConfig, command: C, args: ControlCommands[C]['args']): Promise<Result<C>> {
  if (command === 'migrate') {
    // The database alone: opening a runtime would migrate it first (and touch the key file).
    const db = await openDatabase(config.storage.database)
    try {
      return (await migrate(db)) as Result<C>
    } finally {
      await db.close()
    }
  }
  const runtime = await openRuntime(config)
  try {
    return await runCommand(servicesOf(runtime), command, args)
  } finally {
    await runtime.close()
  }
}
