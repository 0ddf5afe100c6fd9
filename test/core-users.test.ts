import t, { type Test } from 'tap'
import { AuditLog } from '../src/core/audit.js'
import { ManualClock } from '../src/core/clock.js'
import { LoginThrottle } from '../src/core/login-throttle.js'
import { PasswordHasher, type Argon2Params } from '../src/core/password-hasher.js'
import { UserService } from '../src/core/users.js'
import type { KeyValueStore } from '../src/kv/store.js'
import type { Database } from '../src/storage/database.js'
import { databaseBackends, sessionStoreBackends, type DatabaseBackend } from './helpers/backends.js'

const fast: Argon2Params = { memory_kib: 8192, time_cost: 1, parallelism: 1 }
const roles = { viewer: ['app:read'], operator: ['app:read', 'app:write'], admin: ['*'] }
const password = 'correct horse battery staple'
const lockout = { max_failures: 3, window: 15 * 60_000 }

interface Harness {
  db: Database
  store: KeyValueStore
  clock: ManualClock
  audit: AuditLog
  throttle: LoginThrottle
  users: UserService
  lockouts: () => number
}

const memoryStore = sessionStoreBackends().find((backend) => backend.name === 'memory')!

async function harness(t: Test, backend: DatabaseBackend, argon2: Argon2Params = fast): Promise<Harness> {
  const db = await backend.open(t)
  const clock = new ManualClock()
  const store = await memoryStore.open(t, { clock })
  let lockouts = 0
  const throttle = new LoginThrottle({
    store,
    lockout,
    loginRateLimit: { max: 5, window: 60_000 },
    onLockout: () => lockouts++,
  })
  const audit = new AuditLog(db)
  const users = new UserService({
    db,
    hasher: new PasswordHasher(argon2),
    audit,
    throttle,
    passwordPolicy: { min_length: 15, require_classes: false },
    roles,
    defaultRoles: ['viewer'],
  })
  return { db, store, clock, audit, throttle, users, lockouts: () => lockouts }
}

async function rowCounts(db: Database): Promise<{ users: number; audit: number }> {
  const result = await db.query<{ users: number; audit: number }>(
    'SELECT (SELECT count(*)::int FROM users) AS users, (SELECT count(*)::int FROM audit_events) AS audit',
  )
  return result.rows[0]!
}

async function auditTypes(h: Harness, userId?: string): Promise<string[]> {
  return (await h.audit.list({ userId, limit: 100 })).map((entry) => entry.type).reverse()
}

for (const backend of databaseBackends()) {
  t.test(backend.name, async (t) => {
    t.test('register creates a user with default roles and an audit event', async (t) => {
      const h = await harness(t, backend)
      const user = await h.users.register({ email: '  Alice@Example.COM ', password, name: '  Alice  ' }, { ip: '192.0.2.1' })
      t.match(user, { email: 'alice@example.com', name: 'Alice', roles: ['viewer'] })
      t.match(user.id, /^[0-9a-f-]{36}$/)
      t.match(user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      t.same(Object.keys(user).sort(), ['created_at', 'email', 'email_verified', 'id', 'name', 'roles'], 'the public shape, no hash')
      const [entry] = await h.audit.list({ limit: 10 })
      t.match(entry, { type: 'user.registered', user_id: user.id, email: 'alice@example.com', ip: '192.0.2.1' })
      t.same(await h.users.get(user.id), { ...user, disabled: false })
      t.same(await h.users.getByEmail('ALICE@example.com'), { ...user, disabled: false })
      t.equal(await h.users.count(), 1)
    })

    t.test('register with explicit roles, no name, and without a password', async (t) => {
      const h = await harness(t, backend)
      const admin = await h.users.register({ email: 'admin@example.com', password }, { roles: ['admin', 'viewer', 'admin'], actorId: null })
      t.same(admin.roles, ['admin', 'viewer'])
      t.equal(admin.name, null)
      const oidc = await h.users.register({ email: 'sso@example.com', password: null })
      t.equal(oidc.email, 'sso@example.com')
      await t.rejects(h.users.authenticate({ email: 'sso@example.com', password }), { code: 'GH_INVALID_CREDENTIALS' })
    })

    t.test('every rejection of register writes nothing', async (t) => {
      const h = await harness(t, backend)
      await h.users.register({ email: 'taken@example.com', password })
      const before = await rowCounts(h.db)
      const cases: Array<[string, Parameters<UserService['register']>, { code: string; [key: string]: unknown }]> = [
        ['bad email', [{ email: 'not an email', password }], { code: 'GH_VALIDATION', details: { field: 'email' } }],
        ['short password', [{ email: 'b@example.com', password: 'short' }], { code: 'GH_VALIDATION', details: { field: 'password', problems: [/at least 15/] } }],
        ['long password', [{ email: 'b@example.com', password: 'x'.repeat(129) }], { code: 'GH_VALIDATION', details: { field: 'password' } }],
        ['common password', [{ email: 'b@example.com', password: 'passwordpassword' }], { code: 'GH_VALIDATION', details: { field: 'password', problems: [/common/] } }],
        ['password is the email', [{ email: 'longlocalpart@example.com', password: 'LongLocalPart@example.com' }], { code: 'GH_VALIDATION', details: { field: 'password' } }],
        ['missing password', [{ email: 'b@example.com' } as never], { code: 'GH_VALIDATION', details: { field: 'password' } }],
        ['empty name', [{ email: 'b@example.com', password, name: '   ' }], { code: 'GH_VALIDATION', details: { field: 'name' } }],
        ['long name', [{ email: 'b@example.com', password, name: 'n'.repeat(101) }], { code: 'GH_VALIDATION', details: { field: 'name' } }],
        ['control in name', [{ email: 'b@example.com', password, name: 'Bob\u0007' }], { code: 'GH_VALIDATION', details: { field: 'name' } }],
        ['bidi override in name', [{ email: 'b@example.com', password, name: 'Bob\u202Egnp.exe' }], { code: 'GH_VALIDATION', details: { field: 'name' } }],
        ['unknown role', [{ email: 'b@example.com', password }, { roles: ['viewer', 'root'] }], { code: 'GH_VALIDATION', details: { field: 'roles', unknown: ['root'] } }],
        ['taken', [{ email: 'taken@example.com', password }], { code: 'GH_EMAIL_TAKEN', statusCode: 409 }],
        ['taken, other case and spaces', [{ email: ' TAKEN@Example.com\t', password }], { code: 'GH_EMAIL_TAKEN' }],
      ]
      for (const [why, args, expected] of cases) {
        await t.rejects(h.users.register(...args), expected, why)
      }
      t.same(await rowCounts(h.db), before, 'no user and no audit event written')
      t.same(
        await h.users.register({ email: 'b@example.com', password, name: 'n'.repeat(100) }).then((u) => u.name?.length),
        100,
        '100 code points is fine',
      )
    })

    t.test('concurrent registrations of one email: one wins, the other is GH_EMAIL_TAKEN', async (t) => {
      const h = await harness(t, backend)
      const results = await Promise.allSettled([
        h.users.register({ email: 'race@example.com', password }),
        h.users.register({ email: 'RACE@example.com', password }),
      ])
      t.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      t.match(rejected?.reason, { code: 'GH_EMAIL_TAKEN' })
      t.same(await rowCounts(h.db), { users: 1, audit: 1 })
    })

    t.test('authenticate: success, and the same error for every failure', async (t) => {
      const h = await harness(t, backend)
      const alice = await h.users.register({ email: 'alice@example.com', password })
      const bob = await h.users.register({ email: 'bob@example.com', password })
      await h.users.setDisabled(bob.id, true)
      await h.users.register({ email: 'nopass@example.com', password: null })

      const ok = await h.users.authenticate({ email: ' ALICE@example.com', password, ip: '192.0.2.9' })
      t.same(ok, alice)
      const failures: Array<[string, string, string]> = [
        ['wrong password', 'alice@example.com', 'wrong horse battery staple'],
        ['unknown email', 'nobody@example.com', password],
        ['disabled user', 'bob@example.com', password],
        ['user without password', 'nopass@example.com', password],
        ['malformed email', 'not an email', password],
        ['empty password', 'alice@example.com', ''],
        ['password over 128', 'alice@example.com', password + 'x'.repeat(128)],
      ]
      for (const [why, email, attempt] of failures) {
        const err = await h.users.authenticate({ email, password: attempt, ip: '192.0.2.9' }).catch((e: unknown) => e)
        t.match(err, { code: 'GH_INVALID_CREDENTIALS', statusCode: 401, message: 'Invalid email or password' }, why)
      }
      const entries = await h.audit.list({ limit: 100 })
      const failed = entries.filter((entry) => entry.type === 'login.failed')
      t.equal(failed.length, failures.length)
      const unknown = failed.find((entry) => entry.email === 'nobody@example.com')
      t.match(unknown, { user_id: null, ip: '192.0.2.9', details: { reason: 'unknown_email' } })
      t.match(failed.find((entry) => entry.email === 'bob@example.com'), { user_id: bob.id, details: { reason: 'disabled' } })
      t.match(entries.find((entry) => entry.type === 'login.succeeded'), { user_id: alice.id, ip: '192.0.2.9' })
    })

    t.test('lockout after max_failures, for known and unknown accounts alike', async (t) => {
      const h = await harness(t, backend)
      await h.users.register({ email: 'alice@example.com', password })
      for (const email of ['alice@example.com', 'ghost@example.com']) {
        for (let i = 0; i < lockout.max_failures; i++) {
          await t.rejects(h.users.authenticate({ email, password: 'wrong password here' }), { code: 'GH_INVALID_CREDENTIALS' })
        }
        const err = await h.users.authenticate({ email: email.toUpperCase(), password }).catch((e: unknown) => e)
        t.match(err, { code: 'GH_RATE_LIMITED', statusCode: 429 }, `${email} locked, even with the right password`)
        t.ok((err as { retryAfter: number }).retryAfter >= 1 && (err as { retryAfter: number }).retryAfter <= 900)
      }
      t.equal(h.lockouts(), 2, 'onLockout called once per account')
      const locked = (await h.audit.list({ limit: 100 })).filter((entry) => entry.type === 'login.locked')
      t.same(locked.map((entry) => entry.email).sort(), ['alice@example.com', 'ghost@example.com'])

      h.clock.advance(lockout.window)
      t.match(await h.users.authenticate({ email: 'alice@example.com', password }), { email: 'alice@example.com' }, 'unlocked when the window ends')
    })

    t.test('a success clears the failure count', async (t) => {
      const h = await harness(t, backend)
      await h.users.register({ email: 'alice@example.com', password })
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < lockout.max_failures - 1; i++) {
          await t.rejects(h.users.authenticate({ email: 'alice@example.com', password: 'wrong password here' }))
        }
        await h.users.authenticate({ email: 'alice@example.com', password })
      }
      t.equal(h.lockouts(), 0)
    })

    t.test('a hash with old parameters is replaced at login', async (t) => {
      const h = await harness(t, backend)
      const user = await h.users.register({ email: 'alice@example.com', password })
      const hashOf = async (): Promise<string> =>
        (await h.db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [user.id])).rows[0]!.password_hash
      const oldHash = await hashOf()
      t.match(oldHash, /m=8192,p=1,t=1\$/)

      const stronger = { memory_kib: 9216, time_cost: 2, parallelism: 1 }
      const upgraded = new UserService({
        db: h.db,
        hasher: new PasswordHasher(stronger),
        audit: h.audit,
        throttle: h.throttle,
        passwordPolicy: { min_length: 15, require_classes: false },
        roles,
        defaultRoles: ['viewer'],
      })
      await upgraded.authenticate({ email: 'alice@example.com', password })
      const newHash = await hashOf()
      t.match(newHash, /^\$argon2id\$v=19\$m=9216,p=1,t=2\$/, 'rehashed with the configured parameters')
      await upgraded.authenticate({ email: 'alice@example.com', password })
      t.equal(await hashOf(), newHash, 'no rehash when the parameters match')
      await t.rejects(upgraded.authenticate({ email: 'alice@example.com', password: 'wrong password here' }))
      t.equal(await hashOf(), newHash, 'a failed login changes nothing')
    })

    t.test('get and isActive', async (t) => {
      const h = await harness(t, backend)
      const user = await h.users.register({ email: 'alice@example.com', password })
      for (const id of ['', 'nope', '00000000-0000-0000-0000-00000000000g', "'; DROP TABLE users; --", user.id + 'x']) {
        t.equal(await h.users.get(id), null, JSON.stringify(id))
        t.equal(await h.users.isActive(id), null)
      }
      t.equal(await h.users.get('00000000-0000-4000-8000-000000000000'), null)
      t.equal(await h.users.get(user.id.toUpperCase()).then((u) => u?.id), user.id)
      t.same(await h.users.isActive(user.id), user)
      await h.users.setDisabled(user.id, true)
      t.equal(await h.users.isActive(user.id), null, 'disabled')
      t.match(await h.users.get(user.id), { disabled: true })
      await h.users.setDisabled(user.id, false)
      t.same(await h.users.isActive(user.id), user)
      await h.users.delete(user.id)
      t.equal(await h.users.isActive(user.id), null, 'deleted')
      t.equal(await h.users.getByEmail('not an email'), null)
    })

    t.test('list walks every page once, and refuses a bad cursor', async (t) => {
      const h = await harness(t, backend)
      const created: string[] = []
      for (let i = 0; i < 5; i++) created.push((await h.users.register({ email: `user${i}@example.com`, password: null })).id)
      const seen: string[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const page: Awaited<ReturnType<UserService['list']>> = await h.users.list({ limit: 2, cursor })
        t.ok(page.items.length <= 2)
        seen.push(...page.items.map((user) => user.id))
        cursor = page.next_cursor
        pages++
      } while (cursor !== null)
      t.equal(pages, 3)
      t.same(seen, created, 'oldest first, no duplicates, none missing')
      t.same((await h.users.list({ limit: 5 })).next_cursor, null, 'an exact fit has no next page')
      t.same((await h.users.list({ limit: 100 })).items.length, 5)

      const valid = (await h.users.list({ limit: 1 })).next_cursor!
      const forged = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
      const bad = [
        'garbage!',
        'bm90IGpzb24',
        forged({ a: 1 }),
        forged(['2026-01-01T00:00:00.000000Z']),
        forged(['2026-13-01T00:00:00.000000Z', created[0]]),
        forged(['2026-02-30T00:00:00.000000Z', created[0]]),
        forged(['yesterday', created[0]]),
        forged(['2026-01-01T00:00:00.000000Z', 'not-a-uuid']),
        valid + 'x'.repeat(300),
      ]
      for (const cursor of bad) {
        await t.rejects(h.users.list({ limit: 2, cursor }), { code: 'GH_VALIDATION', details: { field: 'cursor' } }, cursor)
      }
      for (const limit of [0, -1, 1.5, 101, Number.NaN]) {
        await t.rejects(h.users.list({ limit }), { code: 'GH_VALIDATION', details: { field: 'limit' } }, String(limit))
      }
    })

    t.test('updateName', async (t) => {
      const h = await harness(t, backend)
      const user = await h.users.register({ email: 'alice@example.com', password, name: 'Alice' })
      t.match(await h.users.updateName(user.id, ' Alice Liddell '), { id: user.id, name: 'Alice Liddell' })
      t.match(await h.users.updateName(user.id, null), { name: null })
      t.match(await h.users.updateName(user.id, '👩‍💻 Zoë'), { name: '👩‍💻 Zoë' }, 'emoji with ZWJ are fine')
      await t.rejects(h.users.updateName(user.id, ''), { code: 'GH_VALIDATION' })
      await t.rejects(h.users.updateName('00000000-0000-4000-8000-000000000000', 'X'), { code: 'GH_NOT_FOUND' })
      await t.rejects(h.users.updateName('nope', 'X'), { code: 'GH_NOT_FOUND' })
      t.same((await auditTypes(h, user.id)).filter((type) => type === 'user.updated').length, 3)
    })

    t.test('changePassword', async (t) => {
      const h = await harness(t, backend)
      const user = await h.users.register({ email: 'alice@example.com', password })
      const next = 'a brand new passphrase'
      await t.rejects(h.users.changePassword(user.id, 'not the password', next), { code: 'GH_INVALID_CREDENTIALS' })
      await t.rejects(h.users.changePassword(user.id, password, 'short'), { code: 'GH_VALIDATION', details: { field: 'password' } })
      await t.rejects(h.users.changePassword(user.id, password, 'alice@example.com'), { code: 'GH_VALIDATION' })
      await h.users.changePassword(user.id, password, next, { ip: '192.0.2.5' })
      await t.rejects(h.users.authenticate({ email: 'alice@example.com', password }), { code: 'GH_INVALID_CREDENTIALS' })
      t.match(await h.users.authenticate({ email: 'alice@example.com', password: next }), { id: user.id })
      t.ok((await auditTypes(h, user.id)).includes('password.changed'))
      await t.rejects(h.users.changePassword('00000000-0000-4000-8000-000000000000', next, password), { code: 'GH_NOT_FOUND' })
    })

    t.test('guessing the current password is throttled like a login', async (t) => {
      const h = await harness(t, backend)
      const user = await h.users.register({ email: 'alice@example.com', password })
      for (let i = 0; i < lockout.max_failures; i++) {
        await t.rejects(h.users.changePassword(user.id, `guess number ${i}`, 'a brand new passphrase'), { code: 'GH_INVALID_CREDENTIALS' })
      }
      await t.rejects(h.users.changePassword(user.id, password, 'a brand new passphrase'), { code: 'GH_RATE_LIMITED' })
      await t.rejects(h.users.delete(user.id, { password }), { code: 'GH_RATE_LIMITED' })
    })

    t.test('setRoles', async (t) => {
      const h = await harness(t, backend)
      const admin = await h.users.register({ email: 'admin@example.com', password: null }, { roles: ['admin'] })
      const user = await h.users.register({ email: 'alice@example.com', password: null })
      t.match(await h.users.setRoles(user.id, ['operator', 'viewer'], { actorId: admin.id, ip: '192.0.2.1' }), {
        roles: ['operator', 'viewer'],
        disabled: false,
      })
      const before = await rowCounts(h.db)
      await t.rejects(h.users.setRoles(user.id, ['superuser']), { code: 'GH_VALIDATION', details: { field: 'roles' } })
      await t.rejects(h.users.setRoles('00000000-0000-4000-8000-000000000000', ['viewer']), { code: 'GH_NOT_FOUND' })
      t.same(await rowCounts(h.db), before)
      t.same((await h.users.setRoles(user.id, [])).roles, [])
      const [entry] = (await h.audit.list({ userId: user.id, limit: 10 })).filter((e) => e.type === 'user.roles_changed').reverse()
      t.match(entry, { details: { from: ['viewer'], to: ['operator', 'viewer'], actor_id: admin.id }, ip: '192.0.2.1' })
    })

    t.test('setDisabled audits changes only', async (t) => {
      const h = await harness(t, backend)
      const user = await h.users.register({ email: 'alice@example.com', password })
      await h.users.setDisabled(user.id, true)
      await h.users.setDisabled(user.id, true)
      await h.users.setDisabled(user.id, false)
      t.same(await auditTypes(h, user.id), ['user.registered', 'user.disabled', 'user.enabled'])
      await t.rejects(h.users.setDisabled('00000000-0000-4000-8000-000000000000', true), { code: 'GH_NOT_FOUND' })
    })

    t.test('delete: with a password it must verify; PATs cascade; audited', async (t) => {
      const h = await harness(t, backend)
      const user = await h.users.register({ email: 'alice@example.com', password })
      await h.db.query(
        "INSERT INTO personal_access_tokens (user_id, name, token_hash, mask) VALUES ($1, 'ci', 'hash', 'pat_abcd…wxyz')",
        [user.id],
      )
      await t.rejects(h.users.delete(user.id, { password: 'not the password' }), { code: 'GH_INVALID_CREDENTIALS' })
      t.ok(await h.users.get(user.id), 'still there')
      await h.users.delete(user.id, { password, ip: '192.0.2.3' })
      t.equal(await h.users.get(user.id), null)
      const tokens = await h.db.query('SELECT 1 FROM personal_access_tokens WHERE user_id = $1', [user.id])
      t.equal(tokens.rows.length, 0, 'PATs deleted with the user')
      t.match((await h.audit.list({ limit: 1 }))[0], { type: 'user.deleted', user_id: user.id, email: 'alice@example.com' })
      await t.rejects(h.users.delete(user.id), { code: 'GH_NOT_FOUND' })
      t.equal(await h.users.count(), 0)

      const other = await h.users.register({ email: 'other@example.com', password })
      await h.users.delete(other.id, { actorId: user.id })
      t.equal(await h.users.count(), 0, 'an admin deletes without a password')
      const nopass = await h.users.register({ email: 'nopass@example.com', password: null })
      await t.rejects(h.users.delete(nopass.id, { password }), { code: 'GH_INVALID_CREDENTIALS' })
    })
  })
}
