/** `gatehouse token …` (SPEC §8): create (prints only the token), list, revoke. */
import type { Command } from 'commander'
import { execute } from './execute.js'
import { writeJson, writeRows } from './output.js'
import { collect, configOption, UsageError, type ConfigOptions } from './usage.js'

export function addTokenCommands(program: Command): void {
  const token = program.command('token').description('manage personal access tokens')

  token
    .command('create')
    .description('create a personal access token for a user; prints only the token')
    .requiredOption('--email <email>', "the owner's email address")
    .requiredOption('--name <name>', 'a name for the token')
    .option('--expires-days <days>', 'days until it expires (default: never)')
    .option(
      '--permission <permission>',
      "a permission the token carries (repeatable; default: all of the owner's). A token with a list naming users:manage or * may call the admin API",
      collect,
      [],
    )
    .addOption(configOption())
    .action(async (options: ConfigOptions & { email: string; name: string; expiresDays?: string; permission: string[] }) => {
      const days = options.expiresDays === undefined ? null : Number(options.expiresDays)
      if (days !== null && !(/^\d+$/.test(options.expiresDays ?? '') && Number.isSafeInteger(days) && days > 0)) {
        throw new UsageError('--expires-days takes a whole number of days')
      }
      const created = await execute(options, 'token.create', {
        email: options.email,
        name: options.name,
        expires_in_days: days,
        permissions: options.permission.length > 0 ? options.permission : null,
      })
      process.stdout.write(`${created.token}\n`)
    })

  token
    .command('list')
    .description("a user's tokens, masked (expired ones included until revoked)")
    .requiredOption('--email <email>', "the owner's email address")
    .option('--json', 'print a JSON array')
    .addOption(configOption())
    .action(async (options: ConfigOptions & { email: string; json?: boolean }) => {
      const tokens = await execute(options, 'token.list', { email: options.email })
      if (options.json) return writeJson(tokens)
      writeRows(
        ['id', 'name', 'token', 'permissions', 'expires_at', 'last_used_at', 'created_at', 'expired'],
        tokens.map((p) => [p.id, p.name, p.token, p.permissions?.join(',') ?? '(all of the owner\'s)', p.expires_at, p.last_used_at, p.created_at, p.expired]),
      )
    })

  token
    .command('revoke')
    .description('revoke a token (on every replica within a second)')
    .requiredOption('--id <id>', "the token's id (see token list)")
    .addOption(configOption())
    .action(async (options: ConfigOptions & { id: string }) => {
      const revoked = await execute(options, 'token.revoke', { id: options.id })
      process.stdout.write(`revoked token ${revoked.id} of ${revoked.email}\n`)
    })
}
