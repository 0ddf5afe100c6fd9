/**
 * What an attack on the running gateway found (issue 11), each as the rule of SPEC §3, §4a
 * or §5 that answers it, through a real server: upstreams cannot plant the gateway's cookies,
 * the admin API never lets anyone gain permissions or change themselves, control characters
 * in an email are never a 5xx, a header credential and another user's cookie are ambiguous,
 * every /auth answer is no-store however spelled, two Host headers are 400, non-IP
 * X-Forwarded-For entries are ignored, trivial passwords are refused, and unknown or disabled
 * accounts cost one argon2 verification like a wrong password.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { bearer, login, PASSWORD, register, sessionCookie, uniqueEmail, type LoggedIn } from './helpers/auth-client.js'
import { assertCode } from './helpers/assert-code.js'
import { databaseBackends } from './helpers/backends.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'
import { rawCall } from './helpers/raw-http.js'

/** An upstream that answers with the Set-Cookie headers given and records the Cookie and X-Forwarded-For it got. */
async function cookieUpstream(t: Test, setCookies: string[]) {
  const cookies: Array<string | undefined> = []
  const forwardedFor: string[] = []
  const server = createServer((request, response) => {
    cookies.push(request.headers.cookie)
    forwardedFor.push(String(request.headers['x-forwarded-for']))
    request.resume()
    response.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': setCookies }).end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, cookies, forwardedFor }
}

const PLANTED = [
  'gh_session=planted; Path=/', '__Host-gh_session=planted; Secure; Path=/', '__Secure-gh_session=planted; Domain=gatehouse.test',
  'GH_SESSION=planted', '__HOST-GH_SESSION=planted', '__host-Http-gh_session=planted', ' gh_session =planted',
  '__Host-gh_oidc=planted', 'gh_oidc=planted', '__Secure-GH_OIDC=planted', 'gh_session=; Max-Age=0',
]
const KEPT = ['app=1; Path=/', 'gh_session_app=2', '__Host-app=3; Secure; Path=/', 'session=4']

async function gateway(t: Test, upstream: string): Promise<TestGateway> {
  return startTestGateway(t, {
    db: await databaseBackends()[0]!.open(t),
    configure: (raw) => {
      raw.server.trust_proxy = ['127.0.0.1/32']
      raw.roles = { ...raw.roles, usermgr: ['users:manage'], manager: ['users:manage', 'app:read'] }
      raw.routes = [
        { name: 'app', match: '/app', upstream, auth: 'required', permissions: ['app:read'] },
        { name: 'pub', match: '/pub', upstream, auth: 'public' },
      ]
    },
  })
}

async function userWith(gw: TestGateway, tag: string, roles: string[]): Promise<LoggedIn> {
  const email = uniqueEmail(tag)
  const user = await register(gw, email)
  await gw.runtime.users.setRoles(user.id, roles)
  return login(gw, email)
}

async function patOf(gw: TestGateway, session: string): Promise<string> {
  const response = await gw.call('POST', '/auth/tokens', { json: { name: 'pat' }, headers: bearer(session) })
  if (response.status !== 201) throw new Error(`POST /auth/tokens: ${response.status} ${response.text}`)
  return response.json<{ token: string }>().token
}

t.test('security rules of issue 11', async (t) => {
  const upstream = await cookieUpstream(t, [...PLANTED, ...KEPT])
  const gw = await gateway(t, upstream.url)

  t.test("an upstream's Set-Cookie for a gateway cookie is dropped, in any case and with any prefix (SPEC §4a)", async (t) => {
    for (const path of ['/pub/x', '/app/x']) {
      const alice = await userWith(gw, 'cookies', ['viewer'])
      const response = await gw.call('GET', path, { headers: path === '/app/x' ? bearer(alice.token) : {} })
      t.equal(response.status, 200, path)
      t.same(response.headers['set-cookie'], KEPT, `${path}: only the upstream's own cookies reach the client`)
    }
  })

  t.test('every spelling of a gateway cookie is stripped from requests to upstreams (SPEC §3)', async (t) => {
    const sent = 'GH_SESSION=a; app=1; __secure-gh_session=b; gh_oidc=c; __Host-GH_OIDC=d; __Host-gh_session=e; gh_session_app=2'
    const response = await gw.call('GET', '/pub/x', { headers: { cookie: sent } })
    t.equal(response.status, 200)
    t.equal(upstream.cookies.at(-1), 'app=1; gh_session_app=2')
  })

  t.test('the admin API never lets anyone gain permissions or change themselves (SPEC §5)', async (t) => {
    const usermgr = await userWith(gw, 'usermgr', ['usermgr'])
    const manager = await userWith(gw, 'manager', ['manager'])
    const admin = await userWith(gw, 'admin', ['admin'])
    const target = await register(gw, uniqueEmail('target'))
    await gw.runtime.users.setRoles(target.id, [])
    const patch = (actor: LoggedIn, id: string, json: unknown) => gw.call('PATCH', `/auth/admin/users/${id}`, { json, headers: bearer(actor.token) })
    const roles = async (id: string) => (await gw.runtime.users.get(id))?.roles

    for (const actor of [usermgr, manager, admin]) {
      const self = actor.user.id
      assertCode(t, await patch(actor, self, { roles: ['admin'] }), 403, 'GH_FORBIDDEN', 'own roles')
      assertCode(t, await patch(actor, self.toUpperCase(), { roles: ['viewer'] }), 403, 'GH_FORBIDDEN', 'own roles, id in upper case')
      assertCode(t, await patch(actor, self, { disabled: true }), 403, 'GH_FORBIDDEN', 'disable oneself')
      assertCode(t, await gw.call('DELETE', `/auth/admin/users/${self}`, { headers: bearer(actor.token) }), 403, 'GH_FORBIDDEN', 'delete oneself')
      t.ok(await gw.runtime.users.isActive(self), 'still there and enabled')
    }
    t.same(await roles(usermgr.user.id), ['usermgr'], 'the users:manage holder is no admin')

    const refused = assertCode(t, await patch(usermgr, target.id, { roles: ['admin'] }), 403, 'GH_FORBIDDEN', 'grant * without holding it')
    t.same(refused.roles, ['admin'])
    assertCode(t, await patch(usermgr, target.id, { roles: ['viewer'] }), 403, 'GH_FORBIDDEN', 'grant app:read without holding it')
    assertCode(t, await patch(manager, target.id, { roles: ['operator'] }), 403, 'GH_FORBIDDEN', 'app:write is not the manager\'s')
    t.same(await roles(target.id), [], 'no refused change was applied')

    t.equal((await patch(manager, target.id, { roles: ['viewer', 'usermgr'] })).status, 200, 'roles whose permissions the actor holds')
    t.same(await roles(target.id), ['viewer', 'usermgr'])
    t.equal((await patch(admin, target.id, { roles: ['admin'] })).status, 200, '* grants anything')
    t.equal((await patch(manager, target.id, { roles: ['admin', 'viewer'] })).status, 200, 'keeping a role held already is no grant')
    t.equal((await patch(usermgr, target.id, { roles: ['usermgr'] })).status, 200, 'taking roles away is no gain')

    const changes = (await gw.runtime.audit.list({ userId: target.id, limit: 10 })).filter((e) => e.type === 'user.roles_changed')
    t.same(changes.map((e) => e.details.actor_id), [usermgr.user.id, manager.user.id, admin.user.id, manager.user.id, null], 'every role change names its actor (null: not through the API)')
  })

  t.test('control characters in an email: 400 at registration, 401 at login, never 5xx (SPEC §5)', async (t) => {
    for (const char of ['\u0000', '\u0001', '\n', '\u007f', '\u0085']) {
      const email = `a${char}b@example.com`
      assertCode(t, await gw.call('POST', '/auth/register', { json: { email, password: PASSWORD } }), 400, 'GH_VALIDATION', `register ${JSON.stringify(char)}`)
      assertCode(t, await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } }), 401, 'GH_INVALID_CREDENTIALS', `login ${JSON.stringify(char)}`)
      const form = await gw.call('POST', '/auth/login', {
        body: new URLSearchParams({ email, password: PASSWORD }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      })
      t.equal(form.status, 401, `form login ${JSON.stringify(char)}`)
    }
  })

  t.test('a header credential and a cookie of another user are ambiguous, whatever the header holds (SPEC §3)', async (t) => {
    const alice = await userWith(gw, 'alice', ['viewer'])
    const bob = await userWith(gw, 'bob', ['viewer'])
    const alicePat = await patOf(gw, alice.token)
    const bobPat = await patOf(gw, bob.token)
    for (const path of ['/app/x', '/auth/me']) {
      for (const [header, what] of [[bobPat, 'PAT'], [bob.token, 'session token']] as const) {
        const response = await gw.call('GET', path, { headers: { ...bearer(header), ...sessionCookie(gw, alice.token) } })
        assertCode(t, response, 400, 'GH_AMBIGUOUS_CREDENTIALS', `${path}: bob's ${what} with alice's cookie`)
      }
      for (const header of [alicePat, alice.token]) {
        t.equal((await gw.call('GET', path, { headers: { ...bearer(header), ...sessionCookie(gw, alice.token) } })).status, 200, `${path}: one user twice is fine`)
      }
      const stale = sessionCookie(gw, 'A'.repeat(43))
      t.equal((await gw.call('GET', path, { headers: { ...bearer(bobPat), ...stale } })).status, 200, `${path}: a stale cookie names nobody`)
    }
  })

  t.test('every /auth answer is no-store however its path is spelled (SPEC §4a)', async (t) => {
    const alice = await userWith(gw, 'nostore', ['viewer'])
    for (const [target, status] of [
      ['/%61uth/me', 200], ['/%61%75%74%68/me', 200], ['/auth/%6de', 200], ['//auth/me', 404], ['/%61uth/nowhere', 404], ['/auth/./x/../nowhere', 404],
    ] as const) {
      const response = await rawCall(gw.url, 'GET', target, [['Authorization', `Bearer ${alice.token}`]])
      t.equal(response.status, status, target)
      t.equal(response.headers['cache-control'], 'no-store', `${target}: no-store`)
    }
    const proxied = await rawCall(gw.url, 'GET', '/pub/x')
    t.not(proxied.headers['cache-control'], 'no-store', 'not an /auth answer: left alone')
  })

  t.test('two Host headers are 400 (RFC 9112 §3.2)', async (t) => {
    for (const target of ['/pub/x', '/auth/me', '/auth/login']) {
      const before = upstream.cookies.length
      const response = await rawCall(gw.url, 'GET', target, [['Host', 'evil.example']])
      assertCode(t, { status: response.status, headers: response.headers, text: response.body, json: () => JSON.parse(response.body) }, 400, 'GH_VALIDATION', target)
      t.equal(upstream.cookies.length, before, `${target}: nothing reached the upstream`)
    }
    t.equal((await rawCall(gw.url, 'GET', '/pub/x')).status, 200, 'one Host is fine')
  })

  t.test('an X-Forwarded-For entry that is not an IP address is ignored (SPEC §4a)', async (t) => {
    const email = uniqueEmail('xff')
    for (const [forwarded, expected] of [
      ['garbage1', '127.0.0.1'], ['garbage1, 203.0.113.7', '203.0.113.7'], ['203.0.113.7, garbage1', '203.0.113.7'],
      ['203.0.113.9,unknown, [::1]:80', '203.0.113.9'], ['2001:db8::1, _hidden', '2001:db8::1'],
    ] as const) {
      const response = await gw.call('POST', '/auth/login', { json: { email, password: 'wrong password, long enough' }, headers: { 'x-forwarded-for': forwarded } })
      t.equal(response.status, 401)
      const [event] = await gw.runtime.audit.list({ limit: 1 })
      t.equal(event?.ip, expected, `${forwarded}: the audited client address`)
      await gw.runtime.throttle.clear(email)
    }
    for (const [forwarded, expected] of [['garbage1', '127.0.0.1'], ['garbage1, 203.0.113.7, evil', '203.0.113.7, 127.0.0.1']] as const) {
      t.equal((await gw.call('GET', '/pub/x', { headers: { 'x-forwarded-for': forwarded } })).status, 200)
      t.equal(upstream.forwardedFor.at(-1), expected, `${forwarded}: the X-Forwarded-For the upstream gets`)
    }
  })

  t.test('trivial passwords are refused at registration (SPEC §5, NIST SP 800-63B)', async (t) => {
    for (const password of ['aaaaaaaaaaaaaaaaaaaa', '12345678901234567890', 'abcdefghijklmnopqrstu', 'zyxwvutsrqponmlkjihg', 'abcabcabcabcabcabcabc']) {
      const body = assertCode(t, await gw.call('POST', '/auth/register', { json: { email: uniqueEmail('weak'), password } }), 400, 'GH_VALIDATION', password)
      t.match(body.message, /repeated character, a plain sequence/)
    }
  })

  t.test('unknown, disabled and wrong-password logins each cost one argon2 verification (SPEC §5)', async (t) => {
    const { hasher, users } = gw.runtime
    let verifications = 0
    const verify = hasher.verify.bind(hasher)
    hasher.verify = async (hash, password) => {
      verifications++
      return verify(hash, password)
    }
    t.teardown(() => {
      hasher.verify = verify
    })
    const disabled = await register(gw, uniqueEmail('disabled'))
    await users.setDisabled(disabled.id, true)
    const known = await register(gw, uniqueEmail('known'))
    for (const [email, what] of [[uniqueEmail('nobody'), 'unknown email'], [disabled.email, 'disabled user'], [known.email, 'wrong password']] as const) {
      verifications = 0
      const response = await gw.call('POST', '/auth/login', { json: { email, password: 'not the password at all' } })
      assertCode(t, response, 401, 'GH_INVALID_CREDENTIALS', what)
      t.equal(verifications, 1, `${what}: one verification`)
    }
  })
})

t.test('database errors carry no parameter values (SPEC §5: logs)', async (t) => {
  for (const backend of databaseBackends()) {
    const db = await backend.open(t)
    for (const [sql, params] of [
      ['SELECT $1::int', ['secret-parameter-value']],
      ['SELECT $1::text', ['secret-parameter\u0000value']],
      ['SELECT $1::uuid', ['secret-parameter-value']],
    ] as const) {
      const error = await db.query(sql, [...params]).then(() => null, (err: unknown) => err as Error & Record<string, unknown>)
      t.ok(error, `${backend.name} ${sql}: fails`)
      const logged = JSON.stringify({ ...error, message: error?.message, stack: error?.stack })
      t.notMatch(logged, /secret-parameter/, `${backend.name} ${sql}: no value in what a log would show`)
      t.equal(typeof error?.code, 'string', `${backend.name} ${sql}: the SQLSTATE stays`)
    }
  }
})
