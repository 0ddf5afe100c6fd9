/**
 * The OpenAPI document at /docs/json and Swagger UI at /docs (SPEC §5), read over HTTPS from a
 * real gateway: an OpenAPI 3.1 document naming every endpoint of SPEC §5 with its request and
 * response schemas and the shared error shape, structurally sound (every $ref and security
 * scheme resolves, path parameters are declared), and never listing a proxied path. Since the
 * document is made from the schemas fastify validates and serialises with, a request the
 * document refuses is refused, and an answer has exactly the documented fields.
 */
import t, { type Test } from 'tap'
import { version } from '../src/version.js'
import { browser, cookieName, PASSWORD, register, signUp, uniqueEmail } from './helpers/auth-client.js'
import { assertCode } from './helpers/assert-code.js'
import { startTestGateway } from './helpers/gateway.js'
import { startUpstream } from './helpers/upstream.js'

type Json = Record<string, unknown>
interface Operation {
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Json }> }
  parameters?: { name: string; in: string; required?: boolean; schema?: Json }[]
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Json }> }>
  security?: Record<string, string[]>[]
  tags?: string[]
}
interface OpenApiDocument {
  openapi: string
  info: { title: string; version: string }
  tags?: { name: string }[]
  paths: Record<string, Record<string, Operation>>
  components: { schemas?: Record<string, Json>; securitySchemes?: Record<string, Json> }
}

interface Expected {
  /** The success status of SPEC §5's table. */
  status: number
  /** The request body is described (POST/PATCH with a body, and DELETE /auth/me). */
  body?: boolean
  /** The success answer's media type; none for 204 and 303. */
  media?: 'application/json' | 'text/html'
  also?: number[]
}

const JSON_200: Expected = { status: 200, media: 'application/json' }
const NO_CONTENT: Expected = { status: 204 }

/** Every endpoint of SPEC §5 but OIDC's (whose routes are allowed, not required, here). */
const EXPECTED: Record<string, Expected> = {
  'GET /auth/login': { status: 200, media: 'text/html' },
  'POST /auth/login': { status: 200, media: 'application/json', body: true, also: [303] },
  'POST /auth/register': { status: 201, media: 'application/json', body: true },
  'POST /auth/logout': NO_CONTENT,
  'POST /auth/logout-all': NO_CONTENT,
  'GET /auth/me': JSON_200,
  'PATCH /auth/me': { ...JSON_200, body: true },
  'POST /auth/password': { ...NO_CONTENT, body: true },
  'DELETE /auth/me': { ...NO_CONTENT, body: true },
  'GET /auth/sessions': JSON_200,
  'DELETE /auth/sessions/{id}': NO_CONTENT,
  'POST /auth/tokens': { status: 201, media: 'application/json', body: true },
  'GET /auth/tokens': JSON_200,
  'DELETE /auth/tokens/{id}': NO_CONTENT,
  'GET /auth/admin/users': JSON_200,
  'GET /auth/admin/users/{id}': JSON_200,
  'PATCH /auth/admin/users/{id}': { ...JSON_200, body: true },
  'DELETE /auth/admin/users/{id}': NO_CONTENT,
  'GET /.well-known/jwks.json': JSON_200,
  'GET /health': { ...JSON_200, also: [503] },
  'GET /health/live': JSON_200,
  'GET /health/ready': { ...JSON_200, also: [503] },
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])
/** The gateway's own namespace; anything else in the document would be a proxied path. */
const GATEWAY_PATH = /^\/auth\/[^*]+$|^\/health(\/(live|ready))?$|^\/\.well-known\/jwks\.json$/

/** Resolves a local JSON pointer (`#/components/schemas/User`) in the document, or undefined. */
function resolvePointer(document: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined
  let node: unknown = document
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined
    node = (node as Json)[key]
  }
  return node
}

/** Every `$ref` in the document, with where it was found. */
function refsOf(node: unknown, at = '#'): { ref: string; at: string }[] {
  if (node === null || typeof node !== 'object') return []
  const found: { ref: string; at: string }[] = []
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') found.push({ ref: value, at })
    else found.push(...refsOf(value, `${at}/${key}`))
  }
  return found
}

/** A schema with its top-level `$ref` followed. */
function deref(document: OpenApiDocument, schema: Json | undefined): Json | undefined {
  if (schema !== undefined && typeof schema.$ref === 'string') return resolvePointer(document, schema.$ref) as Json | undefined
  return schema
}

function operations(document: OpenApiDocument): [string, string, Operation][] {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method))
      .map(([method, operation]) => [method.toUpperCase(), path, operation] as [string, string, Operation]),
  )
}

async function setUp(t: Test) {
  const upstream = await startUpstream(t)
  // A public catch-all route and a prefixed one: neither may show up in the document, and
  // neither may take /docs away from the gateway.
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.roles = { ...raw.roles, admin: ['*'] }
      raw.routes = [
        { name: 'root', match: '/', upstream: upstream.url, auth: 'public' },
        { name: 'app', match: '/app', upstream: upstream.url, auth: 'required' },
      ]
    },
  })
  const response = await gw.call('GET', '/docs/json')
  t.equal(response.status, 200, 'GET /docs/json: 200')
  t.match(String(response.headers['content-type']), /^application\/json/)
  t.equal(upstream.received.length, 0, 'answered by the gateway, never proxied')
  return { gw, upstream, document: response.json<OpenApiDocument>() }
}

t.test('/docs/json is an OpenAPI 3.1 document of every SPEC §5 endpoint', async (t) => {
  const { gw, document } = await setUp(t)
  t.match(document.openapi, /^3\.1\.\d+$/, 'OpenAPI 3.1')
  t.equal(document.info.title, 'Gatehouse')
  t.equal(document.info.version, version, 'the package version')

  for (const [key, expected] of Object.entries(EXPECTED)) {
    const [method = '', path = ''] = key.split(' ')
    const operation = document.paths[path]?.[method.toLowerCase()]
    if (!t.ok(operation, `${key} is documented`) || operation === undefined) continue
    const responses = operation.responses ?? {}
    for (const status of [expected.status, ...(expected.also ?? [])]) {
      t.ok(responses[String(status)], `${key}: a ${status} response`)
    }
    const success = responses[String(expected.status)]
    if (expected.media === undefined) {
      t.notOk(success?.content, `${key}: ${expected.status} has no body`)
    } else {
      t.ok(success?.content?.[expected.media]?.schema, `${key}: the ${expected.status} ${expected.media} schema`)
    }
    if (expected.body) {
      t.equal(operation.requestBody?.required, true, `${key}: a required request body`)
      const schema = deref(document, operation.requestBody?.content?.['application/json']?.schema)
      t.equal(schema?.type, 'object', `${key}: a JSON object body schema`)
      t.equal(schema?.additionalProperties, false, `${key}: no undeclared fields (as validated)`)
    } else if (method === 'POST' || method === 'PATCH') {
      t.notOk(operation.requestBody, `${key}: takes no body`)
    }
    // Every error the gateway answers itself has one shape.
    for (const range of ['4XX', '5XX']) {
      const error = responses[range]?.content?.['application/json']?.schema
      t.equal(error?.$ref, '#/components/schemas/Error', `${key}: ${range} is the Error shape`)
    }
  }

  const error = document.components.schemas?.Error
  t.match(error, { type: 'object', properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' } } })
  t.same([...((error?.required as string[] | undefined) ?? [])].sort(), ['code', 'error', 'message', 'statusCode'])

  // What the table of SPEC §5 says in words.
  const parameters = (key: string) => {
    const [method = '', path = ''] = key.split(' ')
    return document.paths[path]?.[method.toLowerCase()]?.parameters ?? []
  }
  t.match(parameters('GET /auth/login'), [{ in: 'query', name: 'next', schema: { type: 'string' } }], 'the login page keeps next')
  t.same(parameters('GET /auth/admin/users').map((p) => `${p.in}:${p.name}`).sort(), ['query:cursor', 'query:limit'], 'the admin list pages')
  const login = document.paths['/auth/login']?.post
  t.ok(login?.requestBody?.content?.['application/x-www-form-urlencoded'], 'POST /auth/login takes the HTML form too')
  t.ok(login?.responses?.['4XX']?.content?.['text/html'], '… whose failures are the page again')
  const me = deref(document, document.paths['/auth/me']?.get?.responses?.['200']?.content?.['application/json']?.schema)
  t.same(Object.keys((me?.properties as Json | undefined) ?? {}).sort(), ['auth', 'created_at', 'email', 'email_verified', 'id', 'mfa', 'name', 'permissions', 'roles'])
  const created = document.paths['/auth/tokens']?.post?.responses?.['201']?.content?.['application/json']?.schema
  t.ok((created?.properties as Json | undefined)?.token, 'POST /auth/tokens answers the token')
  const registerBody = deref(document, document.paths['/auth/register']?.post?.requestBody?.content?.['application/json']?.schema)
  t.same(registerBody?.required, ['email', 'password'], 'register: {email, password, name?}')
  t.same(Object.keys((registerBody?.properties as Json | undefined) ?? {}).sort(), ['email', 'name', 'password'])

  // Who may call what.
  const schemes = document.components.securitySchemes ?? {}
  t.match(schemes.session, { type: 'apiKey', in: 'cookie', name: cookieName(gw) }, 'the session cookie, by its real name')
  t.match(schemes.bearer, { type: 'http', scheme: 'bearer' }, 'bearer tokens (PATs and session tokens)')
  t.same(document.paths['/auth/login']?.post?.security, [], 'login needs no credential')
  t.ok(document.paths['/auth/me']?.get?.security?.length, 'GET /auth/me needs one')
})

t.test('the document is structurally sound and lists only gateway endpoints', async (t) => {
  const { document } = await setUp(t)
  const paths = Object.keys(document.paths)
  t.ok(paths.length >= Object.keys(EXPECTED).length - 3, 'paths are listed')
  for (const path of paths) {
    t.ok(GATEWAY_PATH.test(path), `${path} is a gateway endpoint (no proxied or catch-all path)`)
  }
  t.notOk(paths.some((path) => path === '/' || path.includes('*') || path.startsWith('/docs') || path.startsWith('/app')), 'no /, /*, /docs or route path')

  const refs = refsOf(document)
  t.ok(refs.length > 0, 'the document uses $refs')
  for (const { ref, at } of refs) {
    t.ok(resolvePointer(document, ref) !== undefined, `${ref} (at ${at}) resolves`)
  }

  const tags = new Set((document.tags ?? []).map((tag) => tag.name))
  const schemes = new Set(Object.keys(document.components.securitySchemes ?? {}))
  for (const [method, path, operation] of operations(document)) {
    const key = `${method} ${path}`
    const responses = Object.entries(operation.responses ?? {})
    t.ok(responses.length > 0, `${key}: responses`)
    for (const [status, response] of responses) {
      t.match(status, /^([1-5][0-9][0-9]|[1-5]XX|default)$/, `${key}: ${status} is a status`)
      t.ok(typeof response.description === 'string' && response.description !== '', `${key} ${status}: a description`)
      for (const [media, content] of Object.entries(response.content ?? {})) {
        t.ok(content.schema, `${key} ${status} ${media}: a schema`)
      }
    }
    const declared = (operation.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort()
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]).sort()
    t.same(declared, templated, `${key}: its path parameters are declared`)
    for (const parameter of operation.parameters ?? []) {
      t.ok(['query', 'path', 'header', 'cookie'].includes(parameter.in) && parameter.schema, `${key}: parameter ${parameter.name}`)
      if (parameter.in === 'path') t.equal(parameter.required, true, `${key}: path parameter ${parameter.name} is required`)
    }
    for (const tag of operation.tags ?? []) t.ok(tags.has(tag), `${key}: tag ${tag} is declared`)
    for (const requirement of operation.security ?? []) {
      for (const scheme of Object.keys(requirement)) t.ok(schemes.has(scheme), `${key}: security scheme ${scheme} exists`)
    }
  }
  const ids = operations(document).map(([method, path]) => `${method} ${path}`)
  t.equal(new Set(ids).size, ids.length, 'each operation once')
})

t.test('the documented schemas are the ones that validate and serialise', async (t) => {
  const { gw, document } = await setUp(t)
  // A field the register schema does not declare is refused: the document says so too.
  const refused = await gw.call('POST', '/auth/register', { json: { email: uniqueEmail('doc'), password: PASSWORD, role: 'admin' } })
  assertCode(t, refused, 400, 'GH_VALIDATION', 'an undocumented field')
  const wrongType = await gw.call('POST', '/auth/register', { json: { email: uniqueEmail('doc'), password: PASSWORD, name: 7 } })
  assertCode(t, wrongType, 400, 'GH_VALIDATION', 'a documented field of another type')
  // The login page's query schema documents `next` but never turns a page into an error.
  const page = await gw.call('GET', '/auth/login?next=/a&next=/b&utm_source=mail')
  t.equal(page.status, 200, 'a repeated next and an unknown parameter: still the page')
  t.match(page.text, '<input type="hidden" name="next" value="/">', 'with next made safe')

  // An answer has the documented fields only, the required ones all there; errors keep theirs.
  const conforms = (what: string, body: Json, schema: Json | undefined) => {
    const declared = Object.keys((schema?.properties as Json | undefined) ?? {})
    t.same(Object.keys(body).filter((key) => !declared.includes(key)), [], `${what}: no undocumented field`)
    t.same(((schema?.required as string[] | undefined) ?? []).filter((key) => !(key in body)), [], `${what}: every required field`)
  }
  const user = await register(gw, uniqueEmail('doc'))
  conforms('POST /auth/register', user as unknown as Json, document.components.schemas?.User)
  const session = await signUp(gw, 'doc-me')
  const me = await gw.call('GET', '/auth/me', { headers: browser(gw, session.token) })
  conforms('GET /auth/me', me.json(), document.components.schemas?.Me)
  const forbidden = await gw.call('GET', '/auth/admin/users', { headers: browser(gw, session.token) })
  const body = assertCode(t, forbidden, 403, 'GH_FORBIDDEN', 'not an admin')
  t.equal(body.missing_permission, 'users:manage', 'an error keeps its documented extras')
  const health = await gw.call('GET', '/health')
  t.match(health.json(), { status: 'ok', version, components: { database: { status: 'ok' }, sessions: { status: 'ok' } } }, 'GET /health')
  const jwks = await gw.call('GET', '/.well-known/jwks.json')
  t.match(jwks.json(), { keys: [{ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' }] }, 'the JWKS keeps every key field')
  t.equal(jwks.headers['cache-control'], 'public, max-age=60')
})

t.test('/docs serves Swagger UI', async (t) => {
  const { gw, upstream } = await setUp(t)
  for (const path of ['/docs', '/docs/']) {
    const page = await gw.call('GET', path, { headers: { accept: 'text/html' } })
    t.equal(page.status, 200, `GET ${path}`)
    t.match(String(page.headers['content-type']), /^text\/html/, 'HTML')
    t.match(page.text, /<div id="swagger-ui">/, 'the Swagger UI page')
    t.match(String(page.headers['content-security-policy']), /script-src 'self'(;|$)/, 'scripts from the gateway only')
  }
  const page = await gw.call('GET', '/docs')
  const assets = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] ?? '')
  t.ok(assets.length >= 3, 'the page loads its assets')
  for (const asset of assets) {
    const url = new URL(asset, `${gw.url}/docs`)
    const response = await gw.call('GET', url.pathname)
    t.equal(response.status, 200, `${url.pathname} is served`)
  }
  const initializer = await gw.call('GET', '/docs/static/swagger-initializer.js')
  t.match(initializer.text, "resolveUrl('./json')", 'the UI reads /docs/json')
  t.equal(upstream.received.length, 0, 'none of it reached the catch-all upstream')
})
