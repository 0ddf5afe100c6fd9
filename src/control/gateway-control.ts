/**
 * Opens the control socket of a running gateway whose database is embedded, so that the CLI
 * keeps working while it holds the database (SPEC §8). Each command runs on the runtime of
 * the configuration in use at that moment (a SIGHUP reload swaps it).
 */
import type { RunningGateway } from '../server.js'
import { embeddedDataDir } from '../storage/open.js'
import { runControlRequest, servicesOf } from './commands.js'
import { controlSocketPath, startControlSocket, type ControlSocket } from './socket.js'

/** The gateway's control socket, or null when its database is not embedded. */
export async function openGatewayControl(gateway: RunningGateway): Promise<ControlSocket | null> {
  const dataDir = embeddedDataDir(gateway.config.storage.database)
  if (dataDir === null) return null
  const log = () => gateway.app.log
  return startControlSocket(controlSocketPath(dataDir), {
    handle: async (request) => {
      // The command's name only: its arguments may hold a password.
      const command = (request as { command?: unknown } | null)?.command
      log().info({ command: typeof command === 'string' ? command.slice(0, 40) : null }, 'control socket command')
      return runControlRequest(servicesOf(gateway.runtime), request)
    },
    onError: (err) => log().warn({ err }, 'control socket connection failed'),
  })
}
