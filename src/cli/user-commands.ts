/** `gatehouse user …` (SPEC §8): create, set-roles, disable, enable, delete, reset-password, reset-mfa, list. */
import type { Command } from 'commander'
import { execute } from './execute.js'
import { writeJson, writeRows } from './output.js'
import { collect, configOption, readStdin, UsageError, type ConfigOptions } from './usage.js'

interface EmailOptions extends ConfigOptions {
  email: string
}

export function addUserCommands(program: Command): void {
  const user = program.command('user').description('manage users')

  user
    .command('create')
    .description('create a user; give exactly one of --password-stdin (the password is read from standard input) and --no-password')
    .requiredOption('--email <email>', 'email address')
    .option('--name <name>', 'display name')
    .option('--role <role>', 'a role (repeatable; default: default_roles)', collect, [])
    .option('--password-stdin', 'read the password from standard input')
    .option('--no-password', 'create the user without a password (OIDC sign-in or tokens only)')
    .addOption(configOption())
    .action(async (options: EmailOptions & { name?: string; role: string[]; passwordStdin?: boolean; password: boolean }) => {
      // commander sets `password` false for --no-password and true otherwise.
      const noPassword = options.password === false
      if (options.passwordStdin === true === noPassword) throw new UsageError('give exactly one of --password-stdin and --no-password')
      const password = noPassword ? null : await readStdin('--password-stdin')
      const created = await execute(options, 'user.create', {
        email: options.email,
        name: options.name ?? null,
        roles: options.role.length > 0 ? options.role : null,
        password,
      })
      process.stdout.write(`created ${created.email} (${created.id}) with roles: ${created.roles.join(', ') || '(none)'}\n`)
    })

  user
    .command('set-roles')
    .description("replace a user's roles")
    .requiredOption('--email <email>', 'email address')
    .option('--role <role>', 'a role (repeatable)', collect, [])
    .addOption(configOption())
    .action(async (options: EmailOptions & { role: string[] }) => {
      if (options.role.length === 0) throw new UsageError('give at least one --role')
      const updated = await execute(options, 'user.set-roles', { email: options.email, roles: options.role })
      process.stdout.write(`${updated.email}: roles ${updated.roles.join(', ')}\n`)
    })

  user
    .command('disable')
    .description('disable a user, end their sessions and stop their tokens')
    .requiredOption('--email <email>', 'email address')
    .addOption(configOption())
    .action(async (options: EmailOptions) => {
      const { user: disabled, sessions_ended } = await execute(options, 'user.disable', { email: options.email })
      process.stdout.write(`${disabled.email}: disabled, ${sessions_ended} session(s) ended\n`)
    })

  user
    .command('enable')
    .description('enable a disabled user again')
    .requiredOption('--email <email>', 'email address')
    .addOption(configOption())
    .action(async (options: EmailOptions) => {
      const enabled = await execute(options, 'user.enable', { email: options.email })
      process.stdout.write(`${enabled.email}: enabled\n`)
    })

  user
    .command('delete')
    .description('delete a user with their tokens, and end their sessions')
    .requiredOption('--email <email>', 'email address')
    .addOption(configOption())
    .action(async (options: EmailOptions) => {
      const deleted = await execute(options, 'user.delete', { email: options.email })
      process.stdout.write(`${deleted.email}: deleted, ${deleted.sessions_ended} session(s) ended\n`)
    })

  user
    .command('reset-password')
    .description("set a user's password (read from standard input), end their sessions and clear their lockout")
    .requiredOption('--email <email>', 'email address')
    .option('--password-stdin', 'read the new password from standard input (required)')
    .addOption(configOption())
    .action(async (options: EmailOptions & { passwordStdin?: boolean }) => {
      if (options.passwordStdin !== true) throw new UsageError('reset-password reads the new password with --password-stdin')
      const password = await readStdin('--password-stdin')
      const reset = await execute(options, 'user.reset-password', { email: options.email, password })
      process.stdout.write(`${reset.email}: password set, ${reset.sessions_ended} session(s) ended\n`)
    })

  user
    .command('reset-mfa')
    .description("remove a user's second factors (authenticator app, recovery codes, passkeys) and end their sessions")
    .requiredOption('--email <email>', 'email address')
    .addOption(configOption())
    .action(async (options: EmailOptions) => {
      const reset = await execute(options, 'user.reset-mfa', { email: options.email })
      const what = reset.removed ? 'second factors removed' : 'had no second factor'
      process.stdout.write(`${reset.email}: ${what}, ${reset.sessions_ended} session(s) ended\n`)
    })

  user
    .command('list')
    .description('list users')
    .option('--json', 'print a JSON array')
    .addOption(configOption())
    .action(async (options: ConfigOptions & { json?: boolean }) => {
      const users = await execute(options, 'user.list', {})
      if (options.json) return writeJson(users)
      writeRows(
        ['id', 'email', 'name', 'roles', 'disabled', 'created_at'],
        users.map((u) => [u.id, u.email, u.name, u.roles.join(','), u.disabled, u.created_at]),
      )
    })
}
