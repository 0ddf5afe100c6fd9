/**
 * The `gatehouse` command (SPEC §8). Errors go to stderr; exit 1 on failure, 2 on bad usage.
 */
import { Command, CommanderError, Option } from 'commander'
import { ConfigError, loadConfig, resolveConfigPath } from './config/index.js'
import type { GatewayConfig } from './config/types.js'
import { systemClock } from './core/clock.js'
import { rotateDataKeys } from './core/data-keys.js'
import { rotateKeys } from './core/identity-keys.js'
import type { Identity } from './core/identity.js'
import { permissionsFor } from './core/permissions.js'
import { explain } from './core/policy.js'
import { RouteTable } from './core/route-table.js'
import { GatehouseError } from './errors.js'
import { formatExplanation } from './explain-format.js'
import { openRuntime, type Runtime } from './runtime.js'
import { closeOnSignals, startGateway } from './server.js'
import { migrate } from './storage/migrate.js'
import { openDatabase } from './storage/open.js'
import { version } from './version.js'

/** The command line itself is wrong: exit 2, like commander's own usage errors. */
class UsageError extends Error {}
/** The command could not do what was asked: printed as is, exit 1. */
class CommandFailure extends Error {}

const collect = (value: string, previous: string[]) => [...previous, value]

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('--password-stdin reads the password from standard input; pipe it in')
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

async function config(options: { config?: string }): Promise<GatewayConfig> {
  return loadConfig(resolveConfigPath(options.config))
}

/** Opens the stores for one command and always closes them. */
async function withRuntime<T>(options: { config?: string }, fn: (runtime: Runtime) => Promise<T>): Promise<T> {
  const runtime = await openRuntime(await config(options))
  try {
    return await fn(runtime)
  } finally {
    await runtime.close()
  }
}

async function requireUser(runtime: Runtime, email: string) {
  const user = await runtime.users.getByEmail(email)
  if (user === null) throw new CommandFailure(`no user with email ${email}`)
  return user
}

export function buildProgram(state: { serving: boolean } = { serving: false }): Command {
  const program = new Command('gatehouse')
    .description('Gatehouse: an authentication gateway in front of your apps')
    .version(version)
    .exitOverride()
    .showHelpAfterError()
  const configOption = () =>
    new Option('--config <file>', 'gateway.yml to use (default: $GATEHOUSE_CONFIG, then ./gateway.yml)')

  program
    .command('serve')
    .description('run the gateway')
    .addOption(configOption())
    .action(async (options: { config?: string }) => {
      const gateway = await startGateway(await config(options))
      closeOnSignals(gateway)
      state.serving = true
      const users = await gateway.runtime.users.count()
      process.stdout.write(`\nGatehouse ${version} is listening on ${gateway.url}\n`)
      process.stdout.write(`  health: ${gateway.url}/health\n`)
      if (users === 0) {
        process.stdout.write(
          `\nNo users yet. Register one with the API:\n` +
            `  curl -k ${gateway.url}/auth/register -H 'content-type: application/json' -d '{"email":"you@example.com","password":"fifteen or more characters"}'\n` +
            `or create the first admin ` +
            `(with embedded storage, stop the gateway first):\n` +
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
      process.stdout.write(`${path}: ok (${loaded.routes.length} routes)\n`)
    })

  program
    .command('migrate')
    .description('apply pending database migrations')
    .addOption(configOption())
    .action(async (options: { config?: string }) => {
      const db = await openDatabase((await config(options)).storage.database)
      try {
        const { applied } = await migrate(db)
        process.stdout.write(applied.length === 0 ? 'database is up to date\n' : `applied migrations ${applied.join(', ')}\n`)
      } finally {
        await db.close()
      }
    })

  const user = program.command('user').description('manage users')
  user
    .command('create')
    .description('create a user (with --password-stdin, the password is read from standard input)')
    .requiredOption('--email <email>', 'email address')
    .option('--name <name>', 'display name')
    .option('--role <role>', 'a role (repeatable; default: default_roles)', collect, [])
    .option('--password-stdin', 'read the password from standard input')
    .addOption(configOption())
    .action(async (options: { email: string; name?: string; role: string[]; passwordStdin?: boolean; config?: string }) => {
      const password = options.passwordStdin ? await readStdin() : null
      await withRuntime(options, async ({ users }) => {
        const created = await users.register(
          { email: options.email, password, name: options.name ?? null },
          options.role.length > 0 ? { roles: options.role } : {},
        )
        process.stdout.write(`created ${created.email} (${created.id}) with roles: ${created.roles.join(', ') || '(none)'}\n`)
      })
    })

  user
    .command('set-roles')
    .description("replace a user's roles")
    .requiredOption('--email <email>', 'email address')
    .option('--role <role>', 'a role (repeatable)', collect, [])
    .addOption(configOption())
    .action(async (options: { email: string; role: string[]; config?: string }) => {
      if (options.role.length === 0) throw new UsageError('give at least one --role')
      await withRuntime(options, async (runtime) => {
        const target = await requireUser(runtime, options.email)
        const updated = await runtime.users.setRoles(target.id, options.role)
        process.stdout.write(`${updated.email}: roles ${updated.roles.join(', ')}\n`)
      })
    })

  user
    .command('disable')
    .description('disable a user and end their sessions')
    .requiredOption('--email <email>', 'email address')
    .addOption(configOption())
    .action(async (options: { email: string; config?: string }) => {
      await withRuntime(options, async (runtime) => {
        const target = await requireUser(runtime, options.email)
        await runtime.users.setDisabled(target.id, true)
        const ended = await runtime.sessions.revokeAll(target.id)
        process.stdout.write(`${target.email}: disabled, ${ended} session(s) ended\n`)
      })
    })

  user
    .command('list')
    .description('list users')
    .addOption(configOption())
    .action(async (options: { config?: string }) => {
      await withRuntime(options, async ({ users }) => {
        let cursor: string | null = null
        process.stdout.write('id\temail\troles\tdisabled\tcreated_at\n')
        do {
          const page = await users.list({ limit: 100, cursor })
          for (const u of page.items) {
            process.stdout.write(`${u.id}\t${u.email}\t${u.roles.join(',')}\t${u.disabled}\t${u.created_at}\n`)
          }
          cursor = page.next_cursor
        } while (cursor !== null)
      })
    })

  const token = program.command('token').description('manage personal access tokens')
  token
    .command('create')
    .description('create a personal access token for a user; prints only the token')
    .requiredOption('--email <email>', "the owner's email address")
    .requiredOption('--name <name>', 'a name for the token')
    .option('--expires-days <days>', 'days until it expires (default: never)')
    .option('--permission <permission>', 'a permission the token carries (repeatable; default: all of the owner\'s)', collect, [])
    .addOption(configOption())
    .action(async (options: { email: string; name: string; expiresDays?: string; permission: string[]; config?: string }) => {
      const days = options.expiresDays === undefined ? null : Number(options.expiresDays)
      if (days !== null && !(Number.isInteger(days) && days > 0)) throw new UsageError('--expires-days takes a whole number of days')
      await withRuntime(options, async (runtime) => {
        const owner = await requireUser(runtime, options.email)
        if (owner.disabled) throw new CommandFailure(`${owner.email} is disabled`)
        const created = await runtime.pats.create(
          { id: owner.id, permissions: permissionsFor(owner.roles, runtime.config.roles) },
          { name: options.name, expires_in_days: days, permissions: options.permission.length > 0 ? options.permission : null },
        )
        process.stdout.write(`${created.token}\n`)
      })
    })

  program
    .command('keys')
    .description('manage the identity signing keys')
    .command('rotate')
    .description('start signing with a new key (the previous one stays published until its assertions expire) and/or encrypting with a new data key (old ones keep decrypting); without a flag, both')
    .option('--signing', 'rotate the identity signing key (identity.signing_key_file)')
    .option('--data', 'rotate the data encryption key (identity.data_key_file)')
    .addOption(configOption())
    .action(async (options: { config?: string; signing?: boolean; data?: boolean }) => {
      const loaded = await config(options)
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
    .option('--email <email>', 'decide for this user, signed in with a session')
    .option('--anonymous', 'decide for a request without credentials')
    .addOption(configOption())
    .action(async (options: { method: string; path: string; email?: string; anonymous?: boolean; config?: string }) => {
      if ((options.email === undefined) === (options.anonymous !== true)) {
        throw new UsageError('give exactly one of --email E and --anonymous')
      }
      const loaded = await config(options)
      const table = new RouteTable(loaded.routes)
      let identity: Identity | null = null
      if (options.email !== undefined) {
        const email = options.email
        identity = await withRuntime(options, async (runtime) => {
          const user = await requireUser(runtime, email)
          if (user.disabled) throw new CommandFailure(`${user.email} is disabled: every request of theirs is refused`)
          return {
            user,
            permissions: permissionsFor(user.roles, loaded.roles),
            method: 'session',
            amr: 'pwd',
            session: null,
            via: 'header',
            expiresAt: null,
            tokenId: null,
          } satisfies Identity
        })
      }
      process.stdout.write(formatExplanation(explain(table, options.path, options.method, identity)))
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
