/**
 * GET /auth/admin/audit (SPEC §5) on both databases: users:manage needed; sign-ins, failures
 * with their reason, lockouts, role changes and token events, newest first; `?user=` (id or
 * email, an address without an account included), `?type=` (a type or a family) and keyset
 * pages through `cursor`; malformed arguments are 400 GH_VALIDATION.
 */
import t from 'tap'
import { bearer, login, PASSWORD, register, signUp, uniqueEmail } from './helpers/auth-client.js'
import { assertCode } from './helpers/assert-code.js'
import { databaseBackends } from './helpers/backends.js'
import { startTestGateway } from './helpers/gateway.js'

interface AuditEvent {
  id: string
  type: string
  user_id: string | null
  email: string | null
  ip: string | null
  details: Record<string, unknown>
  created_at: string
}

interface Page {
  items: AuditEvent[]
  next_cursor: string | null
}

const EVENT_KEYS = ['created_at', 'details', 'email', 'id', 'ip', 'type', 'user_id']

for (const backend of databaseBackends()) {
  t.test(`the audit API (${backend.name})`, async (t) => {
    const gw = await startTestGateway(t, { database: backend, configure: (raw) => (raw.auth.lockout = { max_failures: 3, window: '15m' }) })
    const adminEmail = uniqueEmail('admin')
    const adminUser = await register(gw, adminEmail)
    await gw.runtime.users.setRoles(adminUser.id, ['admin'])
    const admin = await login(gw, adminEmail)
    const as = bearer(admin.token)
    const audit = async (query = ''): Promise<Page> => {
      const response = await gw.call('GET', `/auth/admin/audit${query}`, { headers: as })
      t.equal(response.status, 200, `GET /auth/admin/audit${query}`, { body: response.text.slice(0, 300) })
      return response.json<Page>()
    }

    // What an operator wants to find: a user who signs in, fails, gets locked out, gets a new
    // role and a token that is then revoked; and failures for an address without an account.
    const email = uniqueEmail('alice')
    const alice = await register(gw, email)
    await login(gw, email)
    for (let i = 0; i < 3; i++) await gw.call('POST', '/auth/login', { json: { email, password: 'not the password at all' } })
    const ghost = uniqueEmail('ghost')
    await gw.call('POST', '/auth/login', { json: { email: ghost, password: PASSWORD } })
    const patched = await gw.call('PATCH', `/auth/admin/users/${alice.id}`, { json: { roles: ['operator'] }, headers: as })
    t.equal(patched.status, 200)
    await gw.runtime.throttle.clear(email)
    const aliceSession = await login(gw, email)
    const token = (await gw.call('POST', '/auth/tokens', { json: { name: 'ci' }, headers: bearer(aliceSession.token) })).json<{ id: string }>()
    t.equal((await gw.call('DELETE', `/auth/tokens/${token.id}`, { headers: bearer(aliceSession.token) })).status, 204)

    await t.test("one user's trail, newest first, each kind of event with what explains it", async (t) => {
      const { items, next_cursor } = await audit(`?user=${alice.id}`)
      t.equal(next_cursor, null, 'one page')
      t.same(
        items.map((e) => e.type),
        ['token.revoked', 'token.created', 'login.succeeded', 'user.roles_changed', 'login.locked', 'login.failed', 'login.failed', 'login.failed', 'login.succeeded', 'user.registered'],
      )
      for (const event of items) t.same(Object.keys(event).sort(), EVENT_KEYS, `${event.type}: only the documented fields`)
      t.ok(items.every((e) => e.user_id === alice.id && e.email === email), 'all about alice')
      const failures = items.filter((e) => e.type === 'login.failed')
      t.ok(failures.every((e) => e.details.reason === 'wrong_password'), 'failures say why')
      t.notOk(JSON.stringify(items).includes('not the password at all'), 'never the password tried')
      t.match(items.find((e) => e.type === 'user.roles_changed')?.details, { from: ['viewer'], to: ['operator'], actor_id: adminUser.id })
      t.match(items.find((e) => e.type === 'token.created')?.details, { token_id: token.id, name: 'ci' })
      const ids = items.map((e) => BigInt(e.id))
      t.ok(ids.every((id, i) => i === 0 || id < ids[i - 1]!), 'ids decrease')
    })

    await t.test('?user= by email, ?type= a type or a family', async (t) => {
      const byEmail = await audit(`?user=${encodeURIComponent(email.toUpperCase())}`)
      t.equal(byEmail.items.length, 10, 'the same trail by email (normalised)')
      const unknown = await audit(`?user=${encodeURIComponent(ghost)}`)
      t.same(unknown.items.map((e) => [e.type, e.user_id, e.details.reason]), [['login.failed', null, 'unknown_email']], 'an address without an account')
      const failed = await audit(`?user=${alice.id}&type=login.failed`)
      t.same(failed.items.map((e) => e.type), ['login.failed', 'login.failed', 'login.failed'])
      const logins = await audit(`?user=${alice.id}&type=login`)
      t.same(new Set(logins.items.map((e) => e.type)), new Set(['login.succeeded', 'login.failed', 'login.locked']), 'the login family')
      t.equal(logins.items.length, 6)
      const tokens = await audit('?type=token')
      t.same(tokens.items.map((e) => e.type), ['token.revoked', 'token.created'])
      t.same((await audit('?type=nothing.here')).items, [], 'an unknown type: nothing')
    })

    await t.test('keyset pages: every event once, in order, however many are written meanwhile', async (t) => {
      const all = await audit('?limit=100')
      const seen: string[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const page: Page = await audit(`?limit=3${cursor ? `&cursor=${cursor}` : ''}`)
        seen.push(...page.items.map((e) => e.id))
        cursor = page.next_cursor
        // A new event while paging lands before the first page, never in the ones to come.
        if (pages++ === 0) await gw.call('POST', '/auth/login', { json: { email: uniqueEmail('late'), password: PASSWORD } })
        t.ok(page.items.length <= 3)
      } while (cursor !== null)
      t.same(seen, all.items.map((e) => e.id), 'the pages add up to the whole list')
      t.ok(pages >= 5, 'several pages')
    })

    await t.test('refusals', async (t) => {
      assertCode(t, await gw.call('GET', '/auth/admin/audit'), 401, 'GH_UNAUTHENTICATED', 'anonymous')
      const viewer = await signUp(gw, 'viewer')
      const body = assertCode(t, await gw.call('GET', '/auth/admin/audit', { headers: bearer(viewer.token) }), 403, 'GH_FORBIDDEN', 'a viewer')
      t.equal(body.missing_permission, 'users:manage')
      for (const query of [
        '?cursor=bm9wZQ',
        '?cursor=' + Buffer.from('before:-1').toString('base64url'),
        '?cursor=' + Buffer.from('before:99999999999999999999').toString('base64url'),
        '?limit=0',
        '?limit=101',
        '?type=' + encodeURIComponent("login'; --"),
        '?type=Login',
        '?user=not-a-uuid',
        '?user=' + encodeURIComponent('bad@@example.com'),
        '?since=yesterday',
      ]) {
        assertCode(t, await gw.call('GET', `/auth/admin/audit${query}`, { headers: as }), 400, 'GH_VALIDATION', query)
      }
    })
  })
}
