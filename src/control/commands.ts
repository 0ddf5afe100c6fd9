/**
 * The operator commands of `gatehouse` (SPEC §8) as one function over the core services:
 * the CLI runs them in its own process, or, while a gateway holds the embedded database,
 * sends them through the control socket for the gateway to run on its open runtime. Either
 * way the same code does the work; the CLI only parses arguments and prints results.
 */
import type { AuditEntry, AuditLog } from '../core/audit.js'
import { normalizeEmail } from '../core/email.js'
import type { CreatedPat, PatInfo, PatService, RoleMap } from '../core/pats.js'
import { knownPermissions, permissionsFor } from '../core/permissions.js'
import type { FactorStatus, SecondFactors } from '../core/mfa/index.js'
import type { SessionService } from '../core/sessions.js'
import type { ManagedUser, User, UserService } from '../core/users.js'
import { GatehouseError } from '../errors.js'
import type { Runtime } from '../runtime.js'
import { migrate } from '../storage/migrate.js'

/** The command could not do what was asked (no such user, …): the CLI prints it and exits 1. */
export class CommandFailure extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CommandFailure'
  }
}

export interface ControlServices {
  users: UserService
  sessions: SessionService
  factors: Pick<SecondFactors, 'reset' | 'status' | 'hasSecondFactor'>
  pats: PatService
  audit: AuditLog
  /** `roles` of the configuration in use. */
  roles: RoleMap
  /** The permissions that configuration knows (core/permissions.ts knownPermissions). */
  permissions: ReadonlySet<string>
  /** Applies pending migrations to the database in use. */
  migrate(): Promise<{ applied: number[] }>
}

/** The services of a runtime, the CLI's own or a running gateway's current one. */
export function servicesOf(runtime: Runtime): ControlServices {
  return {
    users: runtime.users,
    sessions: runtime.sessions,
    factors: runtime.secondFactors,
    pats: runtime.pats,
    audit: runtime.audit,
    roles: runtime.config.roles,
    permissions: knownPermissions(runtime.config),
    migrate: () => migrate(runtime.db),
  }
}

/** Every command: its arguments and its result (plain JSON, so that it crosses the socket). */
export interface ControlCommands {
  migrate: { args: Record<string, never>; result: { applied: number[] } }
  'user.create': {
    args: { email: string; name: string | null; roles: string[] | null; password: string | null }
    result: User
  }
  'user.get': { args: { email: string }; result: ManagedUser }
  'user.set-roles': { args: { email: string; roles: string[] }; result: ManagedUser }
  'user.disable': { args: { email: string }; result: { user: ManagedUser; sessions_ended: number } }
  'user.enable': { args: { email: string }; result: ManagedUser }
  'user.delete': { args: { email: string }; result: { email: string; sessions_ended: number } }
  'user.reset-password': { args: { email: string; password: string }; result: { email: string; sessions_ended: number } }
  'user.list': { args: Record<string, never>; result: ManagedUser[] }
  'user.reset-mfa': { args: { email: string }; result: { email: string; removed: boolean; sessions_ended: number } }
  'user.mfa': { args: { email: string }; result: FactorStatus & { second_factor: boolean } }
  'token.create': {
    args: { email: string; name: string; expires_in_days: number | null; permissions: string[] | null }
    result: CreatedPat
  }
  'token.list': { args: { email: string }; result: PatInfo[] }
  'token.revoke': { args: { id: string }; result: { id: string; email: string } }
  'audit.list': { args: { email: string | null; type: string | null; limit: number }; result: AuditEntry[] }
}

export type CommandName = keyof ControlCommands
type Args<C extends CommandName> = ControlCommands[C]['args']
type Result<C extends CommandName> = ControlCommands[C]['result']

/** The most events `audit list` prints. */
export const MAX_AUDIT_LIST = 10_000
const PAGE = 100

interface Handler<C extends CommandName> {
  /** Checks arguments that arrived as JSON (over the socket) and gives them their type. */
  parse(args: Record<string, unknown>): Args<C>
  run(services: ControlServices, args: Args<C>): Promise<Result<C>>
}

const handlers: { [C in CommandName]: Handler<C> } = {
  migrate: {
    parse: () => ({}),
    run: (s) => s.migrate(),
  },
  'user.create': {
    parse: (a) => ({
      email: text(a, 'email'),
      name: optional(a, 'name', text),
      roles: optional(a, 'roles', textList),
      password: optional(a, 'password', text),
    }),
    run: (s, a) =>
      s.users.register({ email: a.email, password: a.password, name: a.name }, a.roles === null ? {} : { roles: a.roles }),
  },
  'user.get': {
    parse: (a) => ({ email: text(a, 'email') }),
    run: (s, a) => requireUser(s, a.email),
  },
  'user.set-roles': {
    parse: (a) => ({ email: text(a, 'email'), roles: textList(a, 'roles') }),
    run: async (s, a) => s.users.setRoles((await requireUser(s, a.email)).id, a.roles),
  },
  'user.disable': {
    parse: (a) => ({ email: text(a, 'email') }),
    run: async (s, a) => {
      const user = await s.users.setDisabled((await requireUser(s, a.email)).id, true)
      return { user, sessions_ended: await s.sessions.revokeAll(user.id) }
    },
  },
  'user.enable': {
    parse: (a) => ({ email: text(a, 'email') }),
    run: async (s, a) => s.users.setDisabled((await requireUser(s, a.email)).id, false),
  },
  'user.delete': {
    parse: (a) => ({ email: text(a, 'email') }),
    run: async (s, a) => {
      const user = await requireUser(s, a.email)
      await s.users.delete(user.id)
      return { email: user.email, sessions_ended: await s.sessions.revokeAll(user.id) }
    },
  },
  'user.reset-password': {
    parse: (a) => ({ email: text(a, 'email'), password: text(a, 'password') }),
    run: async (s, a) => {
      const user = await requireUser(s, a.email)
      await s.users.setPassword(user.id, a.password)
      return { email: user.email, sessions_ended: await s.sessions.revokeAll(user.id) }
    },
  },
  'user.reset-mfa': {
    parse: (a) => ({ email: text(a, 'email') }),
    run: async (s, a) => {
      const user = await requireUser(s, a.email)
      const removed = await s.factors.reset(user)
      return { email: user.email, removed, sessions_ended: await s.sessions.revokeAll(user.id) }
    },
  },
  'user.mfa': {
    parse: (a) => ({ email: text(a, 'email') }),
    run: async (s, a) => {
      const user = await requireUser(s, a.email)
      const [status, second_factor] = await Promise.all([s.factors.status(user.id), s.factors.hasSecondFactor(user.id)])
      return { ...status, second_factor }
    },
  },
  'user.list': {
    parse: () => ({}),
    run: async (s) => {
      const users: ManagedUser[] = []
      let cursor: string | null = null
      do {
        const page = await s.users.list({ limit: PAGE, cursor })
        users.push(...page.items)
        cursor = page.next_cursor
      } while (cursor !== null)
      return users
    },
  },
  'token.create': {
    parse: (a) => ({
      email: text(a, 'email'),
      name: text(a, 'name'),
      expires_in_days: optional(a, 'expires_in_days', integer),
      permissions: optional(a, 'permissions', textList),
    }),
    run: async (s, a) => {
      if (a.permissions !== null) refuseUnknown(a.permissions, s.permissions)
      const owner = await requireUser(s, a.email)
      if (owner.disabled) throw new CommandFailure(`${owner.email} is disabled`)
      return s.pats.create(
        { id: owner.id, permissions: permissionsFor(owner.roles, s.roles) },
        { name: a.name, expires_in_days: a.expires_in_days, permissions: a.permissions },
      )
    },
  },
  'token.list': {
    parse: (a) => ({ email: text(a, 'email') }),
    run: async (s, a) => s.pats.list((await requireUser(s, a.email)).id),
  },
  'token.revoke': {
    parse: (a) => ({ id: text(a, 'id') }),
    run: async (s, a) => {
      const owner = await s.pats.ownerOf(a.id)
      const user = owner === null ? null : await s.users.get(owner)
      if (user === null) throw new CommandFailure(`no token with id ${a.id}`)
      if (!(await s.pats.revoke(user.id, a.id))) throw new CommandFailure(`token ${a.id} is already revoked`)
      return { id: a.id, email: user.email }
    },
  },
  'audit.list': {
    parse: (a) => ({ email: optional(a, 'email', text), type: optional(a, 'type', text), limit: integer(a, 'limit') }),
    run: async (s, a) => {
      if (a.limit < 1 || a.limit > MAX_AUDIT_LIST) throw invalid('limit', `limit must be from 1 to ${MAX_AUDIT_LIST}`)
      const filter = { ...(a.email === null ? {} : { email: emailOf(a.email) }), ...(a.type === null ? {} : { type: a.type }) }
      const events: AuditEntry[] = []
      let cursor: string | null = null
      do {
        const page = await s.audit.page({ ...filter, limit: Math.min(PAGE * 10, a.limit - events.length), cursor })
        events.push(...page.items)
        cursor = page.next_cursor
      } while (cursor !== null && events.length < a.limit)
      return events
    },
  },
}

/** Runs a command whose arguments are already typed (the CLI's own process). */
export function runCommand<C extends CommandName>(services: ControlServices, command: C, args: Args<C>): Promise<Result<C>> {
  return handlers[command].run(services, args)
}

/** Runs a request as it arrived over the control socket: `{command, args}`, checked first. */
export async function runControlRequest(services: ControlServices, request: unknown): Promise<unknown> {
  if (typeof request !== 'object' || request === null) throw invalid('request', 'a request is {command, args}')
  const { command, args } = request as { command?: unknown; args?: unknown }
  if (typeof command !== 'string' || !Object.hasOwn(handlers, command)) throw invalid('command', `unknown command ${String(command)}`)
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw invalid('args', 'args must be an object')
  const handler = handlers[command as CommandName] as Handler<CommandName>
  return handler.run(services, handler.parse(args as Record<string, unknown>))
}

async function requireUser(services: ControlServices, email: string): Promise<ManagedUser> {
  const user = await services.users.getByEmail(email)
  if (user === null) throw new CommandFailure(`no user with email ${email}`)
  return user
}

/** The normalised form of an email for the audit filter (an address without an account is fine). */
function emailOf(email: string): string {
  try {
    return normalizeEmail(email)
  } catch {
    throw invalid('email', `${email} is not an email address`)
  }
}

/**
 * A permission that no role grants (by name) and nothing checks is a typo, never a token's
 * right: refused (SPEC §8), even for an owner holding `*`, who holds every name.
 */
function refuseUnknown(permissions: readonly string[], known: ReadonlySet<string>): void {
  const unknown = permissions.filter((permission) => !known.has(permission))
  if (unknown.length > 0) {
    throw new GatehouseError('GH_VALIDATION', `Unknown permission (no role grants it, no route needs it): ${unknown.join(', ')}`, {
      details: { field: 'permissions', unknown },
    })
  }
}

function invalid(field: string, message: string): GatehouseError {
  return new GatehouseError('GH_VALIDATION', message, { details: { field } })
}

function text(args: Record<string, unknown>, key: string): string {
  const value = args[key]
  if (typeof value !== 'string') throw invalid(key, `${key} must be a string`)
  return value
}

function textList(args: Record<string, unknown>, key: string): string[] {
  const value = args[key]
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) throw invalid(key, `${key} must be a list of strings`)
  return value as string[]
}

function integer(args: Record<string, unknown>, key: string): number {
  const value = args[key]
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid(key, `${key} must be an integer`)
  return value
}

/** `read(args, key)`, or null when the key is absent or null. */
function optional<T>(args: Record<string, unknown>, key: string, read: (args: Record<string, unknown>, key: string) => T): T | null {
  return args[key] === undefined || args[key] === null ? null : read(args, key)
}
