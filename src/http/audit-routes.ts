/**
 * The audit trail for administrators (SPEC §5): `GET /auth/admin/audit`, newest first,
 * filtered by user (id or email) and event type, one keyset page at a time.
 */
import type { FastifyInstance } from 'fastify'
import type { AuditFilter, AuditLog } from '../core/audit.js'
import { normalizeEmail } from '../core/email.js'
import { GatehouseError } from '../errors.js'
import { requireManager } from './admin-routes.js'
import * as schemas from './schemas.js'

export interface AuditRoutesOptions {
  audit: AuditLog
}

const DEFAULT_PAGE = 50

interface AuditQuery {
  user?: string
  type?: string
  cursor?: string
  limit?: string
}

export async function auditRoutes(app: FastifyInstance, { audit }: AuditRoutesOptions): Promise<void> {
  app.get<{ Querystring: AuditQuery }>(
    '/auth/admin/audit',
    {
      config: { access: 'admin' },
      schema: { querystring: schemas.auditQuery, response: { 200: schemas.auditPage, ...schemas.errorResponses } },
    },
    async (request) => {
      requireManager(request)
      const { user, type, cursor, limit } = request.query
      return audit.page({
        ...userFilter(user),
        ...(type === undefined ? {} : { type }),
        limit: limit === undefined ? DEFAULT_PAGE : Number(limit),
        cursor: cursor ?? null,
      })
    },
  )
}

/** `?user=` is a user id, or an email (events of an address that has no account included). */
function userFilter(user: string | undefined): AuditFilter {
  if (user === undefined) return {}
  if (!user.includes('@')) return { userId: user }
  try {
    return { email: normalizeEmail(user) }
  } catch (err) {
    throw new GatehouseError('GH_VALIDATION', 'user must be a user id or an email', { details: { field: 'user' }, cause: err })
  }
}
