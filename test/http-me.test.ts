/**
 * GET, PATCH and DELETE /auth/me and POST /auth/password through the real server: the shapes
 * they answer, permissions from the role map, and what a password change or an account
 * deletion does to sessions, logins and the database.
 */
import t from 'tap'
import {
  assertError,
  bearer,
  browser,
  countRows,
  login,
  meStatus,
  OTHER_PASSWORD,
  PASSWORD,
  register,
  sessionCookie,
  signUp,
  uniqueEmail,
} from './helpers/auth-client.js'
import { startTestGateway } from './helpers/gateway.js'

interface Me {
  id: string
  email: string
  name: string | null
  roles: string[]
  email_verified: boolean
  permissions: string[]
  mfa: { totp: boolean; passkeys: number }
  auth: { method: string; expires_at: string; amr: string[] }
}

t.test('/auth/me and /auth/password', async (t) => {
  const gw = await startTestGateway(t)

  await t.test('GET /auth/me: the identity, by bearer and by cookie', async (t) => {
    const email = uniqueEmail('me')
    const user = await register(gw, email, PASSWORD, 'Mae')
    const session = await login(gw, email)
    const response = await gw.call('GET', '/auth/me', { headers: bearer(session.token) })
    t.equal(response.status, 200, response.text)
    const me = response.json<Me>()
    t.same(Object.keys(me).sort(), ['auth', 'email', 'email_verified', 'id', 'mfa', 'name', 'permissions', 'roles'], 'exactly the documented fields')
    t.same(Object.keys(me.auth).sort(), ['amr', 'expires_at', 'method'])
    t.same(me, {
      id: user.id,
      email,
      name: 'Mae',
      roles: ['viewer'],
      // Registered by themselves, and no link followed yet (SPEC §5).
      email_verified: false,
      permissions: ['app:read'],
      mfa: { totp: false, passkeys: 0 },
      auth: { method: 'session', expires_at: me.auth.expires_at, amr: ['pwd'] },
    })
    t.ok(Date.parse(me.auth.expires_at) > Date.now(), 'expires_at is in the future')
    t.equal(response.headers['cache-control'], 'no-store')

    const byCookie = await gw.call('GET', '/auth/me', { headers: sessionCookie(gw, session.token) })
    t.equal(byCookie.status, 200, 'a GET needs no Origin')
    t.same({ ...byCookie.json<Me>(), auth: null }, { ...me, auth: null }, 'the same identity by cookie')
  })

  await t.test('permissions come from the roles map', async (t) => {
    const session = await signUp(gw, 'roles')
    await gw.runtime.users.setRoles(session.user.id, ['operator'])
    let me = (await gw.call('GET', '/auth/me', { headers: bearer(session.token) })).json<Me>()
    t.same(me.roles, ['operator'], 'a role change applies to the running session')
    t.same([...me.permissions].sort(), ['app:read', 'app:write'])
    await gw.runtime.users.setRoles(session.user.id, ['admin'])
    me = (await gw.call('GET', '/auth/me', { headers: bearer(session.token) })).json<Me>()
    t.same(me.permissions, ['*'], 'admin → *')
    await gw.runtime.users.setRoles(session.user.id, [])
    me = (await gw.call('GET', '/auth/me', { headers: bearer(session.token) })).json<Me>()
    t.same(me.permissions, [], 'no roles, no permissions')
  })

  await t.test('unauthenticated: 401 with WWW-Authenticate', async (t) => {
    const response = await gw.call('GET', '/auth/me')
    assertError(t, response, 401, 'GH_UNAUTHENTICATED')
    t.equal(response.headers['www-authenticate'], 'Bearer realm="gatehouse"')
    t.equal(response.headers['cache-control'], 'no-store')
    const html = await gw.call('GET', '/auth/me', { headers: { accept: 'text/html' } })
    assertError(t, html, 401, 'GH_UNAUTHENTICATED', 'the API answers 401 to browsers too')
  })

  await t.test('PATCH /auth/me: set, change and clear the name', async (t) => {
    const session = await signUp(gw, 'patch')
    let response = await gw.call('PATCH', '/auth/me', { json: { name: '  Grace Hopper ' }, headers: bearer(session.token) })
    t.equal(response.status, 200, response.text)
    const me = response.json<Me>()
    t.equal(me.name, 'Grace Hopper', 'trimmed')
    t.equal(me.id, session.user.id)
    t.equal(me.auth.method, 'session', 'answers the full /auth/me shape')
    t.same(Object.keys(me).sort(), ['auth', 'email', 'email_verified', 'id', 'mfa', 'name', 'permissions', 'roles'])
    t.equal((await gw.call('GET', '/auth/me', { headers: bearer(session.token) })).json<Me>().name, 'Grace Hopper', 'stored')

    response = await gw.call('PATCH', '/auth/me', { json: { name: 'Amazing \u{1F41B}' }, headers: browser(gw, session.token) })
    t.equal(response.status, 200, 'by cookie from the same origin')
    t.equal(response.json<Me>().name, 'Amazing \u{1F41B}')

    response = await gw.call('PATCH', '/auth/me', { json: { name: null }, headers: bearer(session.token) })
    t.equal(response.status, 200)
    t.equal(response.json<Me>().name, null, 'null clears it')

    for (const [json, what] of [
      [{ name: 123 }, 'a number'],
      [{ name: { first: 'A' } }, 'an object'],
      [{ name: 'Ok', email: 'new@example.com' }, 'an extra email field'],
      [{ name: 'Ok', roles: ['admin'] }, 'roles'],
      [{}, 'no name'],
      [{ name: 'bidi\u202Eevil' }, 'an RTL override'],
      [{ name: 'x'.repeat(101) }, '101 characters'],
      [{ name: '' }, 'empty'],
    ] as const) {
      const before = await countRows(gw)
      response = await gw.call('PATCH', '/auth/me', { json, headers: bearer(session.token) })
      assertError(t, response, 400, 'GH_VALIDATION', what)
      t.same(await countRows(gw), before, `${what}: nothing written`)
    }
    const after = (await gw.call('GET', '/auth/me', { headers: bearer(session.token) })).json<Me>()
    t.equal(after.name, null, 'the refused patches changed nothing')
    t.same(after.roles, ['viewer'], 'and certainly not the roles')
  })

  await t.test('DELETE /auth/me with the wrong password: 401, nothing deleted', async (t) => {
    const session = await signUp(gw, 'keep')
    const before = await countRows(gw)
    const response = await gw.call('DELETE', '/auth/me', { json: { password: 'not my password, sorry' }, headers: bearer(session.token) })
    assertError(t, response, 401, 'GH_INVALID_CREDENTIALS')
    const after = await countRows(gw)
    t.equal(after.users, before.users, 'no user deleted')
    t.equal(await meStatus(gw, session.token), 200, 'the session still works')
    t.ok(await login(gw, session.user.email), 'the account still logs in')
  })

  await t.test('DELETE /auth/me: 204, gone, sessions and login refused, the email free again', async (t) => {
    const email = uniqueEmail('leaver')
    const user = await register(gw, email)
    const one = await login(gw, email)
    const two = await login(gw, email)
    const bystander = await signUp(gw, 'stays')
    const before = await countRows(gw)

    const response = await gw.call('DELETE', '/auth/me', { json: { password: PASSWORD }, headers: browser(gw, one.token) })
    t.equal(response.status, 204, response.text)
    t.equal(response.text, '')
    // Checked before any request uses them: a refused session is also cleaned up on use.
    t.same(await gw.runtime.sessions.list(user.id), [], 'every session is removed from the store')
    const rows = await gw.runtime.db.query('SELECT 1 FROM users WHERE id = $1', [user.id])
    t.equal(rows.rows.length, 0, 'the user row is gone')
    t.equal((await countRows(gw)).users, before.users - 1)
    t.equal(await meStatus(gw, one.token), 401, 'the calling session is refused')
    t.equal(await meStatus(gw, two.token), 401, 'every other session is refused')
    t.equal(await meStatus(gw, bystander.token), 200, "another user's session is untouched")
    const again = await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
    assertError(t, again, 401, 'GH_INVALID_CREDENTIALS', 'login refused')
    const reborn = await register(gw, email, OTHER_PASSWORD)
    t.not(reborn.id, user.id, 'the same email registers again, as a new user')
    t.ok(await login(gw, email, OTHER_PASSWORD))
  })

  await t.test('POST /auth/password', async (t) => {
    const email = uniqueEmail('pw')
    await register(gw, email)
    const current = await login(gw, email)
    const other = await login(gw, email)
    const bystander = await signUp(gw, 'pw-bystander')

    let before = await countRows(gw)
    let response = await gw.call('POST', '/auth/password', {
      json: { current_password: 'this is not the password', new_password: OTHER_PASSWORD },
      headers: bearer(current.token),
    })
    assertError(t, response, 401, 'GH_INVALID_CREDENTIALS', 'wrong current password')
    t.equal((await countRows(gw)).users, before.users)
    t.equal(await meStatus(gw, other.token), 200, 'a refused change ends no session')

    for (const [next, what] of [
      ['too short', 'too short'],
      ['passwordpassword', 'a common password'],
      [email, 'the email'],
      ['q'.repeat(129), '129 characters'],
    ] as const) {
      before = await countRows(gw)
      response = await gw.call('POST', '/auth/password', {
        json: { current_password: PASSWORD, new_password: next },
        headers: bearer(current.token),
      })
      assertError(t, response, 400, 'GH_VALIDATION', what)
      t.same(await countRows(gw), before, `${what}: nothing written`)
    }
    t.equal(await meStatus(gw, other.token), 200, 'refused changes end no session')
    t.ok(await login(gw, email), 'and the password is unchanged')

    response = await gw.call('POST', '/auth/password', {
      json: { current_password: PASSWORD, new_password: OTHER_PASSWORD },
      headers: browser(gw, current.token),
    })
    t.equal(response.status, 204, response.text)
    t.equal(await meStatus(gw, current.token), 200, 'the session that changed it still works')
    t.equal(await meStatus(gw, other.token), 401, "the user's other sessions are refused")
    t.equal(await meStatus(gw, bystander.token), 200, "another user's session is untouched")
    const old = await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } })
    assertError(t, old, 401, 'GH_INVALID_CREDENTIALS', 'the old password is refused')
    t.ok(await login(gw, email, OTHER_PASSWORD), 'the new one is accepted')
    const audit = await gw.runtime.db.query("SELECT 1 FROM audit_events WHERE type = 'password.changed' AND email = $1", [email])
    t.equal(audit.rows.length, 1, 'audited once')
  })
})
