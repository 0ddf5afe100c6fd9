import t, { type Test } from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { sha256 } from '../src/core/crypto.js'
import { SessionService } from '../src/core/sessions.js'
import type { KeyValueStore } from '../src/kv/store.js'
import { sessionStoreBackends, type KeyValueStoreBackend } from './helpers/backends.js'

const MINUTE = 60_000
const idleTimeoutMs = 30 * MINUTE
const absoluteTimeoutMs = 24 * 60 * MINUTE
const alice = '11111111-1111-4111-8111-111111111111'
const bob = '22222222-2222-4222-8222-222222222222'

async function harness(t: Test, backend: KeyValueStoreBackend): Promise<{ store: KeyValueStore; clock: ManualClock; sessions: SessionService }> {
  const clock = new ManualClock()
  // The service decides expiry on its own clock, so a ManualClock drives Redis tests too;
  // the timeouts are long enough that Redis's real-time TTLs never fire during a test.
  const store = await backend.open(t, { clock })
  return { store, clock, sessions: new SessionService({ store, clock, idleTimeoutMs, absoluteTimeoutMs }) }
}

for (const backend of sessionStoreBackends()) {
  t.test(backend.name, async (t) => {
    t.test('create issues a new token each time and stores only its hash', async (t) => {
      const { store, clock, sessions } = await harness(t, backend)
      const first = await sessions.create(alice, { amr: 'pwd', ip: '192.0.2.1', userAgent: 'Firefox' })
      const second = await sessions.create(alice, { amr: 'pwd', ip: '192.0.2.1', userAgent: 'Firefox' })
      t.match(first.token, /^[A-Za-z0-9_-]{43}$/)
      t.not(first.token, second.token)
      t.not(first.session.id, second.session.id)
      t.equal(first.session.id, sha256(first.token))
      t.same(first.session, {
        id: sha256(first.token),
        user_id: alice,
        amr: ['pwd'],
        created_at: clock.now(),
        last_seen_at: clock.now(),
        ip: '192.0.2.1',
        user_agent: 'Firefox',
      })
      t.equal(first.expiresAt, clock.now() + idleTimeoutMs)
      t.equal(await store.get(`session:${first.token}`), null)
      const stored = await store.get(`session:${first.session.id}`)
      t.ok(stored)
      t.notMatch(stored, first.token, 'the token itself is stored nowhere')
      t.same((await store.setMembers(`user-sessions:${alice}`)).sort(), [first.session.id, second.session.id].sort())

      const long = await sessions.create(bob, { amr: 'oidc', userAgent: 'x'.repeat(10_000) })
      t.equal(long.session.user_agent?.length, 256)
      t.equal(long.session.ip, null)
    })

    t.test('resolve', async (t) => {
      const { sessions } = await harness(t, backend)
      const { token, session, expiresAt } = await sessions.create(alice, { amr: 'oidc' })
      t.same(await sessions.resolve(token), { session, expiresAt })
      t.equal(await sessions.resolve('A'.repeat(43)), null, 'unknown token')
      const malformed = ['', 'abc', token + 'A', token.slice(1), token.slice(0, 42) + '=', token.slice(0, 42) + '+',
        token.slice(0, 42) + '/', token.slice(0, 42) + '.', token.slice(0, 42) + 'é', ` ${token.slice(1)}`, `${token}\n`]
      for (const bad of malformed) t.equal(await sessions.resolve(bad), null, JSON.stringify(bad))
    })

    t.test('idle timeout, on the injected clock', async (t) => {
      const { store, clock, sessions } = await harness(t, backend)
      const { token, session } = await sessions.create(alice, { amr: 'pwd' })
      clock.advance(idleTimeoutMs - 1)
      const resolved = await sessions.resolve(token)
      t.equal(resolved?.session.last_seen_at, clock.now(), 'used just in time: refreshed')
      t.equal(resolved?.expiresAt, clock.now() + idleTimeoutMs)
      clock.advance(idleTimeoutMs - 1)
      t.ok(await sessions.resolve(token), 'the idle timer restarted at the last use')
      clock.advance(idleTimeoutMs)
      t.equal(await sessions.resolve(token), null, 'idle for exactly the timeout: expired')
      t.equal(await store.get(`session:${session.id}`), null, 'and deleted')
      t.same(await sessions.list(alice), [])
      t.same(await store.setMembers(`user-sessions:${alice}`), [], 'no index member left behind')
    })

    t.test('absolute timeout, however active the session is', async (t) => {
      const { clock, sessions } = await harness(t, backend)
      const { token, session } = await sessions.create(alice, { amr: 'pwd' })
      const end = session.created_at + absoluteTimeoutMs
      while (clock.now() + 20 * MINUTE < end) {
        clock.advance(20 * MINUTE)
        const resolved = await sessions.resolve(token)
        t.ok(resolved, `alive at ${(clock.now() - session.created_at) / MINUTE} min`)
        t.equal(resolved?.expiresAt, Math.min(clock.now() + idleTimeoutMs, end))
      }
      clock.advance(end - clock.now() - 1)
      t.ok(await sessions.resolve(token), 'alive 1 ms before the absolute timeout')
      clock.advance(1)
      t.equal(await sessions.resolve(token), null, 'over at the absolute timeout')
    })

    t.test('last_seen_at is written only after the refresh interval', async (t) => {
      const { store, clock, sessions } = await harness(t, backend)
      const { token, session } = await sessions.create(alice, { amr: 'pwd' })
      const stored = async (): Promise<number> => JSON.parse((await store.get(`session:${session.id}`))!).last_seen_at
      clock.advance(59_999)
      t.equal((await sessions.resolve(token))?.session.last_seen_at, session.created_at)
      t.equal(await stored(), session.created_at, 'no write within the interval')
      clock.advance(1)
      t.equal((await sessions.resolve(token))?.session.last_seen_at, clock.now())
      t.equal(await stored(), clock.now(), 'written once the interval has passed')

      // A short idle timeout shortens the interval to a tenth of it.
      const short = new SessionService({ store, clock, idleTimeoutMs: 100_000, absoluteTimeoutMs })
      const created = await short.create(bob, { amr: 'pwd' })
      clock.advance(10_000)
      t.equal((await short.resolve(created.token))?.session.last_seen_at, clock.now())
    })

    t.test('revoke, revokeToken, revokeAll with except', async (t) => {
      const { sessions } = await harness(t, backend)
      const a1 = await sessions.create(alice, { amr: 'pwd' })
      const a2 = await sessions.create(alice, { amr: 'pwd' })
      const a3 = await sessions.create(alice, { amr: 'pwd' })
      const a4 = await sessions.create(alice, { amr: 'pwd' })
      const b1 = await sessions.create(bob, { amr: 'pwd' })

      t.equal(await sessions.revoke(bob, a1.session.id), false, "another user's session cannot be revoked")
      t.ok(await sessions.resolve(a1.token), 'and it still works')
      t.equal(await sessions.revoke(alice, 'not-a-session-id'), false)
      t.equal(await sessions.revoke(alice, a1.session.id), true)
      t.equal(await sessions.resolve(a1.token), null)
      t.equal(await sessions.revoke(alice, a1.session.id), false, 'already gone')

      t.equal(await sessions.revokeToken(a2.token), true)
      t.equal(await sessions.resolve(a2.token), null)
      t.equal(await sessions.revokeToken(a2.token), false)
      t.equal(await sessions.revokeToken('garbage'), false)

      t.equal(await sessions.revokeAll(alice, { except: a3.session.id }), 1)
      t.ok(await sessions.resolve(a3.token), 'the excepted session survives')
      t.equal(await sessions.resolve(a4.token), null)
      t.equal(await sessions.revokeAll(alice), 1)
      t.equal(await sessions.resolve(a3.token), null)
      t.equal(await sessions.revokeAll(alice), 0)
      t.ok(await sessions.resolve(b1.token), "other users' sessions are untouched")
      t.same(await sessions.list(alice), [])
    })

    t.test('list: newest first, pruning sessions that are gone or expired', async (t) => {
      const { store, clock, sessions } = await harness(t, backend)
      const old = await sessions.create(alice, { amr: 'pwd' })
      clock.advance(20 * MINUTE)
      const middle = await sessions.create(alice, { amr: 'pwd' })
      clock.advance(1)
      const gone = await sessions.create(alice, { amr: 'pwd' })
      clock.advance(1)
      const newest = await sessions.create(alice, { amr: 'oidc', ip: '192.0.2.7' })
      await sessions.create(bob, { amr: 'pwd' })
      await store.delete(`session:${gone.session.id}`)
      clock.advance(15 * MINUTE) // `old` has now been idle for 35 minutes

      const listed = await sessions.list(alice)
      t.same(listed.map((s) => s.session.id), [newest.session.id, middle.session.id])
      t.same(listed[0], { session: newest.session, expiresAt: newest.session.created_at + idleTimeoutMs })
      t.same((await store.setMembers(`user-sessions:${alice}`)).sort(), [newest.session.id, middle.session.id].sort())
      t.equal(await store.get(`session:${old.session.id}`), null)
      t.same(await sessions.list('33333333-3333-4333-8333-333333333333'), [])
    })

    t.test('a session dropped from the index is not brought back by a refresh', async (t) => {
      // What a revocation racing a request's refresh looks like once the revocation has
      // removed the index member: the refresh must not resurrect the record.
      const { store, clock, sessions } = await harness(t, backend)
      const { token, session } = await sessions.create(alice, { amr: 'pwd' })
      await store.setRemove(`user-sessions:${alice}`, session.id)
      clock.advance(MINUTE)
      t.equal(await sessions.resolve(token), null)
      t.equal(await store.get(`session:${session.id}`), null)
    })

    t.test('a corrupt record is no session', async (t) => {
      const { store, sessions } = await harness(t, backend)
      const { token, session } = await sessions.create(alice, { amr: 'pwd' })
      await store.set(`session:${session.id}`, '{"id":', MINUTE)
      t.equal(await sessions.resolve(token), null)
      await store.set(`session:${session.id}`, JSON.stringify({ ...session, amr: 'magic' }), MINUTE)
      t.equal(await sessions.resolve(token), null)
    })

    t.test('misuse', async (t) => {
      const { store, clock } = await harness(t, backend)
      t.throws(() => new SessionService({ store, clock, idleTimeoutMs: 0, absoluteTimeoutMs }), TypeError)
      t.throws(() => new SessionService({ store, clock, idleTimeoutMs, absoluteTimeoutMs: Number.NaN }), TypeError)
    })
  })
}
