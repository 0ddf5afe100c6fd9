import t, { type Test } from 'tap'
import { AuditLog } from '../src/core/audit.js'
import { ManualClock } from '../src/core/clock.js'
import { sha256 } from '../src/core/crypto.js'
import { generatePat, maskPat } from '../src/core/pat-format.js'
import { MAX_TOKENS_PER_USER, PatService, type PatServiceOptions } from '../src/core/pats.js'
import { permissionsFor } from '../src/core/permissions.js'
import { MemoryInvalidationBus } from '../src/kv/memory-invalidation.js'
import type { Database } from '../src/storage/database.js'
import { openDatabase } from '../src/storage/open.js'
import { databaseBackends, type DatabaseBackend } from './helpers/backends.js'
import { CountingDatabase } from './helpers/counting-database.js'

const DAY = 86_400_000
const roles = { viewer: ['app:read'], operator: ['app:read', 'app:write'], admin: ['*'], auditor: ['audit:read'] }

interface Harness {
  raw: Database
  db: CountingDatabase
  clock: ManualClock
  audit: AuditLog
  bus: MemoryInvalidationBus
  pats: PatService
  addUser(email: string, userRoles: string[]): Promise<{ id: string; permissions: string[] }>
}

async function harness(t: Test, backend: DatabaseBackend, options: Partial<PatServiceOptions> = {}): Promise<Harness> {
  const raw = await backend.open(t)
  const db = new CountingDatabase(raw)
  const clock = new ManualClock()
  const audit = new AuditLog(raw)
  const bus = new MemoryInvalidationBus()
  const pats = new PatService({ db, audit, clock, roles, invalidation: bus, ...options })
  t.teardown(() => pats.close())
  t.teardown(() => bus.close())
  const addUser = async (email: string, userRoles: string[]): Promise<{ id: string; permissions: string[] }> => {
    const result = await raw.query<{ id: string }>('INSERT INTO users (email, roles) VALUES ($1, $2) RETURNING id::text AS id', [
      email,
      userRoles,
    ])
    return { id: result.rows[0]!.id, permissions: permissionsFor(userRoles, roles) }
  }
  return { raw, db, clock, audit, bus, pats, addUser }
}

async function rowCounts(db: Database): Promise<{ pats: number; audit: number }> {
  const result = await db.query<{ pats: number; audit: number }>(
    'SELECT (SELECT count(*)::int FROM personal_access_tokens) AS pats, (SELECT count(*)::int FROM audit_events) AS audit',
  )
  return result.rows[0]!
}

for (const backend of databaseBackends()) {
  t.test(backend.name, async (t) => {
    t.test('create returns the token once and stores only its hash and mask', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['operator'])
      const { token, pat } = await h.pats.create(alice, { name: '  CI deploy  ', expires_in_days: 30 }, { ip: '192.0.2.7' })
      t.match(token, /^pat_[0-9A-Za-z]{49}$/)
      t.same(pat, {
        id: pat.id,
        name: 'CI deploy',
        token: maskPat(token),
        permissions: null,
        expires_at: new Date(h.clock.now() + 30 * DAY).toISOString(),
        last_used_at: null,
        created_at: new Date(h.clock.now()).toISOString(),
        expired: false,
      })
      t.match(pat.token, /^pat_[0-9A-Za-z]{4}…[0-9A-Za-z]{4}$/)

      const stored = await h.raw.query<Record<string, unknown>>('SELECT * FROM personal_access_tokens')
      t.equal(stored.rows.length, 1)
      t.equal(stored.rows[0]!.token_hash, sha256(token))
      t.notMatch(JSON.stringify(stored.rows), token, 'the token itself is stored nowhere')
      t.notMatch(JSON.stringify(stored.rows), token.slice(8, -4), 'not even its middle')

      const [event] = await h.audit.list({ limit: 1 })
      t.match(event, {
        type: 'token.created',
        user_id: alice.id,
        email: 'alice@example.com',
        ip: '192.0.2.7',
        details: { token_id: pat.id, name: 'CI deploy', mask: pat.token, permissions: null },
      })
      t.notMatch(JSON.stringify(event), token.slice(8, -4), 'the audit trail holds no token either')
    })

    t.test('list: masked, never the hash, newest first, expired ones marked; revoke', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['operator'])
      const bob = await h.addUser('bob@example.com', ['viewer'])
      const first = await h.pats.create(alice, { name: 'first', expires_in_days: 1 })
      h.clock.advance(1_000)
      const second = await h.pats.create(alice, { name: 'second', permissions: ['app:read'] })
      const bobs = await h.pats.create(bob, { name: 'bob' })
      h.clock.advance(2 * DAY)

      const list = await h.pats.list(alice.id)
      t.same(list.map((pat) => pat.name), ['second', 'first'])
      t.same(list.map((pat) => pat.expired), [false, true])
      t.same(list[0]!.permissions, ['app:read'])
      for (const pat of list) {
        t.same(Object.keys(pat).sort(), ['created_at', 'expired', 'expires_at', 'id', 'last_used_at', 'name', 'permissions', 'token'])
        t.match(pat.token, /^pat_.{4}….{4}$/)
      }
      const text = JSON.stringify(list)
      for (const { token } of [first, second]) {
        t.notMatch(text, sha256(token), 'no hash')
        t.notMatch(text, token.slice(8, -4), 'no token')
      }
      t.same(await h.pats.list('not-a-uuid'), [])

      t.equal(await h.pats.revoke(bob.id, second.pat.id), false, "another user's token")
      t.equal(await h.pats.revoke(alice.id, bobs.pat.id), false, "another user's token")
      t.equal(await h.pats.revoke(alice.id, 'not-a-uuid'), false)
      t.equal(await h.pats.revoke('not-a-uuid', second.pat.id), false)
      t.equal(await h.pats.revoke(alice.id, '00000000-0000-4000-8000-000000000000'), false)
      t.equal(await h.pats.revoke(alice.id, second.pat.id, { ip: '192.0.2.9' }), true)
      t.equal(await h.pats.revoke(alice.id, second.pat.id), false, 'already revoked')
      t.same((await h.pats.list(alice.id)).map((pat) => pat.name), ['first'])
      t.same((await h.pats.list(bob.id)).map((pat) => pat.name), ['bob'])
      t.equal(await h.pats.authenticate(second.token), null, 'a revoked token is refused')
      t.ok(await h.pats.authenticate(bobs.token))

      const revokedEvents = (await h.audit.list({ limit: 20 })).filter((event) => event.type === 'token.revoked')
      t.equal(revokedEvents.length, 1)
      t.match(revokedEvents[0], {
        user_id: alice.id,
        email: 'alice@example.com',
        ip: '192.0.2.9',
        details: { token_id: second.pat.id, name: 'second', mask: second.pat.token },
      })
    })

    t.test('bad input is GH_VALIDATION and writes nothing', async (t) => {
      const h = await harness(t, backend)
      const viewer = await h.addUser('viewer@example.com', ['viewer'])
      const before = await rowCounts(h.raw)
      const cases: Array<[string, Parameters<PatService['create']>[1], Record<string, unknown>]> = [
        ['empty name', { name: '   ' }, { field: 'name' }],
        ['long name', { name: 'n'.repeat(101) }, { field: 'name' }],
        ['control character', { name: 'ci\u0007' }, { field: 'name' }],
        ['bidi override', { name: 'ci\u202Eexe' }, { field: 'name' }],
        ['name not a string', { name: 42 as unknown as string }, { field: 'name' }],
        ['zero days', { name: 'x', expires_in_days: 0 }, { field: 'expires_in_days' }],
        ['too many days', { name: 'x', expires_in_days: 3651 }, { field: 'expires_in_days' }],
        ['fractional days', { name: 'x', expires_in_days: 1.5 }, { field: 'expires_in_days' }],
        ['days as text', { name: 'x', expires_in_days: '5' as unknown as number }, { field: 'expires_in_days' }],
        ['empty permissions', { name: 'x', permissions: [] }, { field: 'permissions' }],
        ['permissions not a list', { name: 'x', permissions: 'app:read' as unknown as string[] }, { field: 'permissions' }],
        ['blank permission', { name: 'x', permissions: [''] }, { field: 'permissions' }],
        ['permission not a string', { name: 'x', permissions: [1 as unknown as string] }, { field: 'permissions' }],
        ['permission the owner lacks', { name: 'x', permissions: ['app:read', 'app:write', 'users:manage'] }, { field: 'permissions', missing: ['app:write', 'users:manage'] }],
        ['all, held by admins only', { name: 'x', permissions: ['*'] }, { field: 'permissions', missing: ['*'] }],
      ]
      for (const [why, input, details] of cases) {
        await t.rejects(h.pats.create(viewer, input), { code: 'GH_VALIDATION', statusCode: 400, details }, why)
      }
      t.same(await rowCounts(h.raw), before, 'no token and no audit event written')
      const created = await h.pats.create(viewer, { name: 'n'.repeat(100), expires_in_days: 3650, permissions: ['app:read', 'app:read'] })
      t.same(created.pat.permissions, ['app:read'], 'duplicates collapse')
      await t.rejects(
        h.pats.create({ id: '00000000-0000-4000-8000-000000000000', permissions: ['*'] }, { name: 'x' }),
        { code: 'GH_NOT_FOUND' },
        'unknown owner',
      )
      await t.rejects(h.pats.create({ id: 'nope', permissions: ['*'] }, { name: 'x' }), { code: 'GH_NOT_FOUND' })
    })

    t.test(`a user holds at most ${MAX_TOKENS_PER_USER} unrevoked tokens`, async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['viewer'])
      const created = await Promise.all(
        Array.from({ length: MAX_TOKENS_PER_USER }, (_, i) => h.pats.create(alice, { name: `t${i}`, expires_in_days: 1 })),
      )
      await t.rejects(h.pats.create(alice, { name: 'one too many' }), { code: 'GH_VALIDATION', details: { field: 'tokens' } })
      h.clock.advance(2 * DAY)
      await t.rejects(h.pats.create(alice, { name: 'expired ones count' }), { code: 'GH_VALIDATION' })
      t.equal(await h.pats.revoke(alice.id, created[0]!.pat.id), true)
      t.ok(await h.pats.create(alice, { name: 'after a revoke' }))
      t.equal((await h.pats.list(alice.id)).length, MAX_TOKENS_PER_USER)
    })

    t.test('concurrent creations cannot pass the cap together', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['viewer'])
      await Promise.all(Array.from({ length: MAX_TOKENS_PER_USER - 2 }, (_, i) => h.pats.create(alice, { name: `t${i}` })))
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => h.pats.create(alice, { name: `race${i}` })))
      t.equal(results.filter((result) => result.status === 'fulfilled').length, 2)
      t.equal((await h.pats.list(alice.id)).length, MAX_TOKENS_PER_USER)
    })

    t.test('authenticate: identity, effective permissions, role changes after a user invalidation', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['operator'])
      const all = await h.pats.create(alice, { name: 'all' })
      const readOnly = await h.pats.create(alice, { name: 'read', permissions: ['app:read'] })
      const writeOnly = await h.pats.create(alice, { name: 'write', permissions: ['app:write'] })

      const identity = await h.pats.authenticate(all.token)
      t.same(identity, {
        patId: all.pat.id,
        userId: alice.id,
        user: { id: alice.id, email: 'alice@example.com', name: null, roles: ['operator'], email_verified: false, created_at: identity?.user.created_at },
        permissions: ['app:read', 'app:write'],
        explicitPermissions: false,
        expiresAt: null,
        secondFactor: false,
      })
      t.match(identity?.user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      t.same((await h.pats.authenticate(readOnly.token))?.permissions, ['app:read'])
      t.equal((await h.pats.authenticate(readOnly.token))?.explicitPermissions, true, 'a list given at creation is explicit')
      t.same((await h.pats.authenticate(writeOnly.token))?.permissions, ['app:write'])

      // Demoted to viewer: the tokens keep only what the owner still holds.
      await h.raw.query(`UPDATE users SET roles = '{viewer}' WHERE id = $1`, [alice.id])
      t.same((await h.pats.authenticate(writeOnly.token))?.permissions, ['app:write'], 'cached until invalidated')
      await h.bus.publish({ kind: 'user', userId: alice.id })
      t.same((await h.pats.authenticate(all.token))?.permissions, ['app:read'])
      t.same((await h.pats.authenticate(readOnly.token))?.permissions, ['app:read'])
      const demoted = await h.pats.authenticate(writeOnly.token)
      t.same(demoted?.permissions, [], 'a valid token that may do nothing')
      t.same(demoted?.user.roles, ['viewer'])

      // Promoted to admin: a token limited to app:read stays limited; the unlimited one gets '*'.
      await h.raw.query(`UPDATE users SET roles = '{admin}' WHERE id = $1`, [alice.id])
      await h.bus.publish({ kind: 'user', userId: alice.id })
      t.same((await h.pats.authenticate(all.token))?.permissions, ['*'])
      t.same((await h.pats.authenticate(readOnly.token))?.permissions, ['app:read'])
      t.same((await h.pats.authenticate(writeOnly.token))?.permissions, ['app:write'])

      const admin = { id: alice.id, permissions: ['*'] }
      const star = await h.pats.create(admin, { name: 'star', permissions: ['*'] })
      t.same((await h.pats.authenticate(star.token))?.permissions, ['*'])
      t.equal((await h.pats.authenticate(star.token))?.explicitPermissions, true, "['*'] given explicitly is explicit")
      await h.raw.query(`UPDATE users SET roles = '{viewer,auditor}' WHERE id = $1`, [alice.id])
      await h.bus.publish({ kind: 'user', userId: alice.id })
      t.same((await h.pats.authenticate(star.token))?.permissions, ['app:read', 'audit:read'], "'*' means all of the owner's")

      // A reload builds a new service: its role map applies at once.
      const reloaded = new PatService({ db: h.db, audit: h.audit, clock: h.clock, roles: { ...roles, viewer: ['app:read', 'app:list'] }, invalidation: h.bus })
      t.teardown(() => reloaded.close())
      t.same((await reloaded.authenticate(all.token))?.permissions, ['app:list', 'app:read', 'audit:read'])
    })

    t.test('the identity handed out cannot corrupt the cache', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['viewer'])
      const { token } = await h.pats.create(alice, { name: 'x' })
      const identity = (await h.pats.authenticate(token))!
      t.throws(() => identity.permissions.push('*'))
      t.throws(() => identity.user.roles.push('admin'))
      t.same((await h.pats.authenticate(token))?.permissions, ['app:read'])
    })

    t.test('expiry follows the clock, also on a cache hit', async (t) => {
      const h = await harness(t, backend, { cacheTtlMs: 10 * DAY })
      const alice = await h.addUser('alice@example.com', ['viewer'])
      const { token, pat } = await h.pats.create(alice, { name: 'x', expires_in_days: 1 })
      const identity = await h.pats.authenticate(token)
      t.equal(identity?.expiresAt, h.clock.now() + DAY)
      t.equal(identity?.expiresAt, Date.parse(pat.expires_at!))
      h.clock.advance(DAY - 1)
      const before = h.db.count
      t.ok(await h.pats.authenticate(token), 'a millisecond before expiry')
      h.clock.advance(1)
      t.equal(await h.pats.authenticate(token), null, 'at expiry')
      t.equal(h.db.count, before, 'both decided from the cache')
      t.equal(await h.pats.authenticate(token), null)
      t.equal(h.db.count, before, 'and remembered as refused')

      // A fresh service (another replica) refuses it from the database.
      const other = new PatService({ db: h.db, audit: h.audit, clock: h.clock, roles, invalidation: h.bus })
      t.teardown(() => other.close())
      t.equal(await other.authenticate(token), null)
      t.equal(h.db.count, before + 1)
    })

    t.test('a disabled or deleted owner is refused', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['viewer'])
      const { token } = await h.pats.create(alice, { name: 'x' })
      t.ok(await h.pats.authenticate(token))
      await h.raw.query('UPDATE users SET disabled = true WHERE id = $1', [alice.id])
      await h.bus.publish({ kind: 'user', userId: alice.id })
      t.equal(await h.pats.authenticate(token), null, 'disabled')
      await h.raw.query('UPDATE users SET disabled = false WHERE id = $1', [alice.id])
      t.ok(await h.pats.authenticate(token), 'enabled again: a disabled owner is never cached as refused')
      await h.raw.query('DELETE FROM users WHERE id = $1', [alice.id])
      await h.bus.publish({ kind: 'user', userId: alice.id })
      t.equal(await h.pats.authenticate(token), null, 'deleted (with its tokens, by cascade)')
      t.equal(await h.pats.authenticate(token), null)
    })

    t.test('malformed and checksum-failing tokens are refused without any query', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['viewer'])
      const { token } = await h.pats.create(alice, { name: 'x' })
      const before = h.db.count
      const flipped = (position: number): string =>
        token.slice(0, position) + (token[position] === 'a' ? 'b' : 'a') + token.slice(position + 1)
      const bad = [
        '',
        'pat_',
        'not a token',
        token.slice(0, -1),
        `${token}0`,
        token.toUpperCase(),
        `Bearer ${token}`,
        flipped(4),
        flipped(20),
        flipped(46),
        flipped(47),
        flipped(52),
        'pat_' + '0'.repeat(49),
        undefined as unknown as string,
      ]
      for (const candidate of bad) t.equal(await h.pats.authenticate(candidate), null, JSON.stringify(candidate))
      for (let i = 0; i < 1_000; i++) await h.pats.authenticate(`pat_${generatePat().slice(4, 47)}AAAAAA`)
      t.equal(h.db.count, before, 'no statement at all')
    })

    t.test('the cache: hits cost no query, unknown tokens one, concurrent misses share one', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['viewer'])
      const { token } = await h.pats.create(alice, { name: 'x' })
      let before = h.db.count
      t.ok(await h.pats.authenticate(token))
      t.equal(h.db.count, before + 1, 'the first use queries once')
      for (let i = 0; i < 100; i++) await h.pats.authenticate(token)
      t.equal(h.db.count, before + 1, 'then none')
      t.equal(h.db.statements.at(-1)?.match(/JOIN users/g)?.length, 1, 'one statement joining the owner')

      const unknown = generatePat()
      before = h.db.count
      t.equal(await h.pats.authenticate(unknown), null)
      t.equal(await h.pats.authenticate(unknown), null)
      t.equal(h.db.count, before + 1, 'an unknown token is remembered as refused')

      h.clock.advance(60_000)
      before = h.db.count
      t.ok(await h.pats.authenticate(token))
      t.equal(h.db.count, before + 1, 'looked up again after the cache ttl')

      const fresh = await h.pats.create(alice, { name: 'y' })
      before = h.db.count
      const results = await Promise.all(Array.from({ length: 20 }, () => h.pats.authenticate(fresh.token)))
      t.ok(results.every((result) => result?.patId === fresh.pat.id))
      t.equal(h.db.count, before + 1, 'twenty concurrent first uses, one query')
    })

    t.test('the cache is bounded, valid and refused entries alike', async (t) => {
      const h = await harness(t, backend, { cacheMax: 5 })
      const alice = await h.addUser('alice@example.com', ['admin'])
      const tokens = []
      for (let i = 0; i < 8; i++) tokens.push((await h.pats.create(alice, { name: `t${i}` })).token)
      for (const token of tokens) t.ok(await h.pats.authenticate(token))
      const unknown = Array.from({ length: 200 }, () => generatePat())
      for (const token of unknown) t.equal(await h.pats.authenticate(token), null)
      // Refused tokens: the five most recent are remembered, the older ones looked up again.
      let before = h.db.count
      for (const token of unknown.slice(-5)) await h.pats.authenticate(token)
      t.equal(h.db.count, before, 'the last five refused are remembered')
      await h.pats.authenticate(unknown[0]!)
      t.equal(h.db.count, before + 1, 'an older refused one was evicted')
      // The most recently used stay: the last five are hits, the first is evicted.
      before = h.db.count
      for (const token of tokens.slice(3)) await h.pats.authenticate(token)
      t.equal(h.db.count, before)
      await h.pats.authenticate(tokens[0]!)
      t.equal(h.db.count, before + 1)
    })

    t.test('last-used times are kept in memory and flushed in one statement', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['viewer'])
      const one = await h.pats.create(alice, { name: 'one' })
      const two = await h.pats.create(alice, { name: 'two' })
      const unused = await h.pats.create(alice, { name: 'unused' })
      const startedAt = h.clock.now()
      await h.pats.authenticate(one.token)
      h.clock.advance(1_000)
      await h.pats.authenticate(two.token)
      h.clock.advance(1_000)
      for (let i = 0; i < 50; i++) await h.pats.authenticate(one.token)
      const stored = async (): Promise<Record<string, string | null>> => {
        const result = await h.raw.query<{ name: string; last_used_at: Date | null }>(
          'SELECT name, last_used_at FROM personal_access_tokens',
        )
        return Object.fromEntries(result.rows.map((row) => [row.name, row.last_used_at?.toISOString() ?? null]))
      }
      t.same(await stored(), { one: null, two: null, unused: null }, 'nothing written per request')

      const before = h.db.count
      await h.pats.lastUsed.flush()
      t.equal(h.db.count, before + 1, 'one statement for all of them')
      const expected = {
        one: new Date(startedAt + 2_000).toISOString(),
        two: new Date(startedAt + 1_000).toISOString(),
        unused: null,
      }
      t.same(await stored(), expected)
      const listed = await h.pats.list(alice.id)
      t.same(Object.fromEntries(listed.map((pat) => [pat.name, pat.last_used_at])), expected)
      await h.pats.lastUsed.flush()
      t.equal(h.db.count, before + 2, 'nothing pending: no statement')

      // An older time (another replica flushing late) never moves it backwards.
      const late = new PatService({ db: h.db, audit: h.audit, clock: new ManualClock(startedAt), roles, invalidation: h.bus })
      t.teardown(() => late.close())
      await late.authenticate(one.token)
      await late.lastUsed.flush()
      t.same(await stored(), expected)
      t.ok(unused)
    })

    t.test('a failed flush keeps the times for the next one', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['viewer'])
      const { token } = await h.pats.create(alice, { name: 'x' })
      let fail = true
      const flaky: Database = {
        kind: h.db.kind,
        query: (sql, params) => (fail && sql.includes('unnest') ? Promise.reject(new Error('connection lost')) : h.db.query(sql, params)),
        transaction: (fn) => h.db.transaction(fn),
        ping: () => h.db.ping(),
        close: () => h.db.close(),
      }
      const pats = new PatService({ db: flaky, audit: h.audit, clock: h.clock, roles, invalidation: h.bus })
      t.teardown(() => pats.close())
      const reported: unknown[] = []
      pats.lastUsed.onFlushError((error) => reported.push(error))
      await pats.authenticate(token)
      await t.rejects(pats.lastUsed.flush(), /connection lost/)
      t.match(reported, [/connection lost/], 'the failure is reported (the app logs and counts it), not dropped')
      fail = false
      await pats.lastUsed.flush()
      t.equal((await h.pats.list(alice.id))[0]?.last_used_at, new Date(h.clock.now()).toISOString())
    })

    t.test('a database that fails makes authenticate reject, never answer null', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.addUser('alice@example.com', ['viewer'])
      const { token } = await h.pats.create(alice, { name: 'x' })
      const db = await openDatabase(await backend.url(t))
      await db.close()
      const pats = new PatService({ db, audit: new AuditLog(db), clock: h.clock, roles, invalidation: h.bus })
      t.teardown(() => pats.close())
      await t.rejects(pats.authenticate(token), Error, 'a known token')
      await t.rejects(pats.authenticate(generatePat()), Error, 'an unknown one')
      await t.rejects(pats.list(alice.id), Error)
      t.equal(await pats.authenticate('pat_malformed'), null, 'a malformed one needs no database')
    })
  })
}
