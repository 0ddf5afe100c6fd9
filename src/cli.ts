/**
 * The `gatehouse` command (SPEC §8). Errors go to stderr; exit 1 on failure, 2 on bad usage.
 */
import { Command, CommanderError } from 'commander'
import { addAuditCommands } from './cli/audit-commands.js'
import { execute } from './cli/execute.js'
import { addTokenCommands } from './cli/token-commands.js'
import { addUserCommands } from './cli/user-commands.js'
import { configOption, loadCommandConfig, resolveConfigPath, UsageError, type ConfigOptions } from './cli/usage.js'
import { checkConfigFiles, ConfigError, loadConfig } from './config/index.js'
import { CommandFailure } from './control/commands.js'
import { openGatewayControl } from './control/gateway-control.js'
import { systemClock } from './core/clock.js'
import { rotateDataKeys } from './core/data-keys.js'
import { rotateKeys } from './core/identity-keys.js'
import type { Identity } from './core/identity.js'
import { permissionsFor } from './core/permissions.js'
import { explain } from './core/pipeline/index.js'
import { RouteTable } from './core/route-table.js'
import { GatehouseError } from './errors.js'
import { formatExplanation } from './explain-format.js'
import { closeOnSignals, startGateway } from './server.js'
import { version } from './version.js'

export function buildProgram(state: { serving: boolean } = { serving: false }): Command {
  const program = new Command('gatehouse')
    .description('Gatehouse: an authentication gateway in front of your apps')
    .version(version)
    .exitOverride()
    .showHelpAfterError()

  program
    .command('serve')
    .description('run the gateway')
    .addOption(configOption())
    .action(async (options: ConfigOptions) => {
      const gateway = await startGateway(await loadCommandConfig(options))
      closeOnSignals(gateway)
      state.serving = true
      try {
        const control = await openGatewayControl(gateway)
        // A process that exits leaves no socket behind (the next start would replace it anyway).
        if (control !== null) process.once('exit', () => control.removeSync())
      } catch (err) {
        gateway.app.log.error({ err }, 'the control socket could not be opened: CLI commands cannot reach this gateway while it runs')
      }
      const users = await gateway.runtime.users.count()
      // For the person at the terminal, on stderr: stdout carries the JSON log only (jq-able).
      process.stderr.write(`\nGatehouse ${version} is listening on ${gateway.url}\n`)
      process.stderr.write(`  health: ${gateway.url}/health\n`)
      if (users === 0) {
        process.stderr.write(
          `\nNo users yet. Register one with the API:\n` +
            `  curl -k ${gateway.url}/auth/register -H 'content-type: application/json' -d '{"email":"you@example.com","password":"fifteen or more characters"}'\n` +
            `or create the first admin (this works while the gateway runs):\n` +
            `  printf '%s' 'a-long-passphrase-here' | npm run -s gatehouse -- user create --email admin@example.com --role admin --password-stdin\n\n`,
        )
      }
    })

  program
    .command('check-config')
    .description('validate gateway.yml and exit')
    .addOption(configOption())
    .action(async (options: { config?: string }) => {
      const path = resolveConfigPath(options.config)
      const loaded = await loadConfig(path)
      const problems = await checkConfigFiles(loaded)
      if (problems.length > 0) throw new ConfigError(problems)
      process.stdout.write(`${path}: ok (${loaded.routes.length} routes)\n`)
    })

  program
    .command('migrate')
    .description('apply pending database migrations')
    .addOption(configOption())
    .action(async (options: ConfigOptions) => {
      const { applied } = await execute(options, 'migrate', {})
      process.stdout.write(applied.length === 0 ? 'database is up to date\n' : `applied migrations ${applied.join(', ')}\n`)
    })

  addUserCommands(program)
  addTokenCommands(program)
  addAuditCommands(program)

  program
    .command('keys')
    .description('manage the identity signing keys')
    .command('rotate')
    .description('start signing with a new key (the previous one stays published until its assertions expire) and/or encrypting with a new data key (old ones keep decrypting); without a flag, both')
    .option('--signing', 'rotate the identity signing key (identity.signing_key_file)')
    .option('--data', 'rotate the data encryption key (identity.data_key_file)')
    .addOption(configOption())
    .action(async (options: ConfigOptions & { signing?: boolean; data?: boolean }) => {
      const loaded = await loadCommandConfig(options)
      const both = options.signing !== true && options.data !== true
      if (both || options.signing === true) {
        const result = await rotateKeys(loaded.identity.signing_key_file, {
          clock: systemClock,
          assertionTtlMs: loaded.identity.assertion_ttl,
        })
        process.stdout.write(
          `new signing key ${result.kid}; still published: ${result.retained.join(', ') || 'none'}; removed: ${result.removed.join(', ') || 'none'}\n`,
        )
      }
      if (both || options.data === true) {
        const result = await rotateDataKeys(loaded.identity.data_key_file)
        process.stdout.write(`new data key ${result.kid}; still decrypting with: ${result.retained.join(', ') || 'none'}\n`)
      }
      process.stdout.write('Send SIGHUP to every running gateway (or restart it) so that it uses the new key.\n')
    })

  program
    .command('explain')
    .description('show how the gateway would decide a request, without sending it')
    .requiredOption('--method <method>', 'HTTP method')
    .requiredOption('--path <path>', 'request path and query, as the client sends it')
    .option('--host <host>', "the request's Host (default: public_url's host)")
    .option('--email <email>', 'decide for this user, signed in with a session')
    .option('--anonymous', 'decide for a request without credentials')
    .addOption(configOption())
    .action(async (options: { method: string; path: string; host?: string; email?: string; anonymous?: boolean; config?: string }) => {
      if ((options.email === undefined) === (options.anonymous !== true)) {
        throw new UsageError('give exactly one of --email E and --anonymous')
      }
      const loaded = await loadCommandConfig(options)
      // As the edge sees them: a forward-auth-only route is not there.
      const table = new RouteTable(loaded.routes.filter((route) => route.upstream !== null))
      let identity: Identity | null = null
      let hasSecondFactor = false
      if (options.email !== undefined) {
        const user = await execute(options, 'user.get', { email: options.email })
        if (user.disabled) throw new CommandFailure(`${user.email} is disabled: every request of theirs is refused`)
        // A user with a second factor gets no session without it (SPEC §3): decide for such a session.
        const factors = await execute(options, 'user.mfa', { email: options.email })
        hasSecondFactor = factors.second_factor
        identity = {
          user,
          permissions: permissionsFor(user.roles, loaded.roles),
          method: 'session',
          amr: hasSecondFactor ? ['pwd', factors.totp ? 'otp' : 'hwk'] : ['pwd'],
          secondFactor: hasSecondFactor,
          session: null,
          via: 'header',
          expiresAt: null,
          tokenId: null,
          explicitPermissions: false,
        }
      }
      const host = options.host ?? new URL(loaded.server.public_url).host
      const secondFactors = { requiredRoles: loaded.auth.mfa.required_roles, hasSecondFactor: async () => hasSecondFactor }
      const explanation = await explain(table, options.path, options.method, identity, { host, publicUrl: loaded.server.public_url, secondFactors })
      process.stdout.write(formatExplanation(explanation))
    })

  return program
}

function describe(err: unknown): string {
  if (err instanceof ConfigError) return err.problems.join('\n')
  if (err instanceof GatehouseError) {
    const problems = (err.details?.problems as unknown[] | undefined)?.map(String)
    return problems && problems.length > 0 ? `${err.message}: ${problems.join('; ')}` : err.message
  }
  if (err instanceof Error) return err.message
  return String(err)
}

/** Runs one command; `serving` is true when it started the gateway, which then runs until a signal. */
export async function main(argv: readonly string[]): Promise<{ code: number; serving: boolean }> {
  const state = { serving: false }
  const program = buildProgram(state)
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return { code: 0, serving: state.serving }
  } catch (err) {
    if (err instanceof CommanderError) return { code: err.exitCode === 0 ? 0 : 2, serving: false }
    // A config's problems are printed one per line, each starting with its key path (SPEC §2),
    // so that every line reads alike (and greps alike): no prefix on the first one only.
    process.stderr.write(err instanceof ConfigError ? `${describe(err)}\n` : `gatehouse: ${describe(err)}\n`)
    return { code: err instanceof UsageError ? 2 : 1, serving: false }
  }
}
