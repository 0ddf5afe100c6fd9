/**
 * Users written straight into the database, without a service, a password hash or an audit
 * event: the set-up of tests about what is built on users (tokens, PATs, OIDC links).
 */
import { permissionsFor } from '../../src/core/permissions.js'
import type { Database } from '../../src/storage/database.js'

export interface InsertUserOptions {
  roles?: readonly string[]
  disabled?: boolean
  /** Default null: a user who cannot sign in with a password. */
  passwordHash?: string | null
}

/** Inserts a user and returns its id. */
export async function insertUser(db: Pick<Database, 'query'>, email: string, options: InsertUserOptions = {}): Promise<string> {
  const { rows } = await db.query<{ id: string }>(
    'INSERT INTO users (email, roles, disabled, password_hash) VALUES ($1, $2, $3, $4) RETURNING id::text AS id',
    [email, [...(options.roles ?? [])], options.disabled ?? false, options.passwordHash ?? null],
  )
  const id = rows[0]?.id
  if (id === undefined) throw new Error('INSERT … RETURNING returned no row')
  return id
}

/** A user with `roles`, as a PAT owner: its id and the permissions its roles grant under `roleMap`. */
export async function insertPatOwner(
  db: Pick<Database, 'query'>,
  email: string,
  roles: readonly string[],
  roleMap: Readonly<Record<string, readonly string[]>>,
): Promise<{ id: string; permissions: string[] }> {
  return { id: await insertUser(db, email, { roles }), permissions: permissionsFor(roles, roleMap) }
}
