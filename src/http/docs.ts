/**
 * The OpenAPI document of the gateway's own endpoints at `/docs/json` (and `/docs/yaml`), and
 * Swagger UI at `/docs` (SPEC §5). The document is built from the routes' own schemas, the
 * ones fastify validates requests and serialises answers with, so it cannot drift from what
 * the gateway does. Registered before every route (it collects them as they are added), and
 * wrapped with fastify-plugin so that it sees the routes of the whole application.
 *
 * Only the gateway's endpoints are documented: the proxy's catch-all (`/` and `/*`) and the
 * UI's own routes are left out. Tags, summaries and the security of each operation are added
 * here, from the route's URL and its `config.access` (see access.ts).
 */
import { STATUS_CODES } from 'node:http'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { version } from '../version.js'
import type { Access } from './access.js'
import { sessionCookieName } from './credentials.js'
import { errorResponses, jwksResponse } from './schemas.js'

export const DOCS_PREFIX = '/docs'
const JWKS_PATH = '/.well-known/jwks.json'

export interface DocsOptions {
  /** The gateway's public_url: it decides the session cookie's name. */
  publicUrl: string
  cookieDomain?: string | null
}

/** What each endpoint is for, shown as the operation's summary. */
const SUMMARIES: Record<string, string> = {
  'GET /auth/login': 'The HTML sign-in form (keeps `next`)',
  'GET /auth/assets/login.css': 'The sign-in page stylesheet',
  'POST /auth/login': 'Sign in: JSON answers the session token; a form post answers 303 to `next`',
  'POST /auth/register': 'Create an account (403 when registration is closed, 409 when the email is taken)',
  'POST /auth/logout': 'End this session and clear the cookie',
  'POST /auth/refresh': 'Spend a refresh token: the next session token and refresh token (sessions.refresh_tokens)',
  'POST /auth/logout-all': "End all of the user's sessions",
  'GET /auth/me': 'The signed-in user, permissions and how they authenticated',
  'PATCH /auth/me': 'Change the display name',
  'DELETE /auth/me': 'Delete the account, its tokens and sessions',
  'POST /auth/password': "Change the password; ends the user's other sessions",
  'GET /auth/sessions': "The user's active sessions",
  'DELETE /auth/sessions/{id}': 'End one session',
  'POST /auth/tokens': 'Create a personal access token (shown once); session authentication only',
  'GET /auth/tokens': "The user's personal access tokens, masked",
  'DELETE /auth/tokens/{id}': 'Revoke a personal access token',
  'GET /auth/admin/users': 'List users (needs users:manage)',
  'GET /auth/admin/users/{id}': 'One user (needs users:manage)',
  'PATCH /auth/admin/users/{id}': 'Change roles or disable (needs users:manage)',
  'DELETE /auth/admin/users/{id}': 'Delete a user (needs users:manage)',
  'GET /auth/admin/audit': 'The audit trail, newest first: sign-ins, failures with their reason, lockouts, user and token changes (needs users:manage)',
  'GET /auth/oidc/{name}/start': 'Start signing in with an OpenID Connect provider',
  'GET /auth/oidc/{name}/callback': "The provider's answer: starts a session and answers 303 to `next`",
  'POST /auth/oidc/{name}/backchannel-logout': 'OIDC Back-Channel Logout: ends the sessions a signed logout token names',
  [`GET ${JWKS_PATH}`]: 'The public keys that verify X-Auth-Assertion',
  'GET /auth/verify': 'Forward auth: may the original request (X-Forwarded-* or X-Original-*) pass? 200 with identity headers, or the refusal; any method',
  'GET /health': 'Health of the gateway and its dependencies',
  'GET /health/live': 'Liveness',
  'GET /health/ready': 'Readiness',
}

const TAGS = [
  { name: 'sign-in', description: 'Signing in and out' },
  { name: 'account', description: "The signed-in user's account and sessions" },
  { name: 'tokens', description: 'Personal access tokens' },
  { name: 'admin', description: 'User management (needs users:manage)' },
  { name: 'keys', description: 'Verifying the identity assertions upstreams receive' },
  { name: 'health', description: 'Liveness, readiness and health' },
]

function tagOf(url: string): string {
  if (url.startsWith('/auth/admin/')) return 'admin'
  if (url.startsWith('/auth/tokens')) return 'tokens'
  if (/^\/auth\/(me|password|sessions)(\/|$)/.test(url)) return 'account'
  if (url.startsWith('/auth/')) return 'sign-in'
  if (url.startsWith('/health')) return 'health'
  return 'keys'
}

interface OpenApiPaths {
  paths?: Record<string, Record<string, { responses?: Record<string, { description?: string }> }>>
}

type Security = Record<string, string[]>[]
const SESSION: Security = [{ session: [] }, { bearer: [] }]

/** Who may call a route, as OpenAPI security requirements (an empty object: anonymous). */
function securityOf(url: string, access: Access | undefined): Security {
  if (!url.startsWith('/auth/')) return []
  switch (access ?? 'session') {
    case 'anonymous':
      return []
    case 'optional':
      return [{}, ...SESSION]
    default:
      return SESSION
  }
}

/** The gateway's own routes only: never the proxy's catch-all. */
function isGatewayEndpoint(url: string): boolean {
  return url !== '/' && !url.includes('*')
}

async function docsPlugin(app: FastifyInstance, { publicUrl, cookieDomain = null }: DocsOptions): Promise<void> {
  // The JWKS route is declared inline in app.ts: give it its schema here, before fastify
  // compiles the route (onRoute runs first), so that it serialises with it as well.
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.url === JWKS_PATH && route.method === 'GET' && route.schema === undefined) {
      route.schema = { response: { 200: jwksResponse, ...errorResponses } }
    }
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Gatehouse',
        version,
        description:
          'The gateway\'s own endpoints. Errors are `{statusCode, code, error, message}` with a stable `code`. ' +
          'Cookie-authenticated POST, PATCH and DELETE need an Origin equal to the gateway\'s own; ' +
          'a personal access token may call only GET /auth/me, and the admin API when it was created with an explicit ' +
          'permission list naming users:manage or *.',
      },
      tags: TAGS,
      components: {
        securitySchemes: {
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: sessionCookieName(publicUrl, cookieDomain),
            description: 'The browser session cookie set by POST /auth/login',
          },
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description:
              'A personal access token (`pat_…`: under /auth only GET /auth/me, and /auth/admin/* for a token with an ' +
              'explicit permission list) or a session token from POST /auth/login',
          },
        },
      },
    },
    // Components are named after the shared schemas' $id (User, Me, Error, …).
    refResolver: {
      buildLocalReference(json, _baseUri, _fragment, i) {
        return typeof json.$id === 'string' ? json.$id : `def-${i}`
      },
    },
    // A response without a description of its own gets its status text, not "Default Response".
    transformObject(documentObject) {
      const document = ('openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject) as OpenApiPaths
      for (const operations of Object.values(document.paths ?? {})) {
        for (const operation of Object.values(operations)) {
          for (const [status, response] of Object.entries(operation.responses ?? {})) {
            if (response.description === 'Default Response') response.description = STATUS_CODES[status] ?? 'Success'
          }
        }
      }
      return document
    },
    transform({ schema, url, route }) {
      if (!isGatewayEndpoint(url)) return { schema: { ...schema, hide: true }, url }
      const method = (Array.isArray(route.method) ? route.method[0] : route.method) as string
      const openapiUrl = url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
      const summary = SUMMARIES[`${method} ${openapiUrl}`]
      return {
        schema: {
          ...schema,
          tags: [tagOf(url)],
          security: securityOf(url, route.config?.access),
          ...(summary !== undefined ? { summary } : {}),
        },
        url,
      }
    },
  })

  await app.register(swaggerUi, {
    routePrefix: DOCS_PREFIX,
    // Scripts from the UI's own files only. Swagger UI sets inline styles from its components,
    // hence 'unsafe-inline' for styles alone; no request leaves for another origin.
    staticCSP: {
      'default-src': ["'self'"],
      'base-uri': ["'self'"],
      'script-src': ["'self'"],
      'script-src-attr': ["'none'"],
      'style-src': ["'self'", "'unsafe-inline'"],
      'img-src': ["'self'", 'data:'],
      'font-src': ["'self'", 'data:'],
      'connect-src': ["'self'"],
      'object-src': ["'none'"],
      'form-action': ["'self'"],
      'frame-ancestors': ["'none'"],
    },
    // A gateway page is never framed (SPEC §4a), for browsers that ignore frame-ancestors too.
    uiHooks: {
      onRequest: (_request, reply, done) => {
        reply.header('x-frame-options', 'DENY')
        done()
      },
    },
    // No badge fetched from validator.swagger.io.
    uiConfig: { deepLinking: false, tryItOutEnabled: false, validatorUrl: null },
  })
}

export const docs = fp(docsPlugin, { name: 'gatehouse-docs', fastify: '5.x' })
