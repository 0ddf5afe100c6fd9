/**
 * The signed-in user's own secrets for routes with `user_secret` (SPEC §5): list (names and
 * times, never values), set or replace, remove. Session authentication only, with the CSRF
 * origin check of every cookie-authenticated write (access.ts): a PAT never changes its user's
 * secrets (SPEC §3), and a PAT that could read them would make itself a key to every route.
 */
import type { FastifyInstance } from 'fastify'
import type { UserSecrets } from '../core/user-secrets/index.js'
import { GatehouseError } from '../errors.js'
import { identityOf } from './access.js'
import * as schemas from './schemas.js'

const routeParams = {
  type: 'object',
  required: ['route'],
  properties: { route: { type: 'string', minLength: 1, maxLength: 200, description: 'The route name, as in gateway.yml' } },
  additionalProperties: false,
} as const

const secretBody = {
  type: 'object',
  required: ['value'],
  properties: {
    value: { type: 'string', description: 'The secret: printable ASCII, at most 4096 bytes, no surrounding spaces; stored encrypted, never shown again' },
  },
  additionalProperties: false,
} as const

const secretList = {
  type: 'object',
  required: ['items', 'next_cursor'],
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['route', 'header', 'state', 'created_at', 'updated_at'],
        properties: {
          route: { type: 'string' },
          header: { type: ['string', 'null'], description: 'the header the upstream receives it in; null when the route no longer takes one' },
          state: { type: 'string', enum: ['active', 'dormant'], description: 'dormant: not injected until set again (the route is gone or its upstream changed)' },
          created_at: { type: 'string', format: 'date-time' },
          updated_at: { type: 'string', format: 'date-time' },
        },
        additionalProperties: false,
      },
    },
    next_cursor: { type: ['string', 'null'] },
  },
  additionalProperties: false,
} as const

export async function secretRoutes(app: FastifyInstance, { secrets }: { secrets: UserSecrets }): Promise<void> {
  app.get(
    '/auth/me/secrets',
    {
      config: { access: 'session' },
      schema: { summary: 'The user\'s secrets for routes with user_secret: names and times, never values', response: { 200: secretList, ...schemas.errorResponses } },
    },
    async (request) => ({ items: await secrets.list(identityOf(request).user.id), next_cursor: null }),
  )

  app.put<{ Params: { route: string }; Body: { value: string } }>(
    '/auth/me/secrets/:route',
    {
      config: { access: 'session' },
      schema: {
        summary: 'Set or replace the user\'s secret for a route with user_secret; stored encrypted, injected into that route\'s upstream requests',
        params: routeParams,
        body: secretBody,
        response: { 204: schemas.noContent, ...schemas.errorResponses },
      },
    },
    async (request, reply) => {
      await secrets.set(identityOf(request), request.params.route, request.body.value, { ip: request.ip })
      return reply.code(204).send()
    },
  )

  app.delete<{ Params: { route: string } }>(
    '/auth/me/secrets/:route',
    {
      config: { access: 'session' },
      schema: { summary: 'Remove the user\'s secret for a route', params: routeParams, response: { 204: schemas.noContent, ...schemas.errorResponses } },
    },
    async (request, reply) => {
      const removed = await secrets.remove(identityOf(request).user.id, request.params.route, { ip: request.ip })
      if (!removed) throw new GatehouseError('GH_NOT_FOUND', `You have no secret for route ${request.params.route}`)
      return reply.code(204).send()
    },
  )
}
