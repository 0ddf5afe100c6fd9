/**
 * The /auth API over every storage combination (PGlite or PostgreSQL × memory or Redis), so
 * that CI drives real PostgreSQL and Redis through HTTP: a representative account flow, what
 * survives a restart (users always; sessions only in Redis), two replicas sharing one Redis,
 * and a store closed under a running gateway answering 503.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { openDatabase } from '../src/storage/open.js'
import { databaseBackends, sessionStoreBackends } from './helpers/backends.js'
import {
  assertError,
  bearer,
  browser,
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

const databases = databaseBackends()
const stores = sessionStoreBackends()

for (const database of databases) {
  for (const sessionStore of stores) {
    t.test(`${database.name} + ${sessionStore.name}: register, login, me, password, logout, delete`, async (t) => {
      const gw = await startTestGateway(t, { database, sessionStore })
      t.equal(gw.runtime.db.kind, database.name === 'pglite' ? 'embedded' : 'postgres')
      t.equal(gw.runtime.store.kind, sessionStore.name)

      const email = uniqueEmail('flow')
      const user = await register(gw, `  ${email.toUpperCase()} `, PASSWORD, 'Flo')
      t.equal(user.email, email, 'registered, normalised')
      assertError(t, await gw.call('POST', '/auth/register', { json: { email, password: PASSWORD } }), 409, 'GH_EMAIL_TAKEN')
      const first = await login(gw, email)
      const second = await login(gw, email)
      t.not(first.token, second.token)
      const bystander = await signUp(gw, 'flow-bystander')

      const me = await gw.call('GET', '/auth/me', { headers: bearer(first.token) })
      t.equal(me.status, 200)
      t.same(me.json<{ email: string; auth: { method: string } }>().email, email)
      t.equal(me.json<{ auth: { method: string } }>().auth.method, 'session')
      t.equal((await gw.call('GET', '/auth/me', { headers: sessionCookie(gw, second.token) })).status, 200, 'me by cookie')
      const renamed = await gw.call('PATCH', '/auth/me', { json: { name: 'Renamed' }, headers: browser(gw, second.token) })
      t.equal(renamed.json().name, 'Renamed')
      const sessions = await gw.call('GET', '/auth/sessions', { headers: bearer(first.token) })
      t.equal(sessions.json<{ items: unknown[] }>().items.length, 2, 'two sessions listed')

      const changed = await gw.call('POST', '/auth/password', {
        json: { current_password: PASSWORD, new_password: OTHER_PASSWORD },
        headers: bearer(first.token),
      })
      t.equal(changed.status, 204, changed.text)
      t.equal(await meStatus(gw, first.token), 200, 'the changing session survives')
      t.equal(await meStatus(gw, second.token), 401, 'the other session ended')
      t.equal(await meStatus(gw, bystander.token), 200, "another user's session did not")
      assertError(t, await gw.call('POST', '/auth/login', { json: { email, password: PASSWORD } }), 401, 'GH_INVALID_CREDENTIALS', 'old password')

      const logout = await gw.call('POST', '/auth/logout', { headers: bearer(first.token) })
      t.equal(logout.status, 204)
      t.equal(await meStatus(gw, first.token), 401, 'logout revoked the session server-side')

      const third = await login(gw, email, OTHER_PASSWORD)
      const wrong = await gw.call('DELETE', '/auth/me', { json: { password: PASSWORD }, headers: bearer(third.token) })
      assertError(t, wrong, 401, 'GH_INVALID_CREDENTIALS', 'delete with the old password')
      const deleted = await gw.call('DELETE', '/auth/me', { json: { password: OTHER_PASSWORD }, headers: bearer(third.token) })
      t.equal(deleted.status, 204, deleted.text)
      t.equal((await gw.runtime.db.query('SELECT 1 FROM users WHERE id = $1', [user.id])).rows.length, 0, 'the row is gone')
      t.equal(await meStatus(gw, third.token), 401, 'the session ended')
      assertError(t, await gw.call('POST', '/auth/login', { json: { email, password: OTHER_PASSWORD } }), 401, 'GH_INVALID_CREDENTIALS', 'login after delete')
      t.equal(await meStatus(gw, bystander.token), 200, 'the bystander is untouched throughout')
    })

    t.test(`${database.name} + ${sessionStore.name}: a restart keeps users${sessionStore.name === 'redis' ? ' and sessions' : ''}`, async (t) => {
      const url = await database.url(t)
      const keyPrefix = `gh-test:${randomBytes(6).toString('hex')}:`
      const email = uniqueEmail('restart')

      const db1 = await openDatabase(url)
      const store1 = await sessionStore.open(t, { keyPrefix })
      const before = await startTestGateway(t, { db: db1, store: store1 })
      await register(before, email)
      const { token } = await login(before, email)
      t.equal(await meStatus(before, token), 200)
      await before.close()
      await store1.close()
      await db1.close()

      const db2 = await openDatabase(url)
      t.teardown(() => db2.close())
      const store2 = await sessionStore.open(t, { keyPrefix })
      const after = await startTestGateway(t, { db: db2, store: store2 })
      t.ok(await login(after, email), 'the user logs in on the new gateway')
      assertError(t, await after.call('POST', '/auth/register', { json: { email, password: PASSWORD } }), 409, 'GH_EMAIL_TAKEN', 'and is still registered')
      if (sessionStore.name === 'redis') {
        t.equal(await meStatus(after, token), 200, 'a session from before the restart still works (Redis)')
      } else {
        t.equal(await meStatus(after, token), 401, 'memory sessions end with the process')
      }
    })
  }
}

const redis = stores.find((store) => store.name === 'redis')
if (redis) {
  t.test('two replicas sharing one database and one Redis', async (t) => {
    const db = await databases[databases.length - 1]!.open(t)
    const keyPrefix = `gh-test:${randomBytes(6).toString('hex')}:`
    const a = await startTestGateway(t, { db, store: await redis.open(t, { keyPrefix }) })
    const b = await startTestGateway(t, { db, store: await redis.open(t, { keyPrefix }) })
    const email = uniqueEmail('replica')
    await register(a, email)
    const session = await login(a, email)
    t.equal(await meStatus(b, session.token), 200, 'a session made on one replica works on the other')
    const other = await login(b, email)
    t.equal((await a.call('POST', '/auth/logout', { headers: bearer(other.token) })).status, 204)
    t.equal(await meStatus(b, other.token), 401, 'a logout on one replica is seen by the other at once')
    for (let i = 0; i < 3; i++) await a.call('POST', '/auth/login', { json: { email, password: 'wrong guess number one' } })
    for (let i = 0; i < 2; i++) await b.call('POST', '/auth/login', { json: { email, password: 'wrong guess number two' } })
    assertError(t, await a.call('POST', '/auth/login', { json: { email, password: PASSWORD } }), 429, 'GH_RATE_LIMITED', 'the lockout counts failures on both replicas')
  })
}

for (const database of databases) {
  for (const sessionStore of stores) {
    t.test(`${database.name} + ${sessionStore.name}: a store closed under a running gateway answers 503`, async (t) => {
      // One database for both gateways: the second closes it, once the first is done with it.
      const db = await database.open(t)
      const storeGw = await startTestGateway(t, { db, sessionStore })
      const session = await signUp(storeGw, 'store-down')
      await storeGw.runtime.store.close()
      assertError(t, await storeGw.call('GET', '/auth/me', { headers: bearer(session.token) }), 503, 'GH_UNAVAILABLE', 'session store down: me')
      assertError(t, await storeGw.call('POST', '/auth/login', { json: { email: session.user.email, password: PASSWORD } }), 503, 'GH_UNAVAILABLE', 'session store down: login')
      t.equal((await storeGw.call('GET', '/health')).status, 503)

      const dbGw = await startTestGateway(t, { db, sessionStore })
      const other = await signUp(dbGw, 'db-down')
      await dbGw.runtime.db.close()
      assertError(t, await dbGw.call('POST', '/auth/login', { json: { email: other.user.email, password: PASSWORD } }), 503, 'GH_UNAVAILABLE', 'database down: login')
      assertError(t, await dbGw.call('GET', '/auth/me', { headers: bearer(other.token) }), 503, 'GH_UNAVAILABLE', 'database down: me')
      t.equal((await dbGw.call('GET', '/health')).status, 503)
      t.equal((await dbGw.call('GET', '/health/live')).status, 200)
    })
  }
}
