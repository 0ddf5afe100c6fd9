/**
 * SecondFactors on PGlite and PostgreSQL (SPEC §3), and its passkey hook as the passkeys work
 * will plug in: `methods` from what is enrolled (webauthn once the user has a passkey), a
 * passkey counting as a second factor, a `webauthn` proof checked by the hook with the
 * ceremony it names (amr hwk, user), the admin reset removing passkeys too, and every check
 * counted for gatehouse_mfa_attempts_total. Also: TOTP cannot be set up with a key ring that
 * lives in memory only (it would lock its users out at the next start).
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { AuditLog } from '../src/core/audit.js'
import { ManualClock } from '../src/core/clock.js'
import { DataKeyRing } from '../src/core/data-keys.js'
import { SecondFactors, totpCode, type PasskeyFactor } from '../src/core/mfa/index.js'
import { MemoryInvalidationBus } from '../src/kv/memory-invalidation.js'
import { databaseBackends } from './helpers/backends.js'
import { insertUser } from './helpers/users.js'

/** A stand-in for the passkeys work: passkeys by user, and the assertions it was shown. */
function fakePasskeys(): PasskeyFactor & { keys: Map<string, number>; shown: Array<[string, unknown, string]> } {
  const keys = new Map<string, number>()
  const shown: Array<[string, unknown, string]> = []
  return {
    keys,
    shown,
    countPasskeys: async (userId) => keys.get(userId) ?? 0,
    hasPasskeys: async (userId) => (keys.get(userId) ?? 0) > 0,
    verifyAssertion: async (userId, response, ceremony) => {
      shown.push([userId, response, ceremony])
      return (response as { ok?: boolean }).ok === true ? { userVerified: true } : null
    },
    removeAll: async (userId) => {
      const had = keys.get(userId) ?? 0
      keys.delete(userId)
      return had
    },
  }
}

for (const backend of databaseBackends()) {
  t.test(backend.name, async (t) => {
    const db = await backend.open(t)
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 12, 0, 15))
    const bus = new MemoryInvalidationBus()
    t.teardown(() => bus.close())
    const keys = await DataKeyRing.open(join(await mkdtemp(join(tmpdir(), 'gatehouse-mfa-')), 'data-keys.json'), { create: true })
    const passkeys = fakePasskeys()
    const factors = new SecondFactors({ db, keys, audit: new AuditLog(db), clock, issuer: 'Test', bus, passkeys })
    t.teardown(() => factors.close())
    const attempts: string[] = []
    factors.onAttempt((method, result) => attempts.push(`${method}:${result}`))
    const newUser = async (email: string) => ({ id: await insertUser(db, email), email })

    await t.test('a passkey is a second factor, and webauthn is offered', async (t) => {
      const user = await newUser('passkey@example.com')
      t.same(await factors.methods(user.id), [], 'nothing enrolled')
      t.equal(await factors.hasSecondFactor(user.id), false)
      passkeys.keys.set(user.id, 2)
      bus.publish({ kind: 'user', userId: user.id }) // what the passkeys work does when one is added
      t.equal(await factors.hasSecondFactor(user.id), true)
      t.same(await factors.methods(user.id), ['webauthn'])
      t.same(await factors.status(user.id), { totp: false, passkeys: 2, recovery_codes: 0 })
      const codes = await factors.regenerateRecoveryCodes(user)
      t.same(await factors.methods(user.id), ['webauthn', 'recovery'], 'recovery codes once issued')

      t.same(await factors.verify(user.id, { webauthn: { ok: true } }, 'login-1'), ['hwk', 'user'])
      t.same(passkeys.shown.at(-1), [user.id, { ok: true }, 'login-1'], 'the hook gets the user, the response and the ceremony')
      t.equal(await factors.verify(user.id, { webauthn: { ok: false } }, 'login-2'), null)
      t.same(attempts.slice(-2), ['webauthn:success', 'webauthn:failure'], 'counted')

      t.equal(await factors.reset(user), true)
      t.equal(passkeys.keys.has(user.id), false, 'the admin reset removes passkeys too')
      t.equal(await factors.hasSecondFactor(user.id), false)
      t.equal(await factors.verify(user.id, { recovery_code: codes[0]! }, 'login-3'), null, 'and recovery codes')
    })

    await t.test('TOTP: a pending enrolment is no factor; a code is spent once; removal takes the codes when nothing is left', async (t) => {
      const user = await newUser('totp@example.com')
      const { secret } = await factors.startTotp(user)
      t.equal(await factors.hasSecondFactor(user.id), false, 'pending')
      t.equal(await factors.verify(user.id, { code: totpCode(secret, clock.now()) }, 'x'), null, 'a pending secret signs nobody in')
      await t.rejects(factors.regenerateRecoveryCodes(user), { code: 'GH_VALIDATION' }, 'no recovery codes without a factor')
      const codes = await factors.confirmTotp(user, totpCode(secret, clock.now()))
      t.equal(codes.length, 10)
      t.equal(await factors.hasSecondFactor(user.id), true)
      t.equal(await factors.verify(user.id, { code: totpCode(secret, clock.now()) }, 'x'), null, 'the confirming code is spent')
      t.same(await factors.verify(user.id, { code: totpCode(secret, clock.now() + 30_000) }, 'x'), ['otp'])
      await factors.removeTotp(user)
      t.same(await factors.status(user.id), { totp: false, passkeys: 0, recovery_codes: 0 })
      await t.rejects(factors.removeTotp(user), { code: 'GH_NOT_FOUND' })
      t.equal(await factors.reset(user), false, 'a reset of nothing says so')
    })

    await t.test('no TOTP with a key ring in memory only', async (t) => {
      const user = await newUser('ephemeral@example.com')
      const volatile = new SecondFactors({ db, keys: DataKeyRing.ephemeral(), audit: new AuditLog(db), clock, issuer: 'Test', bus })
      t.teardown(() => volatile.close())
      await t.rejects(volatile.startTotp(user), { code: 'GH_UNAVAILABLE' })
    })
  })
}
