/**
 * The OIDC account rules without HTTP or a provider (core/oidc-accounts.ts, core/oidc-pending.ts):
 * which claims are accepted, when a first sign-in links, creates or is refused, what is
 * audited, and that a pending login is good once and for a limited time.
 */
import t, { type Test } from 'tap'
import { AuditLog } from '../src/core/audit.js'
import { ManualClock } from '../src/core/clock.js'
import { displayNameOf, emailVerifiedOf, OidcAccounts, type OidcAccountPolicy } from '../src/core/oidc-accounts.js'
import { PendingLogins } from '../src/core/oidc-pending.js'
import { GatehouseError } from '../src/errors.js'
import type { Database } from '../src/storage/database.js'
import { databaseBackends, sessionStoreBackends } from './helpers/backends.js'
import { insertUser } from './helpers/users.js'

const ISSUER = 'https://idp.example.com'

function policy(overrides: Partial<OidcAccountPolicy> = {}): OidcAccountPolicy {
  return {
    name: 'corp',
    issuer: ISSUER,
    allowed_email_domains: null,
    create_users: true,
    link_existing_users: false,
    trust_unverified_email: false,
    roles_claim: null,
    role_map: {},
    allowed_groups: null,
    ...overrides,
  }
}

async function refusal(t: Test, promise: Promise<unknown>, reason: string, what: string): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  )
  t.type(err, GatehouseError, `${what}: refused`)
  t.equal((err as GatehouseError).code, 'GH_OIDC_REFUSED', `${what}: GH_OIDC_REFUSED`)
  t.equal((err as GatehouseError).statusCode, 403)
  t.same((err as GatehouseError).details, { reason }, `${what}: ${reason}, and nothing else in the details`)
}

async function count(db: Database, table: 'users' | 'user_identities'): Promise<number> {
  const result = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)
  return Number(result.rows[0]?.n)
}

async function insertViewer(db: Database, email: string, disabled = false): Promise<string> {
  return insertUser(db, email, { roles: ['viewer'], disabled, passwordHash: 'x' })
}

t.test('claim helpers', async (t) => {
  t.equal(emailVerifiedOf(true), true)
  t.equal(emailVerifiedOf('true'), true, 'the string form some providers send')
  t.equal(emailVerifiedOf(false), false)
  t.equal(emailVerifiedOf('false'), false)
  for (const value of [undefined, null, 1, 'yes', {}]) t.equal(emailVerifiedOf(value), undefined, `${JSON.stringify(value)} counts as absent`)
  t.equal(displayNameOf('  Ada\u202E Lovelace\n '), 'Ada  Lovelace', 'controls and bidi overrides become spaces, trimmed')
  t.equal(displayNameOf('x'.repeat(500)), 'x'.repeat(100), 'shortened to 100')
  t.equal(displayNameOf('   '), null)
  t.equal(displayNameOf(42), null)
})

for (const backend of databaseBackends()) {
  t.test(backend.name, async (t) => {
    async function setup(t: Test) {
      const db = await backend.open(t)
      const audit = new AuditLog(db)
      const accounts = new OidcAccounts({ db, audit, defaultRoles: ['viewer'] })
      return { db, audit, accounts }
    }

    t.test('a first sign-in creates a password-less user; the next finds it by (issuer, sub)', async (t) => {
      const { db, audit, accounts } = await setup(t)
      const first = await accounts.signIn(policy(), { sub: 's1', email: 'Ann@Example.COM', email_verified: true, name: 'Ann' }, { ip: '192.0.2.1' })
      t.equal(first.outcome, 'created')
      t.match(first.user, { email: 'ann@example.com', name: 'Ann', roles: ['viewer'] })
      const row = await db.query<{ password_hash: string | null }>('SELECT password_hash FROM users WHERE id = $1', [first.user.id])
      t.equal(row.rows[0]?.password_hash, null, 'no password')
      const again = await accounts.signIn(policy(), { sub: 's1', email: 'ann.new@example.com', email_verified: true })
      t.equal(again.outcome, 'existing')
      t.equal(again.user.id, first.user.id, 'the same user, though the provider email changed')
      t.equal(again.user.email, 'ann@example.com', 'the local email stays')
      t.same(await accounts.identitiesOf(first.user.id), [{ issuer: ISSUER, subject: 's1', email: 'ann.new@example.com' }], 'the identity keeps the latest provider email')
      const other = await accounts.signIn(policy({ issuer: 'https://other.example.com' }), { sub: 's1', email: 'zed@example.com', email_verified: true })
      t.not(other.user.id, first.user.id, 'the same sub at another issuer is someone else')
      const types = (await audit.list({ userId: first.user.id, limit: 10 })).map((e) => e.type).reverse()
      t.same(types, ['user.registered', 'identity.linked', 'login.succeeded', 'login.succeeded'])
    })

    t.test('the email rules', async (t) => {
      const { db, accounts, audit } = await setup(t)
      await refusal(t, accounts.signIn(policy(), { sub: 'a', email_verified: true }), 'email_missing', 'no email')
      await refusal(t, accounts.signIn(policy(), { sub: 'a', email: 'not an email', email_verified: true }), 'email_invalid', 'a malformed email')
      await refusal(t, accounts.signIn(policy(), { sub: 'a', email: 'a@example.com', email_verified: false }), 'email_unverified', 'email_verified false')
      await refusal(t, accounts.signIn(policy(), { sub: 'a', email: 'a@example.com' }), 'email_unverified', 'no email_verified')
      await refusal(
        t,
        accounts.signIn(policy({ trust_unverified_email: true }), { sub: 'a', email: 'a@example.com', email_verified: false }),
        'email_unverified',
        'trust_unverified_email never accepts an explicit false',
      )
      await refusal(t, accounts.signIn(policy(), { sub: '', email: 'a@example.com', email_verified: true }), 'invalid_subject', 'an empty sub')
      await refusal(t, accounts.signIn(policy(), { sub: 'x'.repeat(256), email: 'a@example.com', email_verified: true }), 'invalid_subject', 'a sub over 255')
      const domains = policy({ allowed_email_domains: ['example.com'] })
      await refusal(t, accounts.signIn(domains, { sub: 'a', email: 'a@sub.example.com', email_verified: true }), 'domain_not_allowed', 'a subdomain')
      await refusal(t, accounts.signIn(domains, { sub: 'a', email: 'a@example.com.evil', email_verified: true }), 'domain_not_allowed', 'a suffix')
      t.equal((await accounts.signIn(domains, { sub: 'a', email: 'A@EXAMPLE.COM', email_verified: 'true' })).outcome, 'created', 'case-insensitive')
      t.equal(await count(db, 'users'), 1)
      const trusting = await accounts.signIn(policy({ trust_unverified_email: true }), { sub: 'b', email: 'b@example.com' })
      t.equal(trusting.outcome, 'created', 'trust_unverified_email accepts a missing claim')
      const failed = (await audit.list({ limit: 50 })).filter((e) => e.type === 'login.failed')
      t.equal(failed.length, 9, 'every refusal audited')
      t.match(failed.find((e) => e.details.reason === 'domain_not_allowed'), { email: 'a@example.com.evil', details: { amr: 'oidc', provider: 'corp', issuer: ISSUER, subject: 'a' } })
    })

    t.test('a local user with the same email', async (t) => {
      const { db, accounts } = await setup(t)
      const local = await insertViewer(db, 'bob@example.com')
      const claims = { sub: 'bob', email: 'bob@example.com', email_verified: true }
      await refusal(t, accounts.signIn(policy(), claims), 'link_disabled', 'link_existing_users false')
      await refusal(
        t,
        accounts.signIn(policy({ link_existing_users: true, trust_unverified_email: true }), { sub: 'bob', email: 'bob@example.com' }),
        'link_unverified',
        'linking needs email_verified true, trust_unverified_email or not',
      )
      t.equal(await count(db, 'user_identities'), 0)
      const linked = await accounts.signIn(policy({ link_existing_users: true, create_users: false }), claims)
      t.same([linked.outcome, linked.user.id], ['linked', local])
      await refusal(
        t,
        accounts.signIn(policy({ link_existing_users: true }), { sub: 'bob-2', email: 'bob@example.com', email_verified: true }),
        'already_linked',
        'a second identity of the same issuer',
      )
      const disabled = await insertViewer(db, 'dis@example.com', true)
      await refusal(t, accounts.signIn(policy({ link_existing_users: true }), { sub: 'dis', email: 'dis@example.com', email_verified: true }), 'user_disabled', 'a disabled local user')
      t.same(await accounts.identitiesOf(disabled), [])
      await refusal(t, accounts.signIn(policy({ create_users: false }), { sub: 'new', email: 'new@example.com', email_verified: true }), 'no_account', 'create_users false')
    })

    t.test('a disabled user is refused; a deleted user takes its identities along', async (t) => {
      const { db, accounts } = await setup(t)
      const { user } = await accounts.signIn(policy(), { sub: 'c', email: 'c@example.com', email_verified: true })
      await db.query('UPDATE users SET disabled = true WHERE id = $1', [user.id])
      await refusal(t, accounts.signIn(policy(), { sub: 'c', email: 'c@example.com', email_verified: true }), 'user_disabled', 'disabled')
      await db.query('DELETE FROM users WHERE id = $1', [user.id])
      t.equal(await count(db, 'user_identities'), 0, 'ON DELETE CASCADE')
      t.equal((await accounts.signIn(policy(), { sub: 'c', email: 'c@example.com', email_verified: true })).outcome, 'created', 'a new user next time')
    })

    t.test('concurrent first sign-ins of one identity make one user', async (t) => {
      const { db, accounts } = await setup(t)
      const claims = { sub: 'race', email: 'race@example.com', email_verified: true }
      const results = await Promise.allSettled([1, 2, 3].map(() => accounts.signIn(policy(), claims)))
      const users = new Set(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.user.id] : [])))
      t.equal(users.size, 1, 'one user id')
      t.equal(await count(db, 'users'), 1)
      t.equal(await count(db, 'user_identities'), 1)
    })
  })
}

t.test('pending logins: single use, bound to the handle, expiring', async (t) => {
  const clock = new ManualClock()
  const store = await sessionStoreBackends()[0]!.open(t, { clock })
  const pending = new PendingLogins({ store, clock })
  const login = { provider: 'corp', state: 's', nonce: 'n', codeVerifier: 'v', next: '/x' }
  const handle = await pending.begin(login)
  t.match(handle, /^[A-Za-z0-9_-]{43}$/)
  t.equal(await pending.take('not a handle'), null, 'a malformed handle')
  t.equal(await pending.take('A'.repeat(43)), null, 'an unknown handle')
  t.same(await pending.take(handle), login)
  t.equal(await pending.take(handle), null, 'only once')

  const raced = await pending.begin(login)
  const both = await Promise.all([pending.take(raced), pending.take(raced)])
  t.equal(both.filter((x) => x !== null).length, 1, 'two takes at once: one wins')

  const old = await pending.begin(login)
  clock.advance(pending.ttlMs)
  t.equal(await pending.take(old), null, 'expired by the clock, whatever the store keeps')
})
