/**
 * PATs on the admin API (SPEC §3): a PAT whose own permission list was given explicitly and
 * names `users:manage` or `*` is automation and may call /auth/admin/*, acting with that list ∩
 * its owner's current permissions; a PAT with all of its owner's permissions (no list) may not,
 * nor one whose list lacks the permission; and every other /auth endpoint but GET /auth/me
 * stays 403 GH_FORBIDDEN for every PAT.
 */
import t, { type Test } from 'tap'
import { bearer, login, register, signUp, uniqueEmail, type LoggedIn } from './helpers/auth-client.js'
import { assertCode } from './helpers/assert-code.js'
import { startTestGateway, type Response, type TestGateway } from './helpers/gateway.js'

async function adminOf(gw: TestGateway): Promise<LoggedIn> {
  const email = uniqueEmail('admin')
  const user = await register(gw, email)
  await gw.runtime.users.setRoles(user.id, ['admin'])
  return login(gw, email)
}

async function patOf(gw: TestGateway, session: string, permissions?: string[]): Promise<string> {
  const json = permissions === undefined ? { name: 'pat' } : { name: 'pat', permissions }
  const response = await gw.call('POST', '/auth/tokens', { json, headers: bearer(session) })
  if (response.status !== 201) throw new Error(`POST /auth/tokens: ${response.status} ${response.text}`)
  return response.json<{ token: string }>().token
}

function refusedAsPat(t: Test, response: Response, what: string): void {
  const body = assertCode(t, response, 403, 'GH_FORBIDDEN', what)
  t.equal(body.reason, 'pat_not_allowed', `${what}: because it is a PAT`)
}

t.test('PATs on the admin API', async (t) => {
  const gw = await startTestGateway(t)
  const admin = await adminOf(gw)
  const viewer = await signUp(gw, 'viewer')
  const adminEndpoints = [
    ['GET', '/auth/admin/users', undefined],
    ['GET', `/auth/admin/users/${viewer.user.id}`, undefined],
    ['PATCH', `/auth/admin/users/${viewer.user.id}`, { disabled: true }],
    ['DELETE', `/auth/admin/users/${viewer.user.id}`, undefined],
    ['GET', '/auth/admin/audit', undefined],
  ] as const
  const viewerState = async () => (await gw.runtime.users.get(viewer.user.id))?.disabled

  await t.test('an explicit list naming users:manage: the admin API works, with the list as permissions', async (t) => {
    const pat = await patOf(gw, admin.token, ['users:manage'])
    const as = bearer(pat)
    t.equal((await gw.call('GET', '/auth/admin/users', { headers: as })).status, 200, 'list users')
    t.equal((await gw.call('GET', `/auth/admin/users/${viewer.user.id}`, { headers: as })).status, 200, 'read one')
    t.equal((await gw.call('GET', '/auth/admin/audit', { headers: as })).status, 200, 'read the audit trail')
    const disabled = await gw.call('PATCH', `/auth/admin/users/${viewer.user.id}`, { json: { disabled: true }, headers: as })
    t.equal(disabled.status, 200, 'disable a user', { body: disabled.text })
    t.equal(await viewerState(), true, 'disabled')
    t.equal((await gw.call('PATCH', `/auth/admin/users/${viewer.user.id}`, { json: { disabled: false }, headers: as })).status, 200)
    t.equal(await viewerState(), false, 'and enabled again')

    const me = await gw.call('GET', '/auth/me', { headers: as })
    t.equal(me.status, 200, 'GET /auth/me')
    t.same(me.json<{ permissions: string[] }>().permissions, ['users:manage'], "the token's list, not the owner's *")

    const events = await gw.runtime.audit.list({ userId: viewer.user.id, limit: 5 })
    t.match(events.find((e) => e.type === 'user.disabled')?.details, { actor_id: admin.user.id }, 'audited as the owner’s action')
  })

  await t.test('an explicit list naming *: the admin API works', async (t) => {
    const pat = await patOf(gw, admin.token, ['*'])
    t.equal((await gw.call('GET', '/auth/admin/users', { headers: bearer(pat) })).status, 200)
    t.equal((await gw.call('GET', '/auth/admin/audit', { headers: bearer(pat) })).status, 200)
  })

  await t.test('a PAT with all of its owner’s permissions (no list) is refused on every admin endpoint', async (t) => {
    const pat = await patOf(gw, admin.token)
    for (const [method, path, json] of adminEndpoints) {
      refusedAsPat(t, await gw.call(method, path, { json, headers: bearer(pat) }), `${method} ${path}`)
    }
    t.equal(await viewerState(), false, 'nothing changed')
    t.ok(await gw.runtime.users.get(viewer.user.id), 'nobody deleted')
  })

  await t.test('an explicit list without users:manage is refused for the missing permission', async (t) => {
    const pat = await patOf(gw, admin.token, ['app:read'])
    for (const [method, path, json] of adminEndpoints) {
      const body = assertCode(t, await gw.call(method, path, { json, headers: bearer(pat) }), 403, 'GH_FORBIDDEN', `${method} ${path}`)
      t.equal(body.missing_permission, 'users:manage')
    }
    t.equal(await viewerState(), false, 'nothing changed')
  })

  await t.test('every other /auth endpoint refuses even an admin automation PAT', async (t) => {
    const pat = await patOf(gw, admin.token, ['*'])
    const as = bearer(pat)
    for (const [method, path, json] of [
      ['POST', '/auth/tokens', { name: 'minted by a PAT' }],
      ['GET', '/auth/tokens', undefined],
      ['DELETE', '/auth/tokens/00000000-0000-4000-8000-000000000000', undefined],
      ['PATCH', '/auth/me', { name: 'Renamed' }],
      ['DELETE', '/auth/me', { password: 'correct horse battery staple' }],
      ['POST', '/auth/password', { current_password: 'correct horse battery staple', new_password: 'another long passphrase ok' }],
      ['GET', '/auth/sessions', undefined],
      ['DELETE', '/auth/sessions/x', undefined],
      ['POST', '/auth/logout', undefined],
      ['POST', '/auth/logout-all', undefined],
      ['POST', '/auth/register', { email: uniqueEmail('by-pat'), password: 'correct horse battery staple' }],
    ] as const) {
      refusedAsPat(t, await gw.call(method, path, { json, headers: as }), `${method} ${path}`)
    }
    t.equal((await gw.runtime.pats.list(admin.user.id)).filter((p) => p.name === 'minted by a PAT').length, 0, 'no PAT minted')
    t.ok(await gw.runtime.users.get(admin.user.id), 'the owner still exists')
    t.equal((await gw.call('GET', '/auth/me', { headers: as })).status, 200, 'GET /auth/me stays allowed')
  })

  await t.test("the owner losing the role: the PAT loses the admin API at once, and gets it back with it", async (t) => {
    const owner = await adminOf(gw)
    const pat = await patOf(gw, owner.token, ['users:manage'])
    t.equal((await gw.call('GET', '/auth/admin/users', { headers: bearer(pat) })).status, 200, 'while an admin')
    await gw.runtime.users.setRoles(owner.user.id, ['viewer'])
    const body = assertCode(t, await gw.call('GET', '/auth/admin/users', { headers: bearer(pat) }), 403, 'GH_FORBIDDEN', 'after losing admin')
    t.equal(body.missing_permission, 'users:manage')
    const refused = await gw.call('PATCH', `/auth/admin/users/${viewer.user.id}`, { json: { disabled: true }, headers: bearer(pat) })
    assertCode(t, refused, 403, 'GH_FORBIDDEN', 'PATCH after losing admin')
    t.equal(await viewerState(), false, 'nothing changed')
    t.same((await gw.call('GET', '/auth/me', { headers: bearer(pat) })).json<{ permissions: string[] }>().permissions, [], 'no permissions left')
    await gw.runtime.users.setRoles(owner.user.id, ['admin'])
    t.equal((await gw.call('GET', '/auth/admin/users', { headers: bearer(pat) })).status, 200, 'admin again')
  })

  await t.test('a session of a user without users:manage is still refused', async (t) => {
    const other = await signUp(gw, 'other')
    for (const [method, path, json] of adminEndpoints) {
      const body = assertCode(t, await gw.call(method, path, { json, headers: bearer(other.token) }), 403, 'GH_FORBIDDEN', `${method} ${path}`)
      t.equal(body.missing_permission, 'users:manage')
    }
  })
})
