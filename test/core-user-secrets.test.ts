/**
 * The UserSecrets core (SPEC §5) called directly: what a value may hold, which headers may
 * carry a secret, which identities and routes get one, the lookups it does (none for routes
 * without user_secret), invalidation between replicas, dormancy, and the binding of sealed
 * values to (user, route, upstream).
 */
import t, { type Test } from 'tap'
import { AuditLog } from '../src/core/audit.js'
import { ManualClock } from '../src/core/clock.js'
import { DataKeyRing } from '../src/core/data-keys.js'
import {
  checkSecretValue, DatabaseUserSecretStore, secretHeaderRefusal, upstreamFingerprint, UserSecrets, type SecretProblem, type UserSecretStore,
} from '../src/core/user-secrets/index.js'
import { MemoryInvalidationBus } from '../src/kv/memory-invalidation.js'
import { databaseBackends } from './helpers/backends.js'
import { routeConfig, testIdentity } from './helpers/fixtures.js'

const vault = routeConfig('vault', '/vault', { upstream: 'http://127.0.0.1:9001', servers: ['http://127.0.0.1:9001'], user_secret: { header: 'X-Db-Credentials' } })
const plain = routeConfig('plain', '/plain')

t.test('checkSecretValue: printable ASCII up to 4096 bytes, nothing a header would change or split', async (t) => {
  for (const good of ['x', 'user=a; password=b', 'tab\tinside', '!"#$%&\'()*+,-./~', 'x'.repeat(4096)]) {
    t.equal(checkSecretValue(good), good, `accepted: ${JSON.stringify(good.slice(0, 30))}`)
  }
  const refused: Array<[unknown, string]> = [
    [42, 'type'], [null, 'type'], [undefined, 'type'], [['a'], 'type'], [{ a: 1 }, 'type'],
    ['', 'empty'], ['x'.repeat(4097), 'too_long'],
    ['a\nb', 'characters'], ['a\rb', 'characters'], ['a\u0000b', 'characters'], ['a\u007fb', 'characters'], ['é', 'characters'], ['\u{1F511}', 'characters'],
    [' lead', 'whitespace'], ['trail\t', 'whitespace'],
  ]
  for (const [value, reason] of refused) {
    t.throws(() => checkSecretValue(value), { code: 'GH_VALIDATION', details: { field: 'value', reason } }, `refused (${reason}): ${JSON.stringify(value)?.slice(0, 30)}`)
  }
})

t.test('secretHeaderRefusal: a token the gateway owns for nothing else', async (t) => {
  for (const good of ['X-Db-Credentials', 'x-api-key', 'X_Upstream_Token', 'Private-Token']) t.equal(secretHeaderRefusal(good), null, `${good} may`)
  const refused = [
    'X-Auth-Secret', 'x_auth_user_id', 'X-Forwarded-User', 'X-Forwarded-For', 'Authorization', 'Cookie', 'Host', 'Content-Length', 'content-type',
    'Connection', 'Keep-Alive', 'Transfer-Encoding', 'TE', 'Trailer', 'Upgrade', 'Proxy-Authorization', 'Expect', 'X-Request-Id', 'X_Request_Id',
    'Forwarded', 'Remote-User', 'X-Real-IP', 'X-HTTP-Method-Override', 'X-Original-URL', 'Sec-WebSocket-Key',
    'with space', 'colon:', 'new\nline', '', 'é',
  ]
  for (const name of refused) t.type(secretHeaderRefusal(name), 'string', `${JSON.stringify(name)} may not`)
})

t.test('upstreamFingerprint: the set of servers, in any order', async (t) => {
  const a = upstreamFingerprint({ servers: ['http://10.0.0.1:9001', 'http://10.0.0.2:9001'] })
  t.equal(upstreamFingerprint({ servers: ['http://10.0.0.2:9001', 'http://10.0.0.1:9001'] }), a, 'order does not matter')
  t.not(upstreamFingerprint({ servers: ['http://10.0.0.1:9001'] }), a, 'a server less is a change')
  t.not(upstreamFingerprint({ servers: ['http://10.0.0.1:9001', 'http://10.0.0.3:9001'] }), a, 'another server is a change')
  t.match(a, /^[0-9a-f]{64}$/, 'a hash: no URL (nor its password) in the table')
})

/** A store that counts its calls, around the real database store. */
function counting(store: UserSecretStore): UserSecretStore & { gets: number } {
  const counted = {
    gets: 0,
    list: (userId: string) => store.list(userId),
    get(userId: string, route: string) {
      counted.gets++
      return store.get(userId, route)
    },
    put: store.put.bind(store),
    delete: store.delete.bind(store),
    reseal: store.reseal.bind(store),
  }
  return counted
}

async function setup(t: Test, routes = [vault, plain]) {
  const db = await databaseBackends()[0]!.open(t)
  const { rows } = await db.query<{ id: string }>("INSERT INTO users (email) VALUES ('alice@example.com'), ('bob@example.com') RETURNING id::text AS id")
  const [aliceId, bobId] = rows.map((row) => row.id) as [string, string]
  const store = counting(new DatabaseUserSecretStore(db, new AuditLog(db)))
  const keys = DataKeyRing.ephemeral()
  const bus = new MemoryInvalidationBus()
  const clock = new ManualClock()
  const problems: SecretProblem[] = []
  const replica = (options: { keys?: DataKeyRing; routes?: typeof routes } = {}) => {
    const secrets = new UserSecrets({ store, keys: options.keys ?? keys, routes: options.routes ?? routes, bus, clock, cacheTtlMs: 60_000 })
    secrets.onProblem((problem) => problems.push(problem))
    t.teardown(() => secrets.close())
    return secrets
  }
  const alice = testIdentity({}, { id: aliceId, email: 'alice@example.com' })
  const bob = testIdentity({}, { id: bobId, email: 'bob@example.com' })
  return { db, store, keys, bus, clock, problems, replica, alice, bob }
}

t.test('forRequest: only a local user\'s session or PAT, only on a route with user_secret, and no lookup otherwise', async (t) => {
  const { store, replica, alice } = await setup(t)
  const secrets = replica()
  await secrets.set(alice, 'vault', 'alice-secret')
  t.equal(secrets.forRequest(alice, plain), null, 'a route without user_secret: null at once')
  t.equal(secrets.forRequest(null, vault), null, 'no identity: null at once')
  t.equal(secrets.forRequest({ ...alice, method: 'jwt', amr: ['jwt'] }, vault), null, 'a jwt_bearer identity owns no secrets')
  t.equal(store.gets, 0, 'none of those read the store')
  t.same(await secrets.forRequest(alice, vault), { header: 'x-db-credentials', value: 'alice-secret' }, 'her session')
  t.same(await secrets.forRequest({ ...alice, method: 'pat', amr: ['pat'], tokenId: 'p1' }, vault), { header: 'x-db-credentials', value: 'alice-secret' }, 'her PAT')
  t.equal(store.gets, 1, 'read once, then cached per (user, route)')
})

t.test('a change on one replica reaches the other\'s cache at once; without a secret the answer is cached too', async (t) => {
  const { store, replica, alice, bob, clock } = await setup(t)
  const a = replica()
  const b = replica()
  t.equal(await b.forRequest(bob, vault), null, 'bob has none')
  await a.set(alice, 'vault', 'first')
  t.same(await b.forRequest(alice, vault), { header: 'x-db-credentials', value: 'first' })
  await a.set(alice, 'vault', 'second')
  t.same(await b.forRequest(alice, vault), { header: 'x-db-credentials', value: 'second' }, 'replaced: the other replica sees it')
  await a.remove(alice.user.id, 'vault')
  t.equal(await b.forRequest(alice, vault), null, 'removed: the other replica stops sending it')
  const gets = store.gets
  t.equal(await b.forRequest(bob, vault), null)
  t.equal(store.gets, gets, 'the absence was cached')
  clock.advance(60_000)
  t.equal(await b.forRequest(bob, vault), null)
  t.equal(store.gets, gets + 1, 'and read again after the ttl')
})

t.test('set refuses what cannot be used and stores nothing', async (t) => {
  const { db, replica, alice } = await setup(t, [vault, plain, routeConfig('ops', '/ops', { permissions: ['ops:all'], user_secret: { header: 'X-Ops' } })])
  const secrets = replica()
  await t.rejects(secrets.set(alice, 'nope', 'x'), { code: 'GH_NOT_FOUND', details: { reason: 'unknown_route' } })
  await t.rejects(secrets.set(alice, 'plain', 'x'), { code: 'GH_NOT_FOUND', details: { reason: 'no_user_secret' } })
  await t.rejects(secrets.set(alice, 'ops', 'x'), { code: 'GH_FORBIDDEN', details: { missing_permissions: ['ops:all'] } })
  await t.rejects(secrets.set(alice, 'vault', 'a\nb'), { code: 'GH_VALIDATION' })
  t.equal((await db.query('SELECT 1 FROM user_secrets')).rowCount, 0)
})

t.test('a sealed value opens only for its user, route and upstream', async (t) => {
  const { db, replica, alice, bob, bus, problems } = await setup(t, [vault, routeConfig('vault2', '/vault2', { user_secret: { header: 'X-Db-Credentials' } })])
  const secrets = replica()
  await secrets.set(alice, 'vault', 'alice-secret')
  await secrets.set(bob, 'vault', 'bob-secret')
  await db.query('UPDATE user_secrets SET ciphertext = (SELECT ciphertext FROM user_secrets WHERE user_id = $1) WHERE user_id = $2', [alice.user.id, bob.user.id])
  await bus.publish({ kind: 'user', userId: bob.user.id })
  t.equal(await secrets.forRequest(bob, vault), null, 'alice\'s ciphertext under bob does not open')
  t.match(problems, [{ kind: 'unreadable', userId: bob.user.id, route: 'vault' }], 'reported, without a value')
  t.notOk(JSON.stringify(problems).includes('secret'), 'no value in the report')
  await db.query("UPDATE user_secrets SET route = 'vault2' WHERE user_id = $1", [alice.user.id])
  t.equal(await secrets.forRequest(alice, routeConfig('vault2', '/vault2', { user_secret: { header: 'X-Db-Credentials' } })), null, 'moved to another route: does not open')
})

t.test('a changed upstream makes a secret dormant; a ring without its key reports it unreadable', async (t) => {
  const { replica, alice, problems } = await setup(t)
  await replica().set(alice, 'vault', 'alice-secret')
  const moved = { ...vault, upstream: 'http://127.0.0.1:9002', servers: ['http://127.0.0.1:9002'] }
  const afterMove = replica({ routes: [moved] })
  t.equal(await afterMove.forRequest(alice, moved), null, 'another upstream: not sent')
  t.match(await afterMove.list(alice.user.id), [{ route: 'vault', state: 'dormant', header: 'X-Db-Credentials' }])
  t.match(await replica({ routes: [plain] }).list(alice.user.id), [{ route: 'vault', state: 'dormant', header: null }], 'route gone: dormant, no header')
  t.same(problems, [], 'dormant is not a problem')
  const otherRing = replica({ keys: DataKeyRing.ephemeral() })
  t.equal(await otherRing.forRequest(alice, vault), null, 'sealed with a key the ring lacks: not sent')
  t.match(problems, [{ kind: 'unreadable', route: 'vault' }])
})
