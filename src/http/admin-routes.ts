/**
 * The admin API (SPEC §5), for holders of `users:manage`: list, read, change roles or
 * disable, delete users, and remove their second factors. Disabling or deleting ends the user's sessions and drops
 * their PATs from every replica's cache at once.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { hasPermission, MANAGE_USERS, mayGrantRole } from '../core/permissions.js'
import { GatehouseError } from '../errors.js'
import type { SecondFactors } from '../core/mfa/index.js'
import type { SessionService } from '../core/sessions.js'
import type { UserService } from '../core/users.js'
import { identityOf } from './access.js'
import * as schemas from './schemas.js'

export { MANAGE_USERS }

/**
 * The caller's identity when it holds `users:manage`, else GH_FORBIDDEN. For a PAT (see the
 * `admin` access) its `permissions` are the token's list ∩ its owner's current permissions:
 * what the actor may do and grant.
 */
export function requireManager(request: FastifyRequest) {
  const identity = identityOf(request)
  if (!hasPermission(identity.permissions, MANAGE_USERS)) {
    throw new GatehouseError('GH_FORBIDDEN', `Missing permission: ${MANAGE_USERS}`, {
      details: { missing_permission: MANAGE_USERS, missing_permissions: [MANAGE_USERS] },
    })
  }
  return identity
}

/** SPEC §5: nobody changes their own roles, disables or deletes themselves through the admin API. */
function notOnYourself(what: string): GatehouseError {
  return new GatehouseError('GH_FORBIDDEN', `You cannot ${what} through the admin API`, { details: { reason: 'self_change' } })
}

export interface AdminRoutesOptions {
  users: UserService
  sessions: SessionService
  /** The configured roles: what each grants decides which roles an admin may hand out. */
  roles: Readonly<Record<string, readonly string[]>>
  /** For DELETE /auth/admin/users/:id/mfa. */
  factors: Pick<SecondFactors, 'reset'>
}

export async function adminRoutes(app: FastifyInstance, { users, sessions, roles, factors }: AdminRoutesOptions): Promise<void> {

  app.get<{ Querystring: { limit?: string; cursor?: string } }>(
    '/auth/admin/users',
    {
      config: { access: 'admin' },
      schema: { querystring: schemas.pageQuery, response: { 200: schemas.adminUserPage, ...schemas.errorResponses } },
    },
    async (request) => {
      requireManager(request)
      const limit = request.query.limit === undefined ? 50 : Number(request.query.limit)
      return users.list({ limit, cursor: request.query.cursor ?? null })
    },
  )

  app.get<{ Params: { id: string } }>(
    '/auth/admin/users/:id',
    {
      config: { access: 'admin' },
      schema: { params: schemas.idParams, response: { 200: { $ref: 'AdminUser#' }, ...schemas.errorResponses } },
    },
    async (request) => {
      requireManager(request)
      const user = await users.get(request.params.id)
      if (user === null) throw new GatehouseError('GH_NOT_FOUND', 'No such user')
      return user
    },
  )

  app.patch<{ Params: { id: string }; Body: { roles?: string[]; disabled?: boolean } }>(
    '/auth/admin/users/:id',
    {
      config: { access: 'admin' },
      schema: {
        params: schemas.idParams,
        body: schemas.adminPatchBody,
        response: { 200: { $ref: 'AdminUser#' }, ...schemas.errorResponses },
      },
    },
    async (request) => {
      const actor = requireManager(request)
      const { id } = request.params
      if (id.toLowerCase() === actor.user.id) throw notOnYourself('change your own roles or disable yourself')
      const context = { actorId: actor.user.id, ip: request.ip }
      let user = await users.get(id)
      if (user === null) throw new GatehouseError('GH_NOT_FOUND', 'No such user')
      if (request.body.roles !== undefined) {
        const mayGrant = (role: string) => mayGrantRole(actor.permissions, role, roles)
        user = await users.setRoles(id, request.body.roles, { ...context, mayGrant })
      }
      if (request.body.disabled !== undefined) user = await users.setDisabled(id, request.body.disabled, context)
      if (request.body.disabled === true) await sessions.revokeAll(id)
      return user
    },
  )

  app.delete<{ Params: { id: string } }>(
    '/auth/admin/users/:id',
    {
      config: { access: 'admin' },
      schema: { params: schemas.idParams, response: { 204: schemas.noContent, ...schemas.errorResponses } },
    },
    async (request, reply) => {
      const actor = requireManager(request)
      const { id } = request.params
      if (id.toLowerCase() === actor.user.id) throw notOnYourself('delete yourself')
      await users.delete(id, { actorId: actor.user.id, ip: request.ip })
      await sessions.revokeAll(id)
      return reply.code(204).send()
    },
  )

  // A user who lost every factor: an admin removes them (TOTP, recovery codes, passkeys), which
  // ends the user's sessions like any factor change. Not on oneself: a stolen admin session must
  // not be able to strip its own second factor.
  app.delete<{ Params: { id: string } }>(
    '/auth/admin/users/:id/mfa',
    {
      config: { access: 'admin' },
      schema: { params: schemas.idParams, response: { 204: schemas.noContent, ...schemas.errorResponses } },
    },
    async (request, reply) => {
      const actor = requireManager(request)
      const { id } = request.params
      if (id.toLowerCase() === actor.user.id) throw notOnYourself('reset your own second factors')
      const user = await users.get(id)
      if (user === null) throw new GatehouseError('GH_NOT_FOUND', 'No such user')
      await factors.reset(user, { actorId: actor.user.id, ip: request.ip })
      await sessions.revokeAll(id)
      return reply.code(204).send()
    },
  )
}
