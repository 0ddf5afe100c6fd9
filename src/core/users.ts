import { GatehouseError } from '../errors.js'
import { isUniqueViolation, type Database, type Queryable } from '../storage/database.js'
import type { AuditLog } from './audit.js'
import { normalizeEmail } from './email.js'
import type { LoginThrottle } from './login-throttle.js'
import type { PasswordHasher } from './password-hasher.js'
import { checkPassword, MAX_PASSWORD_LENGTH, passwordLength, type PasswordPolicy } from './password-policy.js'

/** A user as the API shows it (SPEC §5). */
export interface User {
  id: string
  email: string
  name: string | null
  roles: string[]
  /** The user proved they receive mail at `email` (a link, or an OIDC provider's word). */
  email_verified: boolean
  /** ISO 8601, UTC, millisecond precision. */
  created_at: string
}

/** A user as administrators see it. */
export interface ManagedUser extends User {
  disabled: boolean
}

export interface UserPage {
  items: ManagedUser[]
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: string | null
}

/** Who caused a change and from where, for the audit trail. */
export interface AuditContext {
  /** The acting user's id, when it is not the user being changed (an admin). */
  actorId?: string | null
  ip?: string | null
}

export interface RegisterInput {
  email: string
  /** null creates a user who cannot log in with a password (OIDC, or PATs only). */
  password: string | null
  name?: string | null
}

export interface RegisterOptions extends AuditContext {
  /** Default: `default_roles`. Every role must exist in the role map. */
  roles?: readonly string[]
  /**
   * Default true: an account an operator or admin creates is vouched for. Self-service
   * registration passes false and mails a verification link.
   */
  emailVerified?: boolean
}

export interface UserServiceOptions {
  db: Database
  hasher: PasswordHasher
  audit: AuditLog
  throttle: LoginThrottle
  /** `auth.password`. */
  passwordPolicy: PasswordPolicy
  /** `roles` of gateway.yml: the roles that exist. */
  roles: Readonly<Record<string, readonly string[]>>
  /** `default_roles`, given to registered users. */
  defaultRoles: readonly string[]
  /** `auth.email_verification`: with `required`, a correct password of an unverified user is GH_EMAIL_UNVERIFIED. Default off. */
  emailVerification?: 'off' | 'required'
  /**
   * Told after a user's name, roles or status changed or the user was deleted, once that is
   * committed, so that every replica drops what it caches about them (see `announce`).
   */
  onUserChanged?: (userId: string) => Promise<void>
}

export const MAX_NAME_LENGTH = 100
export const MAX_PAGE_SIZE = 100

interface UserRow {
  id: string
  email: string
  name: string | null
  password_hash: string | null
  roles: string[]
  disabled: boolean
  email_verified: boolean
  created_at: string
  /** created_at to the microsecond, for cursors. */
  created_at_us: string
}

const USER_COLUMNS = `id::text AS id, email, name, password_hash, roles, disabled, email_verified,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at_us`

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/
/** Controls, bidi embeddings/overrides/isolates and line separators: they garble names where they are shown. */
export const NAME_FORBIDDEN = /[\p{Cc}\p{Zl}\p{Zp}\u202A-\u202E\u2066-\u2069]/u

export function toUser(row: Pick<UserRow, 'id' | 'email' | 'name' | 'roles' | 'email_verified' | 'created_at'>): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    roles: row.roles,
    email_verified: row.email_verified,
    created_at: row.created_at,
  }
}

function toManagedUser(row: UserRow): ManagedUser {
  return { ...toUser(row), disabled: row.disabled }
}

function invalidCredentials(reason?: string): GatehouseError {
  return new GatehouseError('GH_INVALID_CREDENTIALS', undefined, { reason })
}

function notFound(): GatehouseError {
  return new GatehouseError('GH_NOT_FOUND', 'No such user')
}

/** A display name: trimmed, NFC, 1–100 code points, no control or bidi-override characters; null clears it. */
function validateName(name: string | null | undefined): string | null {
  if (name === null || name === undefined) return null
  const invalid = (message: string): GatehouseError =>
    new GatehouseError('GH_VALIDATION', message, { details: { field: 'name' } })
  if (typeof name !== 'string') throw invalid('The name must be a string')
  if (name.length > MAX_NAME_LENGTH * 4) throw invalid(`The name must be at most ${MAX_NAME_LENGTH} characters long`)
  const trimmed = name.trim().normalize('NFC')
  const length = [...trimmed].length
  if (length === 0) throw invalid('The name must not be empty')
  if (length > MAX_NAME_LENGTH) throw invalid(`The name must be at most ${MAX_NAME_LENGTH} characters long`)
  if (NAME_FORBIDDEN.test(trimmed)) throw invalid('The name contains control characters')
  return trimmed
}

function encodeCursor(row: UserRow): string {
  return Buffer.from(JSON.stringify([row.created_at_us, row.id])).toString('base64url')
}

function decodeCursor(cursor: string): { createdAt: string; id: string } {
  const invalid = new GatehouseError('GH_VALIDATION', 'The cursor is not valid', { details: { field: 'cursor' } })
  if (cursor.length > 200 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid
  let decoded: unknown
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalid
  }
  if (!Array.isArray(decoded) || decoded.length !== 2) throw invalid
  const [createdAt, id] = decoded as unknown[]
  if (typeof createdAt !== 'string' || typeof id !== 'string' || !UUID.test(id) || !CURSOR_TIME.test(createdAt)) {
    throw invalid
  }
  // Date.parse is lenient about impossible dates (Feb 30); PostgreSQL is not.
  const millis = Date.parse(createdAt)
  if (Number.isNaN(millis) || new Date(millis).toISOString().slice(0, 23) !== createdAt.slice(0, 23)) throw invalid
  return { createdAt, id }
}

/**
 * Local users: registration, password login, profile, roles, disabling and deletion, over
 * the `users` table. Every change is written with its audit event in one transaction.
 *
 * Ending sessions is not done here (the services stay independent): after `setDisabled`,
 * `delete` and `changePassword` the caller ends the user's sessions with SessionService;
 * `isActive` refuses a disabled or deleted user on the next request anyway.
 */
export class UserService {
  readonly #db: Database
  readonly #hasher: PasswordHasher
  readonly #audit: AuditLog
  readonly #throttle: LoginThrottle
  readonly #policy: PasswordPolicy
  readonly #roles: Readonly<Record<string, readonly string[]>>
  readonly #defaultRoles: readonly string[]
  readonly #onUserChanged: (userId: string) => Promise<void>
  readonly #emailVerification: 'off' | 'required'

  constructor(options: UserServiceOptions) {
    this.#db = options.db
    this.#hasher = options.hasher
    this.#audit = options.audit
    this.#throttle = options.throttle
    this.#policy = options.passwordPolicy
    this.#roles = options.roles
    this.#defaultRoles = options.defaultRoles
    this.#onUserChanged = options.onUserChanged ?? (async () => {})
    this.#emailVerification = options.emailVerification ?? 'off'
  }

  /**
   * Creates a user. GH_VALIDATION (`details.field`: email, password with `problems`, name or
   * roles) for bad input, GH_EMAIL_TAKEN when the normalised email exists. Whether
   * registration is open is the caller's decision.
   */
  async register(input: RegisterInput, options: RegisterOptions = {}): Promise<User> {
    const email = normalizeEmail(input.email)
    const name = validateName(input.name)
    const roles = this.#validateRoles(options.roles ?? this.#defaultRoles)
    if (input.password !== null) this.#checkNewPassword(input.password, email)

    // Cheap early answer before spending a hash; the unique index still decides races.
    const existing = await this.#db.query('SELECT 1 FROM users WHERE email = $1', [email])
    if (existing.rows.length > 0) throw new GatehouseError('GH_EMAIL_TAKEN')
    const passwordHash = input.password === null ? null : await this.#hasher.hash(input.password)

    try {
      return await this.#db.transaction(async (tx) => {
        const result = await tx.query<UserRow>(
          `INSERT INTO users (email, name, password_hash, roles, email_verified) VALUES ($1, $2, $3, $4, $5)
           RETURNING ${USER_COLUMNS}`,
          [email, name, passwordHash, roles, options.emailVerified ?? true],
        )
        const user = toUser(firstRow(result.rows))
        await this.#audit.record(
          'user.registered',
          { userId: user.id, email, ip: options.ip, details: withActor({ roles }, options) },
          tx,
        )
        return user
      })
    } catch (err) {
      if (isUniqueViolation(err)) throw new GatehouseError('GH_EMAIL_TAKEN', undefined, { cause: err })
      throw err
    }
  }

  /**
   * Password login. Unknown email, malformed email, wrong password, disabled user and user
   * without a password all answer the same GH_INVALID_CREDENTIALS after the same argon2 work
   * (a dummy verification where there is no hash to check). A password over 128 code points
   * is GH_INVALID_CREDENTIALS too, without hashing: no stored password can be that long, and
   * the faster answer depends only on the length the caller chose, never on the account.
   *
   * The account lockout is checked before any verification (GH_RATE_LIMITED with
   * `retryAfter`), failures are counted for unknown emails as for known ones, and a success
   * clears them. The per-IP limit is not applied here: the HTTP layer calls
   * `LoginThrottle.hitIp` for login, register and OIDC alike.
   */
  async authenticate(input: { email: string; password: string; ip?: string | null }): Promise<User> {
    return (await this.authenticatePassword(input)).user
  }

  /**
   * The password step of a login (see `authenticate`). When `needsSecondFactor` says the user
   * has one, the login is not finished: the lockout is not cleared (failed second factors count
   * toward it, and a right password must not wipe them) and no success is recorded yet;
   * `pending` is then true and core/mfa/two-step-login.ts finishes it.
   */
  async authenticatePassword(
    input: { email: string; password: string; ip?: string | null },
    options: { needsSecondFactor?: (userId: string) => Promise<boolean> } = {},
  ): Promise<{ user: User; pending: boolean }> {
    let email: string | null
    try {
      email = normalizeEmail(input.email)
    } catch {
      email = null
    }
    // An email that cannot be normalised cannot have an account, but is still throttled.
    const accountKey = email ?? String(input.email).trim().toLowerCase().slice(0, 1024)
    const ip = input.ip ?? null
    await this.#throttle.checkAccount(accountKey)

    const row = email === null ? null : await this.#findByEmail(email)
    let reason: string
    let ok = false
    if (passwordLength(input.password) > MAX_PASSWORD_LENGTH) {
      reason = 'password_too_long'
    } else if (row === null || row.disabled || row.password_hash === null) {
      reason = email === null ? 'invalid_email' : row === null ? 'unknown_email' : row.disabled ? 'disabled' : 'no_password'
      await this.#hasher.verifyDummy(input.password)
    } else {
      reason = 'wrong_password'
      ok = await this.#hasher.verify(row.password_hash, input.password)
    }

    if (!ok || row === null) {
      const locked = await this.#throttle.recordFailure(accountKey)
      // Only a normalised email is recorded: the raw input may hold anything (a NUL, which
      // PostgreSQL text refuses), and it names no account anyway.
      const event = { userId: row?.id ?? null, email, ip }
      await this.#audit.record('login.failed', { ...event, details: { reason } })
      if (locked) await this.#audit.record('login.locked', event)
      throw invalidCredentials(reason)
    }

    const pending = (await options.needsSecondFactor?.(row.id)) ?? false
    if (!pending) await this.#throttle.clear(accountKey)
    // Only after the password verified: a wrong one stays the 401 that says nothing.
    if (this.#emailVerification === 'required' && !row.email_verified) {
      await this.#audit.record('login.failed', { userId: row.id, email: row.email, ip, details: { reason: 'email_unverified' } })
      throw new GatehouseError('GH_EMAIL_UNVERIFIED', 'Confirm your email address first: follow the link we sent you, or ask for a new one.')
    }
    if (row.password_hash !== null && this.#hasher.needsRehash(row.password_hash)) {
      const rehashed = await this.#hasher.hash(input.password)
      // Conditional on the old hash, so that a password changed meanwhile is not overwritten.
      await this.#db.query(
        'UPDATE users SET password_hash = $1, updated_at = now() WHERE id = $2 AND password_hash = $3',
        [rehashed, row.id, row.password_hash],
      )
    }
    if (pending) return { user: toUser(row), pending }
    await this.#audit.record('login.succeeded', { userId: row.id, email: row.email, ip, details: { amr: 'pwd' } })
    return { user: toUser(row), pending }
  }

  /**
   * Checks the signed-in user's own password (removing a factor, new recovery codes), with the
   * login lockout applied: GH_INVALID_CREDENTIALS when wrong, GH_NOT_FOUND when the user is gone.
   */
  async verifyPassword(id: string, password: string, context: AuditContext = {}): Promise<void> {
    const row = await this.#findById(id)
    if (row === null) throw new GatehouseError('GH_NOT_FOUND', 'No such user')
    await this.#verifyOwnPassword(row, password, context)
  }

  /** The user, disabled or not; null when absent (ids that are not UUIDs included). */
  async get(id: string): Promise<ManagedUser | null> {
    const row = await this.#findById(id)
    return row === null ? null : toManagedUser(row)
  }

  /** The user with this email (normalised first); null when absent or not an email. */
  async getByEmail(email: string): Promise<ManagedUser | null> {
    let normalized: string
    try {
      normalized = normalizeEmail(email)
    } catch {
      return null
    }
    const row = await this.#findByEmail(normalized)
    return row === null ? null : toManagedUser(row)
  }

  /**
   * The user if they exist and are not disabled, else null. Called on every
   * session-authenticated request, so that a disabled or deleted user is refused at once.
   */
  async isActive(id: string): Promise<User | null> {
    const row = await this.#findById(id)
    return row === null || row.disabled ? null : toUser(row)
  }

  /**
   * Users oldest first, keyset-paginated on (created_at, id). `cursor` is the opaque
   * `next_cursor` of the previous page; a malformed one is GH_VALIDATION.
   */
  async list(options: { limit: number; cursor?: string | null }): Promise<UserPage> {
    const { limit } = options
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
      throw new GatehouseError('GH_VALIDATION', `limit must be an integer from 1 to ${MAX_PAGE_SIZE}`, {
        details: { field: 'limit' },
      })
    }
    const after = options.cursor ? decodeCursor(options.cursor) : null
    const result = after
      ? await this.#db.query<UserRow>(
          `SELECT ${USER_COLUMNS} FROM users WHERE (created_at, id) > ($1::timestamptz, $2::uuid)
           ORDER BY created_at, id LIMIT $3`,
          [after.createdAt, after.id, limit + 1],
        )
      : await this.#db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users ORDER BY created_at, id LIMIT $1`, [
          limit + 1,
        ])
    const rows = result.rows.slice(0, limit)
    const last = rows.at(-1)
    return {
      items: rows.map(toManagedUser),
      next_cursor: result.rows.length > limit && last !== undefined ? encodeCursor(last) : null,
    }
  }

  async count(): Promise<number> {
    const result = await this.#db.query<{ count: number }>('SELECT count(*)::int AS count FROM users')
    return Number(result.rows[0]?.count ?? 0)
  }

  /** Sets or (with null) clears the display name. GH_NOT_FOUND when the user is absent. */
  async updateName(id: string, name: string | null, context: AuditContext = {}): Promise<User> {
    const validName = validateName(name)
    if (!UUID.test(id)) throw notFound()
    const row = await this.#db.transaction(async (tx) => {
      const updated = await this.#update(tx, 'name = $2', [id, validName])
      await this.#audit.record(
        'user.updated',
        { userId: id, email: updated.email, ip: context.ip, details: withActor({ fields: ['name'] }, context) },
        tx,
      )
      return updated
    })
    await this.#onUserChanged(id)
    return toUser(row)
  }

  /**
   * Replaces the password after verifying the current one (wrong → GH_INVALID_CREDENTIALS,
   * counted towards the account lockout like a failed login, so that a stolen session cannot
   * guess it). The new one is checked against the policy first (GH_VALIDATION). The caller
   * ends the user's other sessions.
   */
  async changePassword(id: string, current: string, next: string, context: AuditContext = {}): Promise<void> {
    const row = await this.#findById(id)
    if (row === null || row.disabled) throw notFound()
    this.#checkNewPassword(next, row.email)
    await this.#verifyOwnPassword(row, current, context)
    const passwordHash = await this.#hasher.hash(next)
    await this.#db.transaction(async (tx) => {
      await this.#update(tx, 'password_hash = $2', [id, passwordHash])
      await this.#audit.record(
        'password.changed',
        { userId: id, email: row.email, ip: context.ip, details: withActor({}, context) },
        tx,
      )
    })
  }

  /**
   * Sets a new password without the current one, for a reset link: the policy is checked
   * (GH_VALIDATION) and the password hashed before anything is written; then, in one
   * transaction, `claim` spends the link (false: it was spent or has expired meanwhile,
   * GH_TOKEN_INVALID and nothing changes), the hash is replaced, the email counts as
   * verified, and the change is audited.
   * The caller ends the sessions and clears the lockout. Resolves the user.
   */
  async resetPassword(
    id: string,
    next: string,
    claim: (tx: Queryable) => Promise<boolean>,
    context: AuditContext = {},
  ): Promise<User> {
    const row = await this.#findById(id)
    if (row === null || row.disabled) throw new GatehouseError('GH_TOKEN_INVALID')
    this.#checkNewPassword(next, row.email)
    const passwordHash = await this.#hasher.hash(next)
    const updated = await this.#db.transaction(async (tx) => {
      if (!(await claim(tx))) throw new GatehouseError('GH_TOKEN_INVALID')
      // The link came by email: following it proves the address as a verification link does.
      const changed = await this.#update(tx, 'password_hash = $2, email_verified = true', [id, passwordHash])
      await this.#audit.record('password.reset', { userId: id, email: row.email, ip: context.ip }, tx)
      return changed
    })
    await this.#throttle.clear(row.email)
    await this.#onUserChanged(id)
    return toUser(updated)
  }

  /**
   * Marks the email verified once `claim` (in the same transaction) spends the link; false
   * when it was spent or has expired meanwhile. Resolves whether it changed anything.
   */
  async markEmailVerified(id: string, claim: (tx: Queryable) => Promise<boolean>, context: AuditContext = {}): Promise<boolean> {
    if (!UUID.test(id)) return false
    const verified = await this.#db.transaction(async (tx) => {
      if (!(await claim(tx))) return false
      const updated = await this.#update(tx, 'email_verified = true', [id])
      await this.#audit.record('email.verified', { userId: id, email: updated.email, ip: context.ip }, tx)
      return true
    })
    if (verified) await this.#onUserChanged(id)
    return verified
  }

  /**
   * Sets a new password without the current one (an operator's reset from the CLI), checked
   * against the policy (GH_VALIDATION), and clears the account's lockout. GH_NOT_FOUND when the
   * user is absent. The caller ends the user's sessions.
   */
  async setPassword(id: string, password: string, context: AuditContext = {}): Promise<void> {
    const row = await this.#findById(id)
    if (row === null) throw notFound()
    this.#checkNewPassword(password, row.email)
    const passwordHash = await this.#hasher.hash(password)
    await this.#db.transaction(async (tx) => {
      await this.#update(tx, 'password_hash = $2', [id, passwordHash])
      await this.#audit.record(
        'password.reset',
        { userId: id, email: row.email, ip: context.ip, details: withActor({}, context) },
        tx,
      )
    })
    await this.#throttle.clear(row.email)
  }

  /**
   * Replaces the user's roles; each must exist in the role map (else GH_VALIDATION). With
   * `mayGrant`, a role the user does not hold yet and that it refuses is GH_FORBIDDEN, decided
   * on the locked row so that no concurrent change slips between the check and the update.
   * The audit event always names the actor (`actor_id`, null for the operator's CLI).
   */
  async setRoles(
    id: string,
    roles: readonly string[],
    context: AuditContext & { mayGrant?: (role: string) => boolean } = {},
  ): Promise<ManagedUser> {
    const validRoles = this.#validateRoles(roles)
    if (!UUID.test(id)) throw notFound()
    const row = await this.#db.transaction(async (tx) => {
      const before = await this.#findById(id, tx, true)
      if (before === null) throw notFound()
      const refused = validRoles.filter((role) => !before.roles.includes(role) && context.mayGrant?.(role) === false)
      if (refused.length > 0) {
        throw new GatehouseError('GH_FORBIDDEN', `You may grant only roles whose permissions you hold yourself, not: ${refused.join(', ')}`, {
          details: { reason: 'role_not_grantable', roles: refused },
        })
      }
      const updated = await this.#update(tx, 'roles = $2', [id, validRoles])
      await this.#audit.record(
        'user.roles_changed',
        {
          userId: id,
          email: updated.email,
          ip: context.ip,
          details: { from: before.roles, to: validRoles, actor_id: context.actorId ?? null },
        },
        tx,
      )
      return updated
    })
    await this.#onUserChanged(id)
    return toManagedUser(row)
  }

  /** Disables or re-enables the user (audited only when it changes). The caller ends a disabled user's sessions. */
  async setDisabled(id: string, disabled: boolean, context: AuditContext = {}): Promise<ManagedUser> {
    if (!UUID.test(id)) throw notFound()
    const row = await this.#db.transaction(async (tx) => {
      const before = await this.#findById(id, tx, true)
      if (before === null) throw notFound()
      if (before.disabled === disabled) return before
      const updated = await this.#update(tx, 'disabled = $2', [id, disabled])
      await this.#audit.record(
        disabled ? 'user.disabled' : 'user.enabled',
        { userId: id, email: updated.email, ip: context.ip, details: withActor({}, context) },
        tx,
      )
      return updated
    })
    await this.#onUserChanged(id)
    return toManagedUser(row)
  }

  /**
   * Deletes the user and (by cascade) their PATs. With `password`, it must verify first (else
   * GH_INVALID_CREDENTIALS, counted towards the lockout); admins delete without one. The
   * caller ends the user's sessions.
   */
  async delete(id: string, options: { password?: string } & AuditContext = {}): Promise<void> {
    const row = await this.#findById(id)
    if (row === null) throw notFound()
    if (options.password !== undefined) await this.#verifyOwnPassword(row, options.password, options)
    await this.#db.transaction(async (tx) => {
      const result = await tx.query('DELETE FROM users WHERE id = $1', [id])
      if (result.rowCount === 0) throw notFound()
      await this.#audit.record(
        'user.deleted',
        { userId: id, email: row.email, ip: options.ip, details: withActor({}, options) },
        tx,
      )
    })
    await this.#onUserChanged(id)
  }

  #checkNewPassword(password: string, email: string): void {
    if (typeof password !== 'string') {
      throw new GatehouseError('GH_VALIDATION', 'The password must be a string', { details: { field: 'password' } })
    }
    const problems = checkPassword(password, this.#policy, { email })
    if (problems.length > 0) {
      throw new GatehouseError('GH_VALIDATION', `The password ${problems.join('; ')}`, {
        details: { field: 'password', problems },
      })
    }
  }

  #validateRoles(roles: readonly string[]): string[] {
    const unique = [...new Set(roles)]
    const unknown = unique.filter((role) => !Object.hasOwn(this.#roles, role))
    if (unknown.length > 0) {
      throw new GatehouseError('GH_VALIDATION', `Unknown role: ${unknown.join(', ')}`, {
        details: { field: 'roles', unknown },
      })
    }
    return unique
  }

  /** Verifies an authenticated user's own password, with the login lockout applied. */
  async #verifyOwnPassword(row: UserRow, password: string, context: AuditContext): Promise<void> {
    await this.#throttle.checkAccount(row.email)
    const ok =
      row.password_hash === null
        ? await this.#hasher.verifyDummy(password)
        : await this.#hasher.verify(row.password_hash, password)
    if (!ok) {
      await this.#throttle.recordFailure(row.email)
      await this.#audit.record('login.failed', {
        userId: row.id,
        email: row.email,
        ip: context.ip,
        details: { reason: 'wrong_current_password' },
      })
      throw invalidCredentials()
    }
  }

  async #findById(id: string, q: Queryable = this.#db, forUpdate = false): Promise<UserRow | null> {
    if (typeof id !== 'string' || !UUID.test(id)) return null
    const result = await q.query<UserRow>(
      `SELECT ${USER_COLUMNS} FROM users WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`,
      [id],
    )
    return result.rows[0] ?? null
  }

  async #findByEmail(email: string): Promise<UserRow | null> {
    const result = await this.#db.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users WHERE email = $1`, [email])
    return result.rows[0] ?? null
  }

  /** Applies `assignment` (with `$1` the id) and returns the row; GH_NOT_FOUND when it is gone. */
  async #update(tx: Queryable, assignment: string, params: unknown[]): Promise<UserRow> {
    const result = await tx.query<UserRow>(
      `UPDATE users SET ${assignment}, updated_at = now() WHERE id = $1 RETURNING ${USER_COLUMNS}`,
      params,
    )
    return firstRow(result.rows)
  }
}

function firstRow(rows: UserRow[]): UserRow {
  const row = rows[0]
  if (row === undefined) throw notFound()
  return row
}

function withActor(details: Record<string, unknown>, context: AuditContext): Record<string, unknown> {
  return context.actorId ? { ...details, actor_id: context.actorId } : details
}
