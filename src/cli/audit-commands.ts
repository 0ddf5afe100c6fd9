/** `gatehouse audit list` (SPEC §8): the audit trail, newest first. */
import type { Command } from 'commander'
import { MAX_AUDIT_LIST } from '../control/commands.js'
import { execute } from './execute.js'
import { writeJson, writeRows } from './output.js'
import { configOption, UsageError, type ConfigOptions } from './usage.js'

const DEFAULT_LIMIT = 50

export function addAuditCommands(program: Command): void {
  program
    .command('audit')
    .description('read the audit trail')
    .command('list')
    .description('sign-ins, failures with their reason, lockouts, user and token changes, newest first')
    .option('--email <email>', 'only events about this email (with or without an account)')
    .option('--type <type>', 'only this event type (login.failed) or family (login)')
    .option('--limit <n>', `at most this many events (default ${DEFAULT_LIMIT}, at most ${MAX_AUDIT_LIST})`)
    .option('--json', 'print a JSON array')
    .addOption(configOption())
    .action(async (options: ConfigOptions & { email?: string; type?: string; limit?: string; json?: boolean }) => {
      const limit = options.limit === undefined ? DEFAULT_LIMIT : Number(options.limit)
      if (!/^\d+$/.test(options.limit ?? '1') || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_AUDIT_LIST) {
        throw new UsageError(`--limit takes a whole number from 1 to ${MAX_AUDIT_LIST}`)
      }
      const events = await execute(options, 'audit.list', { email: options.email ?? null, type: options.type ?? null, limit })
      if (options.json) return writeJson(events)
      writeRows(
        ['created_at', 'type', 'email', 'user_id', 'ip', 'details'],
        events.map((e) => [e.created_at, e.type, e.email, e.user_id, e.ip, e.details]),
      )
    })
}
