/**
 * Two gateways ("replicas") on one database, one session store and one invalidation bus:
 * a session works on both, and disabling its user or changing their roles on one replica
 * takes effect on the other at once, although each caches active users.
 */
import t, { type Test } from 'tap'
import type { InvalidationBus } from '../src/kv/invalidation.js'
import { bearer, signUp } from './helpers/auth-client.js'
import { databaseBackends, invalidationBusBackends, sessionStoreBackends } from './helpers/backends.js'
import { startTestGateway, type RawConfig } from './helpers/gateway.js'
import { startUpstream } from './helpers/upstream.js'


/** The replicas' buses: on Redis when TEST_REDIS_URL is set, else one memory bus. */
function buses(t: Test): Promise<[InvalidationBus, InvalidationBus]> {
  return invalidationBusBackends().at(-1)!.pair(t)
}

t.test('disabling a user, or changing their roles, on one replica applies on the other at once', async (t) => {
  const upstream = await startUpstream(t)
  const db = await databaseBackends().at(-1)!.open(t)
  const store = await sessionStoreBackends().at(-1)!.open(t)
  const [busA, busB] = await buses(t)
  const configure = (raw: RawConfig) => {
    raw.routes = [{ name: 'app', match: '/app', upstream: upstream.url, auth: 'required', permissions: ['app:write'] }]
  }
  const a = await startTestGateway(t, { db, store, invalidation: busA, configure })
  const b = await startTestGateway(t, { db, store, invalidation: busB, configure })
  const alice = await signUp(a, 'replica-alice')
  const admin = await signUp(a, 'replica-admin')
  await a.runtime.users.setRoles(admin.user.id, ['admin'])

  t.equal((await b.call('GET', '/app', { headers: bearer(alice.token) })).status, 403, 'a viewer lacks app:write on B (and B caches her now)')
  const patch = await a.call('PATCH', `/auth/admin/users/${alice.user.id}`, { json: { roles: ['operator'] }, headers: bearer(admin.token) })
  t.equal(patch.status, 200)
  t.equal((await b.call('GET', '/app', { headers: bearer(alice.token) })).status, 200, 'the new role applies on B at once')

  t.equal((await b.call('GET', '/app', { headers: bearer(alice.token) })).status, 200)
  // Disabled through the core on A, without touching her sessions: only the cache stands between.
  await a.runtime.users.setDisabled(alice.user.id, true)
  t.equal((await b.call('GET', '/app', { headers: bearer(alice.token) })).status, 401, 'refused on B at once')
  t.equal((await a.call('GET', '/app', { headers: bearer(alice.token) })).status, 401, 'and on A')
})
