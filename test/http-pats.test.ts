/**
 * Personal access tokens through real servers (SPEC §3, §5): created once and shown once,
 * listed masked, used at the edge with `X-Auth-Method: pat`, held to a permission subset and
 * to the owner's current roles, expiring, revoked at once, confined to GET /auth/me on /auth,
 * refused without a database query when malformed, and revoked on every replica within a
 * second (two gateways on one PostgreSQL and one Redis).
 */
import { createHash, randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { generatePat, isWellFormedPat } from '../src/core/pat-format.js'
import { openInvalidationBus } from '../src/kv/open-invalidation.js'
import type { Database } from '../src/storage/database.js'
import { openDatabase } from '../src/storage/open.js'
import {
  bearer,
  login,
  meStatus,
  PASSWORD,
  register,
  signUp,
  uniqueEmail,
  type LoggedIn,
} from './helpers/auth-client.js'
import { assertCode } from './helpers/assert-code.js'
import { databaseBackends, requireBackends, sessionStoreBackends } from './helpers/backends.js'
import { startTestGateway, type RawConfig, type Response, type TestGateway } from './helpers/gateway.js'
import { startUpstream, type RecordingUpstream } from './helpers/upstream.js'
import { CountingDatabase } from './helpers/counting-database.js'

const PAT_SHAPE = /^pat_[0-9A-Za-z]{49}$/
const DAY_MS = 86_400_000
const REPLICA_LIMIT_MS = 1_000
const POLL_MS = 20

interface CreatedToken {
  id: string
  name: string
  token: string
  mask: string
  permissions: string[] | null
  expires_at: string | null
  last_used_at: string | null
  created_at: string
  expired: boolean
}

type ListedToken = Omit<CreatedToken, 'mask'>

function routes(upstream: RecordingUpstream): (raw: RawConfig) => void {
  return (raw) => {
    raw.routes = [
      { name: 'app', match: '/app', upstream: upstream.url, auth: 'required', permissions: ['app:read'] },
      { name: 'ops', match: '/ops', upstream: upstream.url, auth: 'required', permissions: ['app:write'] },
    ]
  }
}

async function createToken(gw: TestGateway, session: string, body: Record<string, unknown>): Promise<CreatedToken> {
  const response = await gw.call('POST', '/auth/tokens', { json: body, headers: bearer(session) })
  if (response.status !== 201) throw new Error(`POST /auth/tokens: ${response.status} ${response.text}`)
  return response.json<CreatedToken>()
}

/** The 403 of the edge or the admin API: GH_FORBIDDEN naming the missing permission. */
function assertMissing(t: Test, response: Response, permission: string, what: string): void {
  const body = assertCode(t, response, 403, 'GH_FORBIDDEN', what)
  t.equal(body.missing_permission, permission, `${what}: names ${permission}`)
}

/** A user with these roles (set directly in the store), logged in. */
async function userWithRoles(gw: TestGateway, tag: string, roles: string[]): Promise<LoggedIn> {
  const email = uniqueEmail(tag)
  const user = await register(gw, email)
  await gw.runtime.users.setRoles(user.id, roles)
  return login(gw, email)
}

t.test('PATs over HTTP on one gateway', async (t) => {
  const upstream = await startUpstream(t)
  const counted = new CountingDatabase(await databaseBackends()[0]!.open(t))
  const gw = await startTestGateway(t, { db: counted, configure: routes(upstream) })

  await t.test('created once (201, well-formed, masked), listed masked without the token or its hash', async (t) => {
    const owner = await signUp(gw, 'create')
    const response = await gw.call('POST', '/auth/tokens', { json: { name: 'ci' }, headers: bearer(owner.token) })
    t.equal(response.status, 201, response.text)
    const created = response.json<CreatedToken>()
    t.match(created.token, PAT_SHAPE, 'pat_ and 49 base62 characters')
    t.ok(isWellFormedPat(created.token), 'its checksum holds')
    t.equal(created.mask, `pat_${created.token.slice(4, 8)}…${created.token.slice(-4)}`, 'mask: pat_ + next 4 + … + last 4')
    t.equal(created.name, 'ci')
    t.equal(created.permissions, null, 'no subset asked: all of the owner’s')
    t.equal(created.expires_at, null)
    t.equal(created.last_used_at, null)
    t.equal(response.headers['cache-control'], 'no-store')

    const list = await gw.call('GET', '/auth/tokens', { headers: bearer(owner.token) })
    t.equal(list.status, 200, list.text)
    const { items, next_cursor } = list.json<{ items: ListedToken[]; next_cursor: string | null }>()
    t.equal(next_cursor, null)
    t.equal(items.length, 1)
    const [listed] = items
    t.equal(listed?.id, created.id)
    t.equal(listed?.token, created.mask, 'listed as its mask')
    t.same(Object.keys(listed ?? {}).sort(), ['created_at', 'expired', 'expires_at', 'id', 'last_used_at', 'name', 'permissions', 'token'])
    const digest = createHash('sha256').update(created.token).digest()
    for (const secret of [created.token, created.token.slice(4), ...(['hex', 'base64', 'base64url'] as const).map((f) => digest.toString(f))]) {
      t.notOk(list.text.includes(secret), `the list never shows ${secret.slice(0, 8)}…`)
    }
    // The token itself is shown at creation only: another creation shows another.
    const second = await createToken(gw, owner.token, { name: 'ci-2' })
    t.not(second.token, created.token)
  })

  await t.test('a bad creation request is 400 and creates nothing', async (t) => {
    const owner = await signUp(gw, 'invalid')
    const bodies: unknown[] = [
      {},
      { name: '' },
      { name: '   ' },
      { name: 'x'.repeat(101) },
      { name: 'bell\u0007' },
      { name: 'ci', expires_in_days: 0 },
      { name: 'ci', expires_in_days: 3651 },
      { name: 'ci', expires_in_days: 1.5 },
      { name: 'ci', expires_in_days: '1' },
      { name: 'ci', permissions: [] },
      { name: 'ci', permissions: 'app:read' },
      { name: 'ci', permissions: [' app:read'] },
      { name: 'ci', scope: 'all' },
    ]
    for (const json of bodies) {
      assertCode(t, await gw.call('POST', '/auth/tokens', { json, headers: bearer(owner.token) }), 400, 'GH_VALIDATION', JSON.stringify(json))
    }
    const listed = await gw.call('GET', '/auth/tokens', { headers: bearer(owner.token) })
    t.same(listed.json<{ items: unknown[] }>().items, [], 'nothing was created')
    assertCode(t, await gw.call('POST', '/auth/tokens', { json: { name: 'anon' } }), 401, 'GH_UNAUTHENTICATED', 'anonymous')
  })

  await t.test('used on a required route: the upstream sees method pat and the token id', async (t) => {
    const owner = await signUp(gw, 'use')
    const pat = await createToken(gw, owner.token, { name: 'reach' })
    const response = await gw.call('GET', '/app/items?x=1', { headers: { ...bearer(pat.token), 'x-auth-token-id': 'spoofed' } })
    t.equal(response.status, 200, response.text)
    const got = upstream.last()
    t.equal(got.url, '/app/items?x=1')
    t.equal(got.headers['x-auth-method'], 'pat')
    t.equal(got.headers['x-auth-token-id'], pat.id, 'X-Auth-Token-Id is the token’s id')
    t.equal(got.headers['x-auth-user-id'], owner.user.id)
    t.equal(got.headers['x-auth-email'], owner.user.email)
    t.equal(got.headers.authorization, undefined, 'the PAT never reaches the upstream')

    // last_used_at is kept (written in batches; the list shows the pending time at once).
    const list = await gw.call('GET', '/auth/tokens', { headers: bearer(owner.token) })
    const listed = list.json<{ items: ListedToken[] }>().items.find((item) => item.id === pat.id)
    t.ok(listed?.last_used_at, 'last_used_at is set after a use')
  })

  await t.test('a permission subset: app:read only, for an operator', async (t) => {
    const operator = await userWithRoles(gw, 'operator', ['operator'])
    t.equal((await gw.call('GET', '/ops/x', { headers: bearer(operator.token) })).status, 200, 'the operator’s session may write')
    const pat = await createToken(gw, operator.token, { name: 'read-only', permissions: ['app:read'] })
    t.same(pat.permissions, ['app:read'])
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(pat.token) })).status, 200, 'app:read: allowed')
    assertMissing(t, await gw.call('GET', '/ops/x', { headers: bearer(pat.token) }), 'app:write', 'app:write with a read-only PAT')
    const me = await gw.call('GET', '/auth/me', { headers: bearer(pat.token) })
    t.same(me.json<{ permissions: string[] }>().permissions, ['app:read'], 'GET /auth/me shows the token’s permissions')

    for (const permissions of [['app:read', 'users:manage'], ['*'], ['admin:anything']]) {
      const refused = await gw.call('POST', '/auth/tokens', { json: { name: 'more', permissions }, headers: bearer(operator.token) })
      assertCode(t, refused, 400, 'GH_VALIDATION', `asking for ${permissions.join(',')}`)
    }
    const viewer = await signUp(gw, 'viewer')
    const refused = await gw.call('POST', '/auth/tokens', { json: { name: 'w', permissions: ['app:write'] }, headers: bearer(viewer.token) })
    assertCode(t, refused, 400, 'GH_VALIDATION', 'a viewer asking for app:write')
    const listed = await gw.call('GET', '/auth/tokens', { headers: bearer(viewer.token) })
    t.same(listed.json<{ items: unknown[] }>().items, [], 'nothing was created')
  })

  await t.test('a role change through the admin API applies to a cached PAT at once', async (t) => {
    const admin = await userWithRoles(gw, 'admin', ['admin'])
    const owner = await signUp(gw, 'promoted')
    const all = await createToken(gw, owner.token, { name: 'all' })
    const subset = await createToken(gw, owner.token, { name: 'subset', permissions: ['app:read'] })
    // Cache both (a second use is served from memory).
    for (const pat of [all, subset]) {
      t.equal((await gw.call('GET', '/app/x', { headers: bearer(pat.token) })).status, 200)
      t.equal((await gw.call('GET', '/app/x', { headers: bearer(pat.token) })).status, 200)
    }
    assertMissing(t, await gw.call('GET', '/ops/x', { headers: bearer(all.token) }), 'app:write', 'a viewer’s PAT')

    const promote = await gw.call('PATCH', `/auth/admin/users/${owner.user.id}`, { json: { roles: ['operator'] }, headers: bearer(admin.token) })
    t.equal(promote.status, 200, promote.text)
    t.equal((await gw.call('GET', '/ops/x', { headers: bearer(all.token) })).status, 200, 'promoted: the all-permissions PAT writes at once')
    assertMissing(t, await gw.call('GET', '/ops/x', { headers: bearer(subset.token) }), 'app:write', 'the subset PAT stays read-only')

    const demote = await gw.call('PATCH', `/auth/admin/users/${owner.user.id}`, { json: { roles: [] }, headers: bearer(admin.token) })
    t.equal(demote.status, 200, demote.text)
    assertMissing(t, await gw.call('GET', '/ops/x', { headers: bearer(all.token) }), 'app:write', 'demoted to no role: no write')
    assertMissing(t, await gw.call('GET', '/app/x', { headers: bearer(all.token) }), 'app:read', 'demoted to no role: no read either')
    assertMissing(t, await gw.call('GET', '/app/x', { headers: bearer(subset.token) }), 'app:read', 'a subset never exceeds the owner')
  })

  await t.test('revoke: 204, refused at once; another user’s token is 404 and keeps working', async (t) => {
    const owner = await signUp(gw, 'revoker')
    const other = await signUp(gw, 'bystander')
    const pat = await createToken(gw, owner.token, { name: 'short-lived' })
    const others = await createToken(gw, other.token, { name: 'theirs' })
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(pat.token) })).status, 200, 'cached before the revoke')

    const foreign = await gw.call('DELETE', `/auth/tokens/${others.id}`, { headers: bearer(owner.token) })
    assertCode(t, foreign, 404, 'GH_NOT_FOUND', 'another user’s token')
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(others.token) })).status, 200, 'which still works')
    assertCode(t, await gw.call('DELETE', '/auth/tokens/not-a-uuid', { headers: bearer(owner.token) }), 404, 'GH_NOT_FOUND', 'a malformed id')

    const revoked = await gw.call('DELETE', `/auth/tokens/${pat.id}`, { headers: bearer(owner.token) })
    t.equal(revoked.status, 204, revoked.text)
    t.equal(revoked.text, '')
    const refused = await gw.call('GET', '/app/x', { headers: bearer(pat.token) })
    assertCode(t, refused, 401, 'GH_UNAUTHENTICATED', 'the revoked PAT at the edge')
    t.equal(refused.headers['www-authenticate'], 'Bearer realm="gatehouse"')
    t.equal(await meStatus(gw, pat.token), 401, 'and on GET /auth/me')
    assertCode(t, await gw.call('DELETE', `/auth/tokens/${pat.id}`, { headers: bearer(owner.token) }), 404, 'GH_NOT_FOUND', 'revoking twice')
    const listed = await gw.call('GET', '/auth/tokens', { headers: bearer(owner.token) })
    t.same(listed.json<{ items: unknown[] }>().items, [], 'no longer listed')
  })

  await t.test('on /auth a PAT may only call GET /auth/me', async (t) => {
    const owner = await signUp(gw, 'confined')
    const pat = await createToken(gw, owner.token, { name: 'confined' })
    const me = await gw.call('GET', '/auth/me', { headers: bearer(pat.token) })
    t.equal(me.status, 200, me.text)
    const body = me.json<{ id: string; auth: { method: string } }>()
    t.equal(body.id, owner.user.id)
    t.equal(body.auth.method, 'pat')

    assertCode(t, await gw.call('POST', '/auth/tokens', { json: { name: 'minted' }, headers: bearer(pat.token) }), 403, 'GH_FORBIDDEN', 'POST /auth/tokens')
    const refusals: [Parameters<TestGateway['call']>[0], string, unknown][] = [
      ['GET', '/auth/tokens', undefined],
      ['DELETE', `/auth/tokens/${pat.id}`, undefined],
      ['PATCH', '/auth/me', { name: 'Renamed' }],
      ['POST', '/auth/logout', undefined],
      ['POST', '/auth/logout-all', undefined],
      ['GET', '/auth/sessions', undefined],
      ['POST', '/auth/password', { current_password: PASSWORD, new_password: 'another long passphrase here' }],
      ['DELETE', '/auth/me', { password: PASSWORD }],
      ['GET', '/auth/admin/users', undefined],
    ]
    for (const [method, path, json] of refusals) {
      const response = await gw.call(method, path, { json, headers: bearer(pat.token) })
      t.equal(response.status, 403, `${method} ${path} with a PAT: 403`)
      t.equal(response.json<{ code: string }>().code, 'GH_FORBIDDEN')
    }
    const tokens = await gw.call('GET', '/auth/tokens', { headers: bearer(owner.token) })
    t.same(
      tokens.json<{ items: ListedToken[] }>().items.map((item) => item.name),
      ['confined'],
      'nothing was minted or revoked',
    )
    t.equal(await meStatus(gw, pat.token), 200, 'the PAT still works, the account still exists')
    t.equal((await gw.call('GET', '/auth/me', { headers: bearer(owner.token) })).json<{ name: string | null }>().name, null, 'not renamed')
  })

  await t.test('malformed and checksum-failing tokens are refused without touching the database', async (t) => {
    const owner = await signUp(gw, 'shape')
    const pat = await createToken(gw, owner.token, { name: 'shape' })
    const valid = pat.token
    const swap = (c: string): string => (c === 'a' ? 'b' : 'a')
    const at = 10
    const oneChanged = valid.slice(0, at) + swap(valid[at] ?? '') + valid.slice(at + 1)
    const checksumChanged = valid.slice(0, -1) + swap(valid.at(-1) ?? '')
    const malformed = ['pat_x', oneChanged, checksumChanged, `${valid}0`, valid.slice(0, -1), `PAT_${valid.slice(4)}`, `pat_${'-'.repeat(49)}`]
    for (const token of malformed) t.notOk(isWellFormedPat(token), `${token.slice(0, 12)}… is not well-formed`)

    // Warm everything a request could touch, so that only a token lookup could query.
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(valid) })).status, 200)
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(valid) })).status, 200)
    const before = counted.touches
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(valid) })).status, 200)
    t.equal(counted.touches, before, 'a cached valid token costs no query')

    for (const token of malformed) {
      for (const path of ['/app/x', '/auth/me']) {
        const response = await gw.call('GET', path, { headers: bearer(token) })
        assertCode(t, response, 401, 'GH_UNAUTHENTICATED', `${JSON.stringify(token.slice(0, 12))}… on ${path}`)
      }
    }
    t.equal(counted.touches, before, 'no query for any malformed token')

    // A well-formed token nobody holds costs one lookup; then it is remembered as refused.
    const unknown = generatePat()
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(unknown) })).status, 401)
    t.equal(counted.touches, before + 1, 'an unknown well-formed token is looked up once')
    t.equal((await gw.call('GET', '/app/x', { headers: bearer(unknown) })).status, 401)
    t.equal(counted.touches, before + 1, 'and not again')
  })
})

t.test('a PAT with expires_in_days: 1 stops working one day later', async (t) => {
  const upstream = await startUpstream(t)
  const clock = new ManualClock()
  const gw = await startTestGateway(t, { clock, configure: routes(upstream) })
  const owner = await signUp(gw, 'expiry')
  const pat = await createToken(gw, owner.token, { name: 'day', expires_in_days: 1 })
  t.equal(pat.expires_at, new Date(clock.now() + DAY_MS).toISOString(), 'expires_at is one day after creation')
  t.equal(pat.expired, false)
  t.equal((await gw.call('GET', '/app/x', { headers: bearer(pat.token) })).status, 200, 'works at once')
  const me = await gw.call('GET', '/auth/me', { headers: bearer(pat.token) })
  t.equal(me.json<{ auth: { expires_at: string } }>().auth.expires_at, pat.expires_at, 'GET /auth/me shows the expiry')

  clock.advance(DAY_MS - 1)
  t.equal((await gw.call('GET', '/app/x', { headers: bearer(pat.token) })).status, 200, 'a millisecond before: still works')
  clock.advance(2)
  const refused = await gw.call('GET', '/app/x', { headers: bearer(pat.token) })
  assertCode(t, refused, 401, 'GH_UNAUTHENTICATED', 'one day and 1 ms later')
  t.equal(await meStatus(gw, pat.token), 401)
  const again = await login(gw, owner.user.email)
  const listed = await gw.call('GET', '/auth/tokens', { headers: bearer(again.token) })
  const item = listed.json<{ items: ListedToken[] }>().items.find((entry) => entry.id === pat.id)
  t.equal(item?.expired, true, 'listed as expired, so that its owner sees why')
})

t.test('revoking or disabling on replica A is refused by replica B within 1 s', async (t) => {
  const redisBackend = sessionStoreBackends().find((backend) => backend.name === 'redis')
  const redisUrl = process.env.TEST_REDIS_URL
  if (redisBackend === undefined || !redisUrl) {
    // sessionStoreBackends() has already failed the run when GATEHOUSE_REQUIRE_BACKENDS=1.
    if (requireBackends()) throw new Error('GATEHOUSE_REQUIRE_BACKENDS=1 but TEST_REDIS_URL is not set')
    t.comment('two-replica PAT tests skipped: TEST_REDIS_URL is not set')
    return
  }
  const upstream = await startUpstream(t)
  const keyPrefix = `gh-test:${randomBytes(6).toString('hex')}:`
  const postgres = databaseBackends().find((backend) => backend.name === 'postgres')

  // Each replica opens its own pool on one PostgreSQL database, like two processes; PGlite
  // is single-process, so without PostgreSQL both share one Database object.
  let dbA: Database
  let dbB: Database
  let databaseUrl: string | undefined
  if (postgres !== undefined) {
    databaseUrl = await postgres.url(t)
    dbA = await openDatabase(databaseUrl)
    dbB = await openDatabase(databaseUrl)
    t.teardown(() => dbA.close())
    t.teardown(() => dbB.close())
  } else {
    t.comment('TEST_DATABASE_URL is not set: both replicas share one PGlite database object')
    dbA = await databaseBackends()[0]!.open(t)
    dbB = dbA
  }
  const countedB = new CountingDatabase(dbB)
  const replica = async (db: Database): Promise<TestGateway> => {
    // One session store and one invalidation channel for both, under this test's own prefix.
    const store = await redisBackend.open(t, { keyPrefix })
    const invalidation = await openInvalidationBus(redisUrl, { keyPrefix })
    t.teardown(() => invalidation.close())
    return startTestGateway(t, {
      db,
      store,
      invalidation,
      configure: (raw) => {
        routes(upstream)(raw)
        raw.storage = { sessions: redisUrl, ...(databaseUrl === undefined ? {} : { database: databaseUrl }) }
      },
    })
  }
  const a = await replica(dbA)
  const b = await replica(countedB)
  t.equal(a.runtime.invalidation.kind, 'redis')
  t.equal(b.runtime.invalidation.kind, 'redis')

  const admin = await userWithRoles(a, 'replica-admin', ['admin'])
  const latencies: Record<string, number> = {}

  /** Uses `token` on B twice and checks that the second use is served from B's cache. */
  async function warmB(t: Test, token: string): Promise<void> {
    t.equal((await b.call('GET', '/app/x', { headers: bearer(token) })).status, 200, 'B accepts the PAT')
    const before = countedB.touches
    t.equal((await b.call('GET', '/app/x', { headers: bearer(token) })).status, 200)
    t.equal(countedB.touches, before, 'B serves it from its cache (no query)')
  }

  /** Runs `change` on A, then polls B every 20 ms until it refuses `token`; returns the latency. */
  async function refusedByB(t: Test, what: string, token: string, change: () => Promise<Response>, expected: number): Promise<void> {
    const start = performance.now()
    const response = await change()
    t.equal(response.status, expected, `${what} on A: ${expected}`, { body: response.text })
    for (;;) {
      const status = (await b.call('GET', '/app/x', { headers: bearer(token) })).status
      const elapsed = performance.now() - start
      if (status === 401) {
        latencies[what] = elapsed
        t.comment(`${what}: replica B refused the PAT ${elapsed.toFixed(1)} ms after the request to A was sent`)
        t.ok(elapsed < REPLICA_LIMIT_MS, `${what}: B refuses within ${REPLICA_LIMIT_MS} ms (${elapsed.toFixed(1)} ms)`)
        return
      }
      t.equal(status, 200, `${what}: B answers 200 until it refuses`)
      if (elapsed > REPLICA_LIMIT_MS) {
        t.fail(`${what}: B still accepts the PAT after ${REPLICA_LIMIT_MS} ms`)
        return
      }
      await sleep(POLL_MS)
    }
  }

  await t.test('revoke on A', async (t) => {
    const owner = await signUp(a, 'replica-revoke')
    const pat = await createToken(a, owner.token, { name: 'replicated' })
    t.equal((await b.call('GET', '/auth/me', { headers: bearer(owner.token) })).status, 200, 'the session works on B (shared Redis)')
    await warmB(t, pat.token)
    await refusedByB(t, 'revoke', pat.token, () => a.call('DELETE', `/auth/tokens/${pat.id}`, { headers: bearer(owner.token) }), 204)
    t.equal(await meStatus(a, pat.token), 401, 'A refuses it too')
  })

  await t.test('disabling the owner through the admin API on A', async (t) => {
    const email = uniqueEmail('replica-disable')
    await register(a, email)
    const owner = await login(a, email)
    const pat = await createToken(a, owner.token, { name: 'replicated' })
    await warmB(t, pat.token)
    await refusedByB(
      t,
      'disable',
      pat.token,
      () => a.call('PATCH', `/auth/admin/users/${owner.user.id}`, { json: { disabled: true }, headers: bearer(admin.token) }),
      200,
    )
    t.equal(await meStatus(b, owner.token), 401, 'the owner’s session is refused on B too')
    assertCode(t, await b.call('POST', '/auth/login', { json: { email, password: PASSWORD } }), 401, 'GH_INVALID_CREDENTIALS', 'login on B')
  })

  await t.test('deleting the owner through the admin API on A', async (t) => {
    const owner = await signUp(a, 'replica-delete')
    const pat = await createToken(a, owner.token, { name: 'replicated' })
    await warmB(t, pat.token)
    await refusedByB(t, 'delete', pat.token, () => a.call('DELETE', `/auth/admin/users/${owner.user.id}`, { headers: bearer(admin.token) }), 204)
  })

  t.comment(`replica latencies (ms): ${JSON.stringify(Object.fromEntries(Object.entries(latencies).map(([k, v]) => [k, Math.round(v * 10) / 10])))}`)
})
