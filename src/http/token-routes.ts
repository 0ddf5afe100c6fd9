/**
 * Personal access tokens of the signed-in user (SPEC §5): create (shown once), list
 * (masked), revoke. Session authentication only: a PAT cannot mint or manage PATs.
 */
import type { FastifyInstance } from 'fastify'
import type { PatCreateInput, PatService } from '../core/pats.js'
import { GatehouseError } from '../errors.js'
import { identityOf } from './access.js'
import * as schemas from './schemas.js'

export async function tokenRoutes(app: FastifyInstance, { pats }: { pats: PatService }): Promise<void> {

  app.post<{ Body: PatCreateInput }>(
    '/auth/tokens',
    {
      config: { access: 'session' },
      schema: { body: schemas.createTokenBody, response: { 201: schemas.createdToken, ...schemas.errorResponses } },
    },
    async (request, reply) => {
      const identity = identityOf(request)
      const created = await pats.create({ id: identity.user.id, permissions: identity.permissions, secondFactor: identity.secondFactor }, request.body, {
        ip: request.ip,
      })
      return reply.code(201).send({ ...created.pat, token: created.token, mask: created.pat.token })
    },
  )

  app.get('/auth/tokens', { config: { access: 'session' }, schema: { response: { 200: schemas.tokenList, ...schemas.errorResponses } } }, async (request) => ({
    items: await pats.list(identityOf(request).user.id),
    next_cursor: null,
  }))

  app.delete<{ Params: { id: string } }>(
    '/auth/tokens/:id',
    {
      config: { access: 'session' },
      schema: { params: schemas.idParams, response: { 204: schemas.noContent, ...schemas.errorResponses } },
    },
    async (request, reply) => {
      const identity = identityOf(request)
      const revoked = await pats.revoke(identity.user.id, request.params.id, { ip: request.ip })
      if (!revoked) throw new GatehouseError('GH_NOT_FOUND', 'No such token')
      return reply.code(204).send()
    },
  )
}
