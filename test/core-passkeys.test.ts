/**
 * PasskeyService (SPEC §3 second factor, WebAuthn): registration and assertions verified by
 * @simplewebauthn/server against real answers of a software authenticator (P-256, CBOR,
 * ES256), and the rules around them: challenges used once, for their purpose and user, within
 * their lifetime; the configured origin and RP ID; another user's passkey refused; the counter
 * moving forward; user verification for a passkey-only sign-in.
 */
import t, { type Test } from 'tap'
import { AuditLog } from '../src/core/audit.js'
import { ManualClock } from '../src/core/clock.js'
import { MAX_PASSKEYS_PER_USER, PasskeyService, type PasskeyUser } from '../src/core/passkeys.js'
import { CHALLENGE_TTL_MS, WebAuthnChallenges } from '../src/core/webauthn-challenges.js'
import { MemoryKeyValueStore } from '../src/kv/memory.js'
import type { Database } from '../src/storage/database.js'
import { databaseBackends, type DatabaseBackend } from './helpers/backends.js'
import { SoftAuthenticator } from './helpers/soft-authenticator.js'

const ORIGIN = 'https://gate.example.com'

/** The promise rejects with a GatehouseError of this code. */
const assertCode = (t: Test, promise: Promise<unknown>, code: string, what?: string) => t.rejects(promise, { code }, what ?? code)
const RP_ID = 'gate.example.com'

interface Harness {
  db: Database
  clock: ManualClock
  passkeys: PasskeyService
  user(email: string): Promise<PasskeyUser>
  /** Registers a new soft authenticator for `user`. */
  enrol(user: PasskeyUser, name?: string): Promise<SoftAuthenticator>
  rows(): Promise<number>
}

async function harness(t: Test, backend: DatabaseBackend): Promise<Harness> {
  const db = await backend.open(t)
  const clock = new ManualClock()
  const store = new MemoryKeyValueStore({ clock })
  t.teardown(() => store.close())
  const challenges = new WebAuthnChallenges({ store, clock })
  const passkeys = new PasskeyService({ db, challenges, audit: new AuditLog(db), clock, rpId: RP_ID, origins: [ORIGIN], rpName: 'Gatehouse' })
  const user = async (email: string) => {
    const { rows } = await db.query<{ id: string }>('INSERT INTO users (email) VALUES ($1) RETURNING id::text AS id', [email])
    return { id: rows[0]!.id, email, name: null }
  }
  const enrol = async (owner: PasskeyUser, name = 'Laptop') => {
    const authenticator = new SoftAuthenticator(ORIGIN)
    const options = await passkeys.registrationOptions(owner)
    await passkeys.register(owner, { name, response: authenticator.register(options) })
    return authenticator
  }
  const rows = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM webauthn_credentials')).rows[0]!.n
  return { db, clock, passkeys, user, enrol, rows }
}

for (const backend of databaseBackends()) {
  t.test(backend.name, async (t) => {
    t.test('registers a passkey, lists it without its key, and records the event', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.user('alice@example.com')
      const options = await h.passkeys.registrationOptions(alice)
      t.equal(options.rp.id, RP_ID)
      t.equal(Buffer.from(options.user.id, 'base64url').toString('utf8'), alice.id, 'the user handle is the user id')
      t.same(options.excludeCredentials, [])
      const authenticator = new SoftAuthenticator(ORIGIN)
      const info = await h.passkeys.register(alice, { name: '  Work laptop ', response: authenticator.register(options) }, { ip: '192.0.2.1' })
      t.match(info, { name: 'Work laptop', last_used_at: null, transports: ['internal'], backed_up: false })
      t.same(await h.passkeys.list(alice.id), [info])
      t.equal(await h.passkeys.hasPasskeys(alice.id), true)
      t.notMatch(JSON.stringify(info), /public/i)
      const again = await h.passkeys.registrationOptions(alice)
      t.same(again.excludeCredentials?.map((c) => c.id), [authenticator.id], 'a second registration excludes the first authenticator')
      const { rows } = await h.db.query<{ type: string; details: { passkey_id: string } }>("SELECT type, details FROM audit_events WHERE type LIKE 'mfa.%'")
      t.same(rows, [{ type: 'mfa.passkey_added', details: { passkey_id: info.id, name: 'Work laptop' } }])
    })

    t.test('a registration answer is accepted once: its challenge is spent', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.user('alice@example.com')
      const options = await h.passkeys.registrationOptions(alice)
      const response = new SoftAuthenticator(ORIGIN).register(options)
      await h.passkeys.register(alice, { name: 'one', response })
      await assertCode(t, h.passkeys.register(alice, { name: 'two', response }), 'GH_VALIDATION')
      t.equal(await h.rows(), 1)
    })

    t.test('registration refuses another origin, another RP ID, another user’s or an expired challenge', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.user('alice@example.com')
      const bob = await h.user('bob@example.com')
      const attempt = async (ceremony: Parameters<SoftAuthenticator['register']>[1], who = alice, advance = 0) => {
        const options = await h.passkeys.registrationOptions(alice)
        h.clock.advance(advance)
        return h.passkeys.register(who, { name: 'x', response: new SoftAuthenticator(ORIGIN).register(options, ceremony) })
      }
      await assertCode(t, attempt({ origin: 'https://evil.example.net' }), 'GH_VALIDATION')
      await assertCode(t, attempt({ rpId: 'evil.example.net' }), 'GH_VALIDATION')
      await assertCode(t, attempt({}, bob), 'GH_VALIDATION')
      await assertCode(t, attempt({}, alice, CHALLENGE_TTL_MS), 'GH_VALIDATION')
      await assertCode(t, attempt({ challenge: 'A'.repeat(43) }), 'GH_VALIDATION')
      t.equal(await h.rows(), 0, 'nothing was stored')
      await attempt({})
      t.equal(await h.rows(), 1, 'the same steps with the right values succeed')
    })

    t.test('bad names and garbage answers are 400s with no row', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.user('alice@example.com')
      const options = await h.passkeys.registrationOptions(alice)
      const response = new SoftAuthenticator(ORIGIN).register(options)
      for (const name of ['', '   ', 'x'.repeat(101), 'tab\there', 42]) {
        await assertCode(t, h.passkeys.register(alice, { name, response }), 'GH_VALIDATION')
      }
      for (const garbage of [null, 'x', {}, { response: {} }, { response: { clientDataJSON: '!!' } }, { ...response, response: { ...response.response, attestationObject: 'AAAA' } }]) {
        await assertCode(t, h.passkeys.register(alice, { name: 'x', response: garbage }), 'GH_VALIDATION')
      }
      t.equal(await h.rows(), 0)
    })

    t.test('one credential belongs to one account', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.user('alice@example.com')
      const bob = await h.user('bob@example.com')
      const authenticator = new SoftAuthenticator(ORIGIN)
      await h.passkeys.register(alice, { name: 'a', response: authenticator.register(await h.passkeys.registrationOptions(alice)) })
      await assertCode(t, h.passkeys.register(bob, { name: 'b', response: authenticator.register(await h.passkeys.registrationOptions(bob)) }), 'GH_VALIDATION')
      t.equal(await h.rows(), 1)
    })

    t.test(`at most ${MAX_PASSKEYS_PER_USER} passkeys per user`, async (t) => {
      const h = await harness(t, backend)
      const alice = await h.user('alice@example.com')
      for (let i = 0; i < MAX_PASSKEYS_PER_USER; i++) await h.enrol(alice, `key ${i}`)
      await assertCode(t, h.passkeys.registrationOptions(alice), 'GH_VALIDATION')
    })

    t.test('a second factor: the user’s own passkey, once per challenge, bound to its flow', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.user('alice@example.com')
      const bob = await h.user('bob@example.com')
      const alicesKey = await h.enrol(alice)
      const bobsKey = await h.enrol(bob)
      const flow = { userId: alice.id, binding: 'mfa-token-hash' }

      const options = await h.passkeys.secondFactorOptions(flow)
      t.same(options.allowCredentials?.map((c) => c.id), [alicesKey.id], 'only her passkeys are offered')
      const answer = alicesKey.authenticate(options)
      t.match(await h.passkeys.verifySecondFactor(flow, answer), { userId: alice.id, userVerified: true })
      await assertCode(t, h.passkeys.verifySecondFactor(flow, answer), 'GH_INVALID_CREDENTIALS', 'the same answer again')
      const [listed] = await h.passkeys.list(alice.id)
      t.ok(listed?.last_used_at, 'the last use is recorded')

      // Bob's authenticator signing Alice's challenge: refused, and the challenge is spent.
      const forBob = await h.passkeys.secondFactorOptions(flow)
      await assertCode(t, h.passkeys.verifySecondFactor(flow, bobsKey.authenticate(forBob)), 'GH_INVALID_CREDENTIALS')
      await assertCode(t, h.passkeys.verifySecondFactor(flow, alicesKey.authenticate(forBob)), 'GH_INVALID_CREDENTIALS', 'spent')

      // Another flow's challenge, or another user's, does not do.
      const other = await h.passkeys.secondFactorOptions({ userId: alice.id, binding: 'another-login' })
      await assertCode(t, h.passkeys.verifySecondFactor(flow, alicesKey.authenticate(other)), 'GH_INVALID_CREDENTIALS')
      const bobs = await h.passkeys.secondFactorOptions({ userId: bob.id, binding: 'mfa-token-hash' })
      await assertCode(t, h.passkeys.verifySecondFactor(flow, alicesKey.authenticate(bobs)), 'GH_INVALID_CREDENTIALS')
      await assertCode(t, h.passkeys.secondFactorOptions({ userId: (await h.user('carol@example.com')).id, binding: 'x' }), 'GH_VALIDATION')
    })

    t.test('assertions refuse another origin, another RP ID, an expired challenge, a counter that does not move', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.user('alice@example.com')
      const key = await h.enrol(alice)
      const flow = { userId: alice.id, binding: 'b' }
      const attempt = async (ceremony: Parameters<SoftAuthenticator['authenticate']>[1], advance = 0) => {
        const options = await h.passkeys.secondFactorOptions(flow)
        h.clock.advance(advance)
        return h.passkeys.verifySecondFactor(flow, key.authenticate(options, ceremony))
      }
      await assertCode(t, attempt({ origin: 'https://gate.example.com.evil.net' }), 'GH_INVALID_CREDENTIALS')
      await assertCode(t, attempt({ origin: 'http://gate.example.com' }), 'GH_INVALID_CREDENTIALS')
      await assertCode(t, attempt({ rpId: 'example.com' }), 'GH_INVALID_CREDENTIALS')
      await assertCode(t, attempt({}, CHALLENGE_TTL_MS), 'GH_INVALID_CREDENTIALS')
      await attempt({})
      key.counter -= 2 // a clone that is behind
      await assertCode(t, attempt({}), 'GH_INVALID_CREDENTIALS')
      key.counter += 5
      await attempt({})
    })

    t.test('passkey-only sign-in: the credential names the user; user verification required; its own challenges', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.user('alice@example.com')
      const key = await h.enrol(alice)
      const options = await h.passkeys.loginOptions()
      t.same(options.allowCredentials, [], 'discoverable credentials: nobody is named')
      t.equal(options.userVerification, 'required')
      t.match(await h.passkeys.verifyLogin(key.authenticate(options)), { userId: alice.id, userVerified: true })

      await assertCode(t, h.passkeys.verifyLogin(key.authenticate(await h.passkeys.loginOptions(), { userVerified: false })), 'GH_INVALID_CREDENTIALS')
      const secondFactor = await h.passkeys.secondFactorOptions({ userId: alice.id, binding: 'b' })
      await assertCode(t, h.passkeys.verifyLogin(key.authenticate(secondFactor)), 'GH_INVALID_CREDENTIALS', 'a second-factor challenge')
      await assertCode(t, h.passkeys.verifyLogin(new SoftAuthenticator(ORIGIN).authenticate(await h.passkeys.loginOptions())), 'GH_INVALID_CREDENTIALS', 'an unknown passkey')
      key.userHandle = Buffer.from('00000000-0000-4000-8000-000000000000').toString('base64url')
      await assertCode(t, h.passkeys.verifyLogin(key.authenticate(await h.passkeys.loginOptions())), 'GH_INVALID_CREDENTIALS', 'a user handle of someone else')
    })

    t.test('removing: only the owner’s passkey, audited', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.user('alice@example.com')
      const bob = await h.user('bob@example.com')
      await h.enrol(alice)
      const [passkey] = await h.passkeys.list(alice.id)
      t.equal(await h.passkeys.remove(bob, passkey!.id), false, 'not Bob’s')
      t.equal(await h.passkeys.remove(alice, 'not-a-uuid'), false)
      t.equal(await h.passkeys.remove(alice, passkey!.id, { ip: '192.0.2.9' }), true)
      t.equal(await h.passkeys.remove(alice, passkey!.id), false)
      t.equal(await h.passkeys.hasPasskeys(alice.id), false)
      const { rows } = await h.db.query<{ type: string; ip: string }>("SELECT type, ip FROM audit_events WHERE type = 'mfa.passkey_removed'")
      t.same(rows, [{ type: 'mfa.passkey_removed', ip: '192.0.2.9' }])
    })
  })
}
