/**
 * The admin API through a real server (SPEC §5): `users:manage` needed, never with a PAT;
 * keyset pagination; reading, changing roles, disabling (sessions, PATs and login refused at
 * once) and deleting users; the CSRF check on cookie-authenticated calls; and user creation
 * by an admin while registration is closed.
 */
import t, { type Test } from 'tap'
import { bearer, browser, login, PASSWORD, register, sessionCookie, signUp, uniqueEmail, type LoggedIn } from './helpers/auth-client.js'
import { assertCode } from './helpers/assert-code.js'
import { databaseBackends } from './helpers/backends.js'
import { PUBLIC_URL, startTestGateway, type Response, type TestGateway } from './helpers/gateway.js'
import { startUpstream } from './helpers/upstream.js'

interface AdminUser {
  id: string
  email: string
  name: string | null
  roles: string[]
  created_at: string
  disabled: boolean
}

interface Page {
  items: AdminUser[]
  next_cursor: string | null
}

const ADMIN_USER_KEYS = ['created_at', 'disabled', 'email', 'email_verified', 'id', 'name', 'roles']

async function adminOf(gw: TestGateway, tag: string): Promise<LoggedIn> {
  const email = uniqueEmail(tag)
  const user = await register(gw, email)
  await gw.runtime.users.setRoles(user.id, ['admin'])
  return login(gw, email)
}

async function patOf(gw: TestGateway, session: string): Promise<string> {
  const response = await gw.call('POST', '/auth/tokens', { json: { name: 'pat' }, headers: bearer(session) })
  if (response.status !== 201) throw new Error(`POST /auth/tokens: ${response.status} ${response.text}`)
  return response.json<{ token: string }>().token
}

function assertForbidden(t: Test, response: Response, what: string, permission?: string): void {
  const body = assertCode(t, response, 403, 'GH_FORBIDDEN', what)
  if (permission !== undefined) t.equal(body.missing_permission, permission, `${what}: names ${permission}`)
}

t.test('the admin API', async (t) => {
  const upstream = await startUpstream(t)
  const db = await databaseBackends()[0]!.open(t)
  const gw = await startTestGateway(t, {
    db,
    configure: (raw) => {
      raw.routes = [{ name: 'app', match: '/app', upstream: upstream.url, auth: 'required', permissions: ['app:read'] }]
    },
  })
  const admin = await adminOf(gw, 'admin')
  const asAdmin = bearer(admin.token)
  const get = (id: string) => gw.call('GET', `/auth/admin/users/${id}`, { headers: asAdmin })
  const patch = (id: string, json: unknown) => gw.call('PATCH', `/auth/admin/users/${id}`, { json, headers: asAdmin })

  await t.test('users:manage is needed; a PAT never reaches the admin API', async (t) => {
    const viewer = await signUp(gw, 'viewer')
    for (const [method, path, json] of [
      ['GET', '/auth/admin/users', undefined],
      ['GET', `/auth/admin/users/${admin.user.id}`, undefined],
      ['PATCH', `/auth/admin/users/${admin.user.id}`, { disabled: true }],
      ['DELETE', `/auth/admin/users/${admin.user.id}`, undefined],
    ] as const) {
      assertForbidden(t, await gw.call(method, path, { json, headers: bearer(viewer.token) }), `a viewer: ${method} ${path}`, 'users:manage')
    }
    const stillThere = await get(admin.user.id)
    t.equal(stillThere.json<AdminUser>().disabled, false, 'the admin was not disabled by the viewer')

    const ok = await gw.call('GET', '/auth/admin/users', { headers: asAdmin })
    t.equal(ok.status, 200, 'an admin (role admin = *) may')
    const adminPat = await patOf(gw, admin.token)
    assertForbidden(t, await gw.call('GET', '/auth/admin/users', { headers: bearer(adminPat) }), 'an admin’s PAT')
    assertForbidden(t, await gw.call('PATCH', `/auth/admin/users/${viewer.user.id}`, { json: { disabled: true }, headers: bearer(adminPat) }), 'an admin’s PAT, PATCH')
    t.equal((await get(viewer.user.id)).json<AdminUser>().disabled, false, 'nothing changed')
    assertCode(t, await gw.call('GET', '/auth/admin/users'), 401, 'GH_UNAUTHENTICATED', 'anonymous')
  })

  await t.test('list: ?limit=2 pages through every user exactly once', async (t) => {
    for (let i = 0; i < 5; i++) await register(gw, uniqueEmail(`page${i}`))
    const all = await db.query<{ id: string }>('SELECT id::text AS id FROM users ORDER BY created_at, id')
    const expected = all.rows.map((row) => row.id)
    t.ok(expected.length >= 7, `${expected.length} users`)

    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const query: string = cursor === null ? '?limit=2' : `?limit=2&cursor=${encodeURIComponent(cursor)}`
      const response = await gw.call('GET', `/auth/admin/users${query}`, { headers: asAdmin })
      t.equal(response.status, 200, response.text)
      const page = response.json<Page>()
      t.ok(page.items.length <= 2, 'at most 2 per page')
      for (const item of page.items) {
        t.same(Object.keys(item).sort(), ADMIN_USER_KEYS, 'a user as the admin sees it, nothing more')
        seen.push(item.id)
      }
      cursor = page.next_cursor
      if (++pages > expected.length) break
    } while (cursor !== null)
    t.equal(pages, Math.ceil(expected.length / 2), 'as many pages as needed, no empty trailing page')
    t.equal(new Set(seen).size, seen.length, 'no duplicates')
    t.same(seen, expected, 'every user, oldest first')

    const whole = (await gw.call('GET', '/auth/admin/users?limit=100', { headers: asAdmin })).json<Page>()
    t.same(whole.items.map((item) => item.id), expected)
    t.equal(whole.next_cursor, null)
  })

  await t.test('list: a bad limit or cursor is 400', async (t) => {
    for (const limit of ['0', '101', 'abc', '-1', '1.5', '', '2&limit=3', '1e1']) {
      assertCode(t, await gw.call('GET', `/auth/admin/users?limit=${limit}`, { headers: asAdmin }), 400, 'GH_VALIDATION', `limit=${limit}`)
    }
    const bogus = [
      'not a cursor!',
      'abc',
      Buffer.from('["x","y"]').toString('base64url'),
      Buffer.from('{"a":1}').toString('base64url'),
      Buffer.from('["2026-01-01T00:00:00.000000Z","not-a-uuid"]').toString('base64url'),
      'A'.repeat(600),
    ]
    for (const cursor of bogus) {
      const response = await gw.call('GET', `/auth/admin/users?cursor=${encodeURIComponent(cursor)}`, { headers: asAdmin })
      assertCode(t, response, 400, 'GH_VALIDATION', `cursor ${cursor.slice(0, 20)}`)
    }
    assertCode(t, await gw.call('GET', '/auth/admin/users?sort=email', { headers: asAdmin }), 400, 'GH_VALIDATION', 'an unknown parameter')
  })

  await t.test('get: the user; 404 for an unknown id and for a non-UUID', async (t) => {
    const target = await signUp(gw, 'target')
    const response = await get(target.user.id)
    t.equal(response.status, 200, response.text)
    const body = response.json<AdminUser>()
    t.same(Object.keys(body).sort(), ADMIN_USER_KEYS)
    t.equal(body.email, target.user.email)
    t.same(body.roles, ['viewer'])
    t.equal(body.disabled, false)
    t.notOk(/password|hash/i.test(response.text), 'no password hash')
    assertCode(t, await get('00000000-0000-4000-8000-000000000000'), 404, 'GH_NOT_FOUND', 'an unknown UUID')
    assertCode(t, await get('not-a-uuid'), 404, 'GH_NOT_FOUND', 'not a UUID')
    assertCode(t, await patch('not-a-uuid', { disabled: true }), 404, 'GH_NOT_FOUND', 'PATCH not a UUID')
    assertCode(t, await patch('00000000-0000-4000-8000-000000000000', { roles: ['viewer'] }), 404, 'GH_NOT_FOUND', 'PATCH unknown')
    assertCode(t, await gw.call('DELETE', '/auth/admin/users/00000000-0000-4000-8000-000000000000', { headers: asAdmin }), 404, 'GH_NOT_FOUND', 'DELETE unknown')
    assertCode(t, await gw.call('DELETE', '/auth/admin/users/not-a-uuid', { headers: asAdmin }), 404, 'GH_NOT_FOUND', 'DELETE not a UUID')
  })

  await t.test('PATCH roles: applied; an unknown role is 400 and changes nothing', async (t) => {
    const target = await signUp(gw, 'roles')
    const changed = await patch(target.user.id, { roles: ['operator', 'viewer'] })
    t.equal(changed.status, 200, changed.text)
    t.same(changed.json<AdminUser>().roles.sort(), ['operator', 'viewer'])
    const me = await gw.call('GET', '/auth/me', { headers: bearer(target.token) })
    t.same(me.json<{ permissions: string[] }>().permissions.sort(), ['app:read', 'app:write'], 'the user’s session has the new permissions at once')

    assertCode(t, await patch(target.user.id, { roles: ['viewer', 'superuser'] }), 400, 'GH_VALIDATION', 'an unknown role')
    assertCode(t, await patch(target.user.id, { roles: ['superuser'], disabled: true }), 400, 'GH_VALIDATION', 'an unknown role with disabled')
    const after = (await get(target.user.id)).json<AdminUser>()
    t.same(after.roles.sort(), ['operator', 'viewer'], 'roles unchanged')
    t.equal(after.disabled, false, 'not disabled either')

    const none = await patch(target.user.id, { roles: [] })
    t.equal(none.status, 200, 'no roles at all is allowed')
    t.same(none.json<AdminUser>().roles, [])
  })

  await t.test('PATCH with no fields, extra fields or wrong types is 400', async (t) => {
    const target = await signUp(gw, 'shape')
    for (const body of [{}, { roles: ['viewer'], extra: 1 }, { email: 'x@example.com' }, { disabled: 'yes' }, { roles: 'viewer' }, { roles: ['viewer', 'viewer'] }, [], 'x']) {
      assertCode(t, await patch(target.user.id, body), 400, 'GH_VALIDATION', JSON.stringify(body))
    }
    const unchanged = (await get(target.user.id)).json<AdminUser>()
    t.same(unchanged.roles, ['viewer'])
    t.equal(unchanged.disabled, false)
  })

  await t.test('PATCH disabled: sessions and PATs refused at once, login 401; re-enabled: login works', async (t) => {
    const email = uniqueEmail('disabled')
    const target = await (async () => {
      await register(gw, email)
      return login(gw, email)
    })()
    const cookieSession = await login(gw, email)
    // Never presented while the user is disabled: only the PATCH itself can end it.
    const untouched = await login(gw, email)
    const pat = await patOf(gw, target.token)
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(pat) })).status, 200, 'the PAT works (and is cached)')
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(target.token) })).status, 200, 'the session works')
    t.equal((await gw.call('GET', '/app/x', { headers: sessionCookie(gw, cookieSession.token) })).status, 200, 'the cookie works')

    const disabled = await patch(target.user.id, { disabled: true })
    t.equal(disabled.status, 200, disabled.text)
    t.equal(disabled.json<AdminUser>().disabled, true)
    assertCode(t, await gw.call('GET', '/app/x', { headers: bearer(pat) }), 401, 'GH_UNAUTHENTICATED', 'the PAT')
    assertCode(t, await gw.call('GET', '/app/x', { headers: bearer(target.token) }), 401, 'GH_UNAUTHENTICATED', 'the bearer session')
    assertCode(t, await gw.call('GET', '/auth/me', { headers: bearer(target.token) }), 401, 'GH_UNAUTHENTICATED', 'the bearer session on /auth/me')
    const cookie = await gw.call('GET', '/app/x', { headers: { ...sessionCookie(gw, cookieSession.token), accept: 'text/html' } })
    t.equal(cookie.status, 302, 'the cookie no longer signs a browser in')
    assertCode(t, await gw.call('GET', '/auth/me', { headers: sessionCookie(gw, cookieSession.token) }), 401, 'GH_UNAUTHENTICATED', 'the cookie on /auth/me')
    assertCode(t, await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } }), 401, 'GH_INVALID_CREDENTIALS', 'login')
    const listed = (await gw.call('GET', '/auth/admin/users?limit=100', { headers: asAdmin })).json<Page>()
    t.equal(listed.items.find((item) => item.id === target.user.id)?.disabled, true, 'listed as disabled')

    const enabled = await patch(target.user.id, { disabled: false })
    t.equal(enabled.status, 200, enabled.text)
    t.equal(enabled.json<AdminUser>().disabled, false)
    const again = await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
    t.equal(again.status, 200, 'login works again')
    assertCode(t, await gw.call('GET', '/auth/me', { headers: bearer(target.token) }), 401, 'GH_UNAUTHENTICATED', 'the sessions ended by disabling stay ended')
    assertCode(t, await gw.call('GET', '/auth/me', { headers: bearer(untouched.token) }), 401, 'GH_UNAUTHENTICATED', 'even one not used meanwhile')
  })

  await t.test('DELETE: 204, the user is gone, its PATs and sessions refused', async (t) => {
    const email = uniqueEmail('deleted')
    await register(gw, email)
    const target = await login(gw, email)
    const pat = await patOf(gw, target.token)
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(pat) })).status, 200)

    const deleted = await gw.call('DELETE', `/auth/admin/users/${target.user.id}`, { headers: asAdmin })
    t.equal(deleted.status, 204, deleted.text)
    t.equal(deleted.text, '')
    assertCode(t, await get(target.user.id), 404, 'GH_NOT_FOUND', 'the user')
    assertCode(t, await gw.call('GET', '/app/x', { headers: bearer(pat) }), 401, 'GH_UNAUTHENTICATED', 'the PAT')
    assertCode(t, await gw.call('GET', '/auth/me', { headers: bearer(target.token) }), 401, 'GH_UNAUTHENTICATED', 'the session')
    assertCode(t, await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } }), 401, 'GH_INVALID_CREDENTIALS', 'login')
    const tokens = await db.query<{ count: number }>('SELECT count(*)::int AS count FROM personal_access_tokens WHERE user_id = $1', [target.user.id])
    t.equal(Number(tokens.rows[0]?.count), 0, 'its PATs are gone from the database')
    assertCode(t, await gw.call('DELETE', `/auth/admin/users/${target.user.id}`, { headers: asAdmin }), 404, 'GH_NOT_FOUND', 'deleting twice')
    // The address is free again.
    t.equal((await gw.call('POST', '/auth/register', { json: { email, password: PASSWORD } })).status, 201, 'the email can register again')
  })

  await t.test('cookie-authenticated admin calls need the gateway’s Origin', async (t) => {
    const target = await signUp(gw, 'csrf')
    const cookie = sessionCookie(gw, admin.token)
    const read = await gw.call('GET', `/auth/admin/users/${target.user.id}`, { headers: cookie })
    t.equal(read.status, 200, 'a GET needs no Origin')

    const attempts: [string, Record<string, string>][] = [
      ['no Origin or Referer', cookie],
      ['another Origin', { ...cookie, origin: 'https://evil.example' }],
      ['Origin null', { ...cookie, origin: 'null' }],
      ['a Referer of another origin', { ...cookie, referer: 'https://evil.example/page' }],
      ['Sec-Fetch-Site: cross-site', { ...browser(gw, admin.token), 'sec-fetch-site': 'cross-site' }],
      ['an origin differing only in scheme', { ...cookie, origin: PUBLIC_URL.replace('https:', 'http:') }],
    ]
    for (const [what, headers] of attempts) {
      assertCode(t, await gw.call('PATCH', `/auth/admin/users/${target.user.id}`, { json: { disabled: true }, headers }), 403, 'GH_CSRF', `PATCH, ${what}`)
      assertCode(t, await gw.call('DELETE', `/auth/admin/users/${target.user.id}`, { headers }), 403, 'GH_CSRF', `DELETE, ${what}`)
    }
    const unchanged = (await get(target.user.id)).json<AdminUser>()
    t.equal(unchanged.disabled, false, 'neither disabled')
    t.equal((await get(target.user.id)).status, 200, 'nor deleted')

    const sameOrigin = await gw.call('PATCH', `/auth/admin/users/${target.user.id}`, { json: { roles: ['operator'] }, headers: browser(gw, admin.token) })
    t.equal(sameOrigin.status, 200, 'the gateway’s own Origin is accepted')
    const referer = await gw.call('PATCH', `/auth/admin/users/${target.user.id}`, {
      json: { roles: ['viewer'] },
      headers: { ...cookie, referer: `${PUBLIC_URL}/admin` },
    })
    t.equal(referer.status, 200, 'without Origin, a same-origin Referer is accepted')
    const bearerCall = await gw.call('PATCH', `/auth/admin/users/${target.user.id}`, { json: { roles: ['viewer'] }, headers: asAdmin })
    t.equal(bearerCall.status, 200, 'a bearer call needs no Origin')
  })
})

t.test('closed registration: anonymous sign-up refused, an admin creates users', async (t) => {
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.auth.registration = 'closed'
    },
  })
  const adminEmail = uniqueEmail('closed-admin')
  await gw.runtime.users.register({ email: adminEmail, password: PASSWORD }, { roles: ['admin'] })
  const admin = await login(gw, adminEmail)

  const anonymous = await gw.call('POST', '/auth/register', { json: { email: uniqueEmail('anon'), password: PASSWORD } })
  assertCode(t, anonymous, 403, 'GH_REGISTRATION_CLOSED', 'anonymous')

  const viewerEmail = uniqueEmail('closed-viewer')
  await gw.runtime.users.register({ email: viewerEmail, password: PASSWORD })
  const viewer = await login(gw, viewerEmail)
  assertCode(t, await gw.call('POST', '/auth/register', { json: { email: uniqueEmail('v'), password: PASSWORD }, headers: bearer(viewer.token) }), 403, 'GH_REGISTRATION_CLOSED', 'a viewer')
  const adminPat = await patOf(gw, admin.token)
  t.equal((await gw.call('POST', '/auth/register', { json: { email: uniqueEmail('p'), password: PASSWORD }, headers: bearer(adminPat) })).status, 403, 'an admin’s PAT')

  const createdEmail = uniqueEmail('created')
  const created = await gw.call('POST', '/auth/register', { json: { email: createdEmail, password: PASSWORD, name: 'New' }, headers: bearer(admin.token) })
  t.equal(created.status, 201, created.text)
  t.equal(created.json<{ email: string }>().email, createdEmail)
  t.same(created.json<{ roles: string[] }>().roles, ['viewer'], 'default_roles')
  t.equal((await gw.call('POST', '/auth/login', { json: { email: createdEmail, password: PASSWORD } })).status, 200, 'the new user can log in')

  const viaCookie = await gw.call('POST', '/auth/register', { json: { email: uniqueEmail('cookie'), password: PASSWORD }, headers: browser(gw, admin.token) })
  t.equal(viaCookie.status, 201, 'an admin’s browser session (same Origin) may too')
  const crossSite = await gw.call('POST', '/auth/register', {
    json: { email: uniqueEmail('evil'), password: PASSWORD },
    headers: { ...sessionCookie(gw, admin.token), origin: 'https://evil.example' },
  })
  t.equal(crossSite.status, 403, 'but not from another origin')
  assertCode(t, await gw.call('POST', '/auth/register', { json: { email: createdEmail, password: PASSWORD }, headers: bearer(admin.token) }), 409, 'GH_EMAIL_TAKEN', 'an existing email')
})
