/**
 * Which local user an OpenID Connect sign-in is, over the `user_identities` table: a known
 * provider identity (issuer, `sub`), a first sign-in linked to the local user with the same
 * verified email (only when the provider allows it), or a new password-less user. Every
 * refusal is GH_OIDC_REFUSED with a `reason` and a message that says why; every outcome is
 * audited.
 */
import { GatehouseError } from '../errors.js'
import { isUniqueViolation, type Database, type Queryable } from '../storage/database.js'
import type { AuditLog } from './audit.js'
import { normalizeEmail } from './email.js'
import { groupsOf, holdsAllowedGroup, rolesFor, sameRoles, type RoleMapping } from './provider-roles.js'
import { MAX_NAME_LENGTH, NAME_FORBIDDEN, toUser, type User } from './users.js'

/** The parts of an `auth.oidc` entry that decide who may sign in, and with which roles. */
export interface OidcAccountPolicy extends RoleMapping {
  /** The provider's name in gateway.yml, for messages and the audit trail. */
  name: string
  issuer: string
  allowed_email_domains: readonly string[] | null
  create_users: boolean
  link_existing_users: boolean
  trust_unverified_email: boolean
  /** Sign-in needs one of these groups (read at `roles_claim`); null: any. */
  allowed_groups: readonly string[] | null
}

/** The claims of a validated ID token (completed from userinfo when it lacks the email). */
export interface OidcClaims {
  sub: string
  email?: unknown
  email_verified?: unknown
  name?: unknown
  /** Every claim, for `roles_claim` (a dotted path may reach into nested claims). */
  all?: Readonly<Record<string, unknown>>
}

export type OidcRefusal =
  | 'invalid_subject'
  | 'email_missing'
  | 'email_invalid'
  | 'email_unverified'
  | 'domain_not_allowed'
  | 'user_disabled'
  | 'link_disabled'
  | 'link_unverified'
  | 'already_linked'
  | 'no_account'
  | 'group_not_allowed'

/** How the sign-in found its user. */
export type OidcOutcome = 'existing' | 'linked' | 'created'

export interface OidcSignIn {
  user: User
  outcome: OidcOutcome
}

export interface OidcAccountsOptions {
  db: Database
  audit: AuditLog
  /** `default_roles`, given to users created by a first sign-in (validated with the config). */
  defaultRoles: readonly string[]
  /** Told after a sign-in changed a user's roles, so that every replica's caches drop the user. */
  onUserChanged?: (userId: string) => void | Promise<void>
}

/** Longest `sub` kept: OpenID Connect Core §2 caps it at 255 ASCII characters. */
export const MAX_SUBJECT_LENGTH = 255

const USER_COLUMNS = `u.id::text AS id, u.email, u.name, u.roles, u.disabled, u.email_verified,
  to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at`

interface UserRow {
  id: string
  email: string
  name: string | null
  roles: string[]
  disabled: boolean
  email_verified: boolean
  created_at: string
}

/** users.ts's rule for names, to replace every forbidden character rather than refuse. */
const NAME_FORBIDDEN_ALL = new RegExp(NAME_FORBIDDEN.source, 'gu')

/**
 * `email_verified` as providers send it: a boolean, or (some, e.g. older Cognito pools) the
 * string "true"/"false". Anything else counts as absent.
 */
export function emailVerifiedOf(value: unknown): boolean | undefined {
  if (value === true || value === 'true') return true
  if (value === false || value === 'false') return false
  return undefined
}

/** A display name from the provider's `name` claim: cleaned and shortened rather than refused. */
export function displayNameOf(value: unknown): string | null {
  if (typeof value !== 'string') return null
  const cleaned = value.slice(0, MAX_NAME_LENGTH * 4).replace(NAME_FORBIDDEN_ALL, ' ').trim().normalize('NFC')
  const chars = [...cleaned].slice(0, MAX_NAME_LENGTH)
  const name = chars.join('').trim()
  return name === '' ? null : name
}

export class OidcAccounts {
  readonly #db: Database
  readonly #audit: AuditLog
  readonly #defaultRoles: string[]
  readonly #onUserChanged: (userId: string) => void | Promise<void>

  constructor(options: OidcAccountsOptions) {
    this.#db = options.db
    this.#audit = options.audit
    this.#defaultRoles = [...new Set(options.defaultRoles)]
    this.#onUserChanged = options.onUserChanged ?? (() => undefined)
  }

  /**
   * Sets the user's roles to default_roles + the roles `role_map` gives the groups in
   * `claims` (nothing when the provider has no `roles_claim`), auditing a change as
   * `user.roles_changed`. Resolves the roles the user has now, or null when the user is gone.
   * Used at sign-in and when a session re-checks the user with the provider.
   */
  async applyRoles(policy: OidcAccountPolicy, userId: string, claims: OidcClaims, context: { ip?: string | null } = {}): Promise<string[] | null> {
    const roles = await this.#db.transaction((tx) => this.#applyRolesIn(tx, policy, userId, claims, context.ip ?? null))
    if (roles?.changed) await this.#onUserChanged(userId)
    return roles?.roles ?? null
  }

  /**
   * The local user this provider identity signs in as. Checked in this order, so that a
   * policy refusal never depends on whether an account exists: the subject, the email
   * (present, well-formed, verified), the allowed domains; then the identity (issuer, sub)
   * is looked up; a first sign-in links to the local user with the same email only when
   * `link_existing_users` is true and the provider said `email_verified: true` explicitly
   * (never on `trust_unverified_email`: that would hand an existing account to whoever
   * controls an unverified address), else creates a user when `create_users` is true.
   * A disabled user is refused. Resolves after the sign-in is audited.
   */
  async signIn(policy: OidcAccountPolicy, claims: OidcClaims, context: { ip?: string | null } = {}): Promise<OidcSignIn> {
    const ip = context.ip ?? null
    const base = { provider: policy.name, issuer: policy.issuer }
    let email: string | null = null
    try {
      const sub = claims.sub
      if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT_LENGTH) {
        throw refused('invalid_subject', `${policy.name} sent an identity this gateway cannot use.`)
      }
      email = this.#emailOf(policy, claims)
      this.#checkEmail(policy, claims, email)
      this.#checkGroups(policy, claims)
      const verified = emailVerifiedOf(claims.email_verified) === true
      const resolved = await this.#resolve(policy, sub, email, verified, displayNameOf(claims.name), ip)
      const result = await this.#withMappedRoles(policy, resolved, claims, ip)
      await this.#audit.record('login.succeeded', {
        userId: result.user.id,
        email: result.user.email,
        ip,
        details: { ...base, amr: 'oidc', subject: sub, outcome: result.outcome },
      })
      return result
    } catch (err) {
      if (!(err instanceof Refusal)) throw err
      await this.#audit.record('login.failed', {
        userId: err.userId,
        email,
        ip,
        details: { ...base, amr: 'oidc', reason: err.reason, subject: typeof claims.sub === 'string' ? claims.sub.slice(0, MAX_SUBJECT_LENGTH) : null },
      })
      throw new GatehouseError('GH_OIDC_REFUSED', err.message, { details: { reason: err.reason } })
    }
  }

  /** The identities linked to a user, for the admin view and tests. */
  async identitiesOf(userId: string): Promise<{ issuer: string; subject: string; email: string | null }[]> {
    const result = await this.#db.query<{ issuer: string; subject: string; email: string | null }>(
      'SELECT issuer, subject, email FROM user_identities WHERE user_id = $1 ORDER BY created_at, issuer',
      [userId],
    )
    return result.rows
  }

  #checkGroups(policy: OidcAccountPolicy, claims: OidcClaims): void {
    const groups = groupsOf(claims.all ?? {}, policy.roles_claim)
    if (!holdsAllowedGroup(groups, policy.allowed_groups)) {
      const needed = (policy.allowed_groups ?? []).join(', ')
      throw refused('group_not_allowed', `Signing in here with ${policy.name} needs membership of one of these groups: ${needed}. Ask your administrator for access.`)
    }
  }

  async #withMappedRoles(policy: OidcAccountPolicy, signIn: OidcSignIn, claims: OidcClaims, ip: string | null): Promise<OidcSignIn> {
    if (policy.roles_claim === null) return signIn
    const roles = await this.applyRoles(policy, signIn.user.id, claims, { ip })
    return roles === null ? signIn : { ...signIn, user: { ...signIn.user, roles } }
  }

  async #applyRolesIn(
    tx: Queryable,
    policy: OidcAccountPolicy,
    userId: string,
    claims: OidcClaims,
    ip: string | null,
  ): Promise<{ roles: string[]; changed: boolean } | null> {
    const current = await tx.query<{ email: string; roles: string[] }>('SELECT email, roles FROM users WHERE id = $1 FOR UPDATE', [userId])
    const row = current.rows[0]
    if (row === undefined) return null
    if (policy.roles_claim === null) return { roles: row.roles, changed: false }
    const groups = groupsOf(claims.all ?? {}, policy.roles_claim)
    const roles = rolesFor(this.#defaultRoles, groups, policy.role_map)
    if (sameRoles(roles, row.roles)) return { roles: row.roles, changed: false }
    await tx.query('UPDATE users SET roles = $2, updated_at = now() WHERE id = $1', [userId, roles])
    await this.#audit.record(
      'user.roles_changed',
      { userId, email: row.email, ip, details: { from: row.roles, to: roles, via: 'oidc', provider: policy.name, groups } },
      tx,
    )
    return { roles, changed: true }
  }

  #emailOf(policy: OidcAccountPolicy, claims: OidcClaims): string {
    if (typeof claims.email !== 'string' || claims.email.trim() === '') {
      throw refused('email_missing', `${policy.name} did not share an email address; allow the email scope and try again.`)
    }
    try {
      return normalizeEmail(claims.email)
    } catch {
      throw refused('email_invalid', `${policy.name} sent an email address this gateway cannot use.`)
    }
  }

  #checkEmail(policy: OidcAccountPolicy, claims: OidcClaims, email: string): void {
    const verified = emailVerifiedOf(claims.email_verified)
    if (verified === false || (verified === undefined && !policy.trust_unverified_email)) {
      throw refused('email_unverified', `${policy.name} has not verified the email address ${email}; verify it there, then try again.`)
    }
    const domain = email.slice(email.lastIndexOf('@') + 1)
    if (policy.allowed_email_domains !== null && !policy.allowed_email_domains.includes(domain)) {
      throw refused('domain_not_allowed', `Addresses at ${domain} may not sign in here with ${policy.name}.`)
    }
  }

  async #resolve(
    policy: OidcAccountPolicy,
    sub: string,
    email: string,
    verified: boolean,
    name: string | null,
    ip: string | null,
  ): Promise<OidcSignIn> {
    // Two attempts: a concurrent first sign-in of the same identity may win the insert, in
    // which case the second attempt finds the identity it created.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#db.transaction((tx) => this.#resolveIn(tx, policy, sub, email, verified, name, ip))
      } catch (err) {
        if (attempt === 0 && isUniqueViolation(err)) continue
        throw err
      }
    }
  }

  async #resolveIn(
    tx: Queryable,
    policy: OidcAccountPolicy,
    sub: string,
    email: string,
    verified: boolean,
    name: string | null,
    ip: string | null,
  ): Promise<OidcSignIn> {
    const known = await tx.query<UserRow>(
      `SELECT ${USER_COLUMNS} FROM user_identities i JOIN users u ON u.id = i.user_id
        WHERE i.issuer = $1 AND i.subject = $2 FOR UPDATE OF i`,
      [policy.issuer, sub],
    )
    const knownUser = known.rows[0]
    if (knownUser !== undefined) {
      if (knownUser.disabled) throw refused('user_disabled', 'This account is disabled.', knownUser.id)
      await tx.query(
        'UPDATE user_identities SET email = $3, last_login_at = now() WHERE issuer = $1 AND subject = $2',
        [policy.issuer, sub, email],
      )
      const user = verified && email === knownUser.email ? await this.#markVerified(tx, knownUser) : knownUser
      return { user: toUser(user), outcome: 'existing' }
    }

    const local = await tx.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users u WHERE u.email = $1 FOR UPDATE`, [email])
    const localUser = local.rows[0]
    if (localUser !== undefined) {
      if (!policy.link_existing_users) {
        throw refused(
          'link_disabled',
          `An account for ${email} already exists here, and ${policy.name} is not allowed to sign in to existing accounts. Sign in with your password instead.`,
          localUser.id,
        )
      }
      if (!verified) {
        throw refused('link_unverified', `${policy.name} did not confirm that ${email} is verified, which linking to an existing account requires.`, localUser.id)
      }
      if (localUser.disabled) throw refused('user_disabled', 'This account is disabled.', localUser.id)
      const other = await tx.query('SELECT 1 FROM user_identities WHERE user_id = $1 AND issuer = $2', [localUser.id, policy.issuer])
      if (other.rows.length > 0) {
        throw refused('already_linked', `The account for ${email} is already linked to another ${policy.name} identity.`, localUser.id)
      }
      await this.#link(tx, policy, sub, localUser.id, email, ip)
      return { user: toUser(await this.#markVerified(tx, localUser)), outcome: 'linked' }
    }

    if (!policy.create_users) {
      throw refused('no_account', `There is no account for ${email} here, and signing in with ${policy.name} does not create one.`)
    }
    const created = await tx.query<UserRow>(
      `INSERT INTO users AS u (email, name, password_hash, roles, email_verified) VALUES ($1, $2, NULL, $3, $4)
       RETURNING ${USER_COLUMNS}`,
      [email, name, this.#defaultRoles, verified],
    )
    const row = created.rows[0]
    if (row === undefined) throw new Error('INSERT … RETURNING gave no row')
    await this.#audit.record(
      'user.registered',
      { userId: row.id, email, ip, details: { roles: this.#defaultRoles, via: 'oidc', provider: policy.name } },
      tx,
    )
    await this.#link(tx, policy, sub, row.id, email, ip)
    return { user: toUser(row), outcome: 'created' }
  }

  /** The provider vouched for the address: the user counts as verified (SPEC §5). */
  async #markVerified(tx: Queryable, user: UserRow): Promise<UserRow> {
    if (user.email_verified) return user
    await tx.query('UPDATE users SET email_verified = true, updated_at = now() WHERE id = $1', [user.id])
    return { ...user, email_verified: true }
  }

  async #link(tx: Queryable, policy: OidcAccountPolicy, sub: string, userId: string, email: string, ip: string | null): Promise<void> {
    await tx.query(
      `INSERT INTO user_identities (issuer, subject, user_id, email, last_login_at) VALUES ($1, $2, $3, $4, now())`,
      [policy.issuer, sub, userId, email],
    )
    await this.#audit.record(
      'identity.linked',
      { userId, email, ip, details: { provider: policy.name, issuer: policy.issuer, subject: sub } },
      tx,
    )
  }
}

/** A refusal inside the service, with the user it concerns (for the audit trail only). */
class Refusal extends Error {
  constructor(
    readonly reason: OidcRefusal,
    message: string,
    readonly userId: string | null,
  ) {
    super(message)
  }
}

function refused(reason: OidcRefusal, message: string, userId: string | null = null): Refusal {
  return new Refusal(reason, message, userId)
}
