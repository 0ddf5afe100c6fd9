/**
 * Bad input to every /auth endpoint that takes a JSON body: malformed JSON, JSON that is not
 * an object, wrong types, missing and extra fields, an oversize body, other content types and
 * an empty body. Each is a clear 4xx with the SPEC §5 error shape, and writes nothing.
 */
import t, { type Test } from 'tap'
import type { Dispatcher } from 'undici'
import { assertError, bearer, countRows, login, meStatus, PASSWORD, register, uniqueEmail } from './helpers/auth-client.js'
import { startTestGateway, type CallOptions } from './helpers/gateway.js'

interface Endpoint {
  method: Dispatcher.HttpMethod
  path: string
  /** A body this endpoint accepts. */
  valid: Record<string, unknown>
  /** Each field with a value of the wrong JSON type. */
  wrongTypes: Record<string, unknown[]>
  required: string[]
  authenticated: boolean
}

const endpoints: Endpoint[] = [
  {
    method: 'POST',
    path: '/auth/register',
    valid: { email: 'new-user@example.com', password: PASSWORD, name: 'New' },
    wrongTypes: { email: [123, true, null, ['a@example.com'], {}], password: [true, 123, null, []], name: [{}, 5, false, ['x']] },
    required: ['email', 'password'],
    authenticated: false,
  },
  {
    method: 'POST',
    path: '/auth/login',
    valid: { email: 'someone@example.com', password: PASSWORD },
    wrongTypes: { email: [123, null, {}], password: [true, 42, null, ['x']] },
    required: ['email', 'password'],
    authenticated: false,
  },
  {
    method: 'PATCH',
    path: '/auth/me',
    valid: { name: 'Renamed' },
    wrongTypes: { name: [{}, 5, true, ['x']] },
    required: ['name'],
    authenticated: true,
  },
  {
    method: 'DELETE',
    path: '/auth/me',
    valid: { password: PASSWORD },
    wrongTypes: { password: [true, 1, null, {}] },
    required: ['password'],
    authenticated: true,
  },
  {
    method: 'POST',
    path: '/auth/password',
    valid: { current_password: PASSWORD, new_password: 'another long passphrase here' },
    wrongTypes: { current_password: [true, 1, null], new_password: [{}, 2, null, ['x']] },
    required: ['current_password', 'new_password'],
    authenticated: true,
  },
]

const json = (body: string, contentType = 'application/json'): CallOptions => ({
  body,
  headers: { 'content-type': contentType },
})

t.test('bad input to every JSON endpoint is a 4xx and writes nothing', async (t) => {
  // 1 KB is plenty for every valid body here and lets a 2 KB body be refused.
  const gw = await startTestGateway(t, { configure: (raw) => (raw.server.body_limit = '1kb') })
  const email = uniqueEmail('input')
  const user = await register(gw, email, PASSWORD, 'Original')
  const { token } = await login(gw, email)

  async function expectRefused(t: Test, endpoint: Endpoint, label: string, options: CallOptions, status: number, code: string) {
    const before = await countRows(gw)
    const headers = { ...options.headers, ...(endpoint.authenticated ? bearer(token) : {}) }
    const response = await gw.call(endpoint.method, endpoint.path, { ...options, headers })
    assertError(t, response, status, code, `${endpoint.method} ${endpoint.path} ${label}`)
    t.same(await countRows(gw), before, `${endpoint.method} ${endpoint.path} ${label}: no users or audit rows written`)
  }

  for (const endpoint of endpoints) {
    await t.test(`${endpoint.method} ${endpoint.path}`, async (t) => {
      const refuse = (label: string, options: CallOptions, status = 400, code = 'GH_VALIDATION') =>
        expectRefused(t, endpoint, label, options, status, code)

      await refuse('malformed JSON', json('{"email": "a@example.com", '))
      await refuse('truncated JSON', json('{'))
      await refuse('single quotes', json("{'email': 'a@example.com'}"))
      await refuse('an array', json(JSON.stringify([endpoint.valid])))
      await refuse('an empty array', json('[]'))
      await refuse('a string', json(JSON.stringify('hello')))
      await refuse('null', json('null'))
      await refuse('a number', json('42'))
      await refuse('an empty object', { json: {} })
      await refuse('an empty body with a JSON content type', json(''))
      await refuse('no body at all', {})

      for (const [field, values] of Object.entries(endpoint.wrongTypes)) {
        for (const value of values) {
          await refuse(`${field}: ${JSON.stringify(value)}`, { json: { ...endpoint.valid, [field]: value } })
        }
      }
      for (const field of endpoint.required) {
        const body = { ...endpoint.valid }
        delete body[field]
        await refuse(`missing ${field}`, { json: body })
      }
      // Extra fields are refused, not silently dropped: a client that thinks it set them must learn it did not.
      await refuse('an extra field', { json: { ...endpoint.valid, extra: 1 } })
      await refuse('roles smuggled in', { json: { ...endpoint.valid, roles: ['admin'] } })
      await refuse('__proto__ smuggled in', json(JSON.stringify(endpoint.valid).replace(/^\{/, '{"__proto__":{"admin":true},')))
      await refuse('a 2 KB body over a 1 KB limit', { json: { ...endpoint.valid, padding: 'x'.repeat(2048) } }, 413, 'GH_PAYLOAD_TOO_LARGE')
      await refuse('a 2 KB body without its extra field', { json: { ...endpoint.valid, [endpoint.required[0]!]: 'x'.repeat(2048) } }, 413, 'GH_PAYLOAD_TOO_LARGE')
      await refuse('text/plain', json(JSON.stringify(endpoint.valid), 'text/plain'), 415, 'GH_UNSUPPORTED_MEDIA_TYPE')
      // POST /auth/login takes a browser form too (the login page); every other endpoint is JSON only.
      if (endpoint.path !== '/auth/login') {
        await refuse('a form post', json(new URLSearchParams(endpoint.valid as Record<string, string>).toString(), 'application/x-www-form-urlencoded'), 415, 'GH_UNSUPPORTED_MEDIA_TYPE')
      }
      await refuse('multipart', json('--x\r\nContent-Disposition: form-data; name="email"\r\n\r\na\r\n--x--', 'multipart/form-data; boundary=x'), 415, 'GH_UNSUPPORTED_MEDIA_TYPE')
      await refuse('application/xml', json('<email>a</email>', 'application/xml'), 415, 'GH_UNSUPPORTED_MEDIA_TYPE')

      if (endpoint.authenticated) {
        // Authentication comes before the body is even read.
        const response = await gw.call(endpoint.method, endpoint.path, json('{not json'))
        assertError(t, response, 401, 'GH_UNAUTHENTICATED', 'no credential and a malformed body')
      }
    })
  }

  await t.test('the account is untouched by all of that', async (t) => {
    t.equal(await meStatus(gw, token), 200, 'the session still works')
    const me = await gw.call('GET', '/auth/me', { headers: bearer(token) })
    t.equal(me.json().name, 'Original', 'the name is unchanged')
    t.equal(me.json().id, user.id)
    const again = await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
    t.equal(again.status, 200, 'the password is unchanged')
  })

  await t.test('a JSON content type with a charset is accepted', async (t) => {
    const response = await gw.call('PATCH', '/auth/me', {
      body: JSON.stringify({ name: 'Charset' }),
      headers: { ...bearer(token), 'content-type': 'application/json; charset=utf-8' },
    })
    t.equal(response.status, 200, response.text)
    t.equal(response.json().name, 'Charset')
  })
})

t.test('the validation error names the offending fields', async (t) => {
  const gw = await startTestGateway(t)
  const response = await gw.call('POST', '/auth/register', { json: { email: 123, password: PASSWORD, extra: true } })
  assertError(t, response, 400, 'GH_VALIDATION')
  const problems = response.json<{ problems: { field: string }[] }>().problems
  t.ok(Array.isArray(problems), 'problems is a list')
  const fields = problems.map((p) => p.field).sort()
  t.ok(fields.includes('email') && fields.includes('extra'), `every problem is listed (${fields.join(', ')})`)
})
