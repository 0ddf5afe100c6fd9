/**
 * TOTP and recovery codes as SPEC §3 fixes them, without a server: RFC 6238's SHA-1 test
 * vectors (6 digits), the step arithmetic, one step of drift either way and never two, and
 * recovery codes (10, distinct, normalised when typed, hashed).
 */
import t from 'tap'
import { matchTotpStep, totpCode, totpStep } from '../src/core/mfa/index.js'
import { hashRecoveryCode, newRecoveryCodes, normaliseRecoveryCode } from '../src/core/mfa/recovery-codes.js'

// RFC 6238 appendix B: the ASCII secret "12345678901234567890", base32.
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'

t.test('RFC 6238 test vectors (SHA-1), last six digits', async (t) => {
  const vectors: Array<[number, string]> = [
    [59, '287082'],
    [1111111109, '081804'],
    [1111111111, '050471'],
    [1234567890, '005924'],
    [2000000000, '279037'],
  ]
  for (const [seconds, code] of vectors) {
    t.equal(totpCode(RFC_SECRET, seconds * 1000), code, `T=${seconds}`)
    t.equal(matchTotpStep(RFC_SECRET, code, seconds * 1000), Math.floor(seconds / 30), `accepted at T=${seconds}, its step`)
  }
})

t.test('one step of drift either way, never two; only six digits', async (t) => {
  const now = 1_800_000_015_000
  const step = totpStep(now)
  t.equal(matchTotpStep(RFC_SECRET, totpCode(RFC_SECRET, now - 30_000), now), step - 1, 'one behind')
  t.equal(matchTotpStep(RFC_SECRET, totpCode(RFC_SECRET, now + 30_000), now), step + 1, 'one ahead')
  t.equal(matchTotpStep(RFC_SECRET, totpCode(RFC_SECRET, now - 60_000), now), null, 'two behind')
  t.equal(matchTotpStep(RFC_SECRET, totpCode(RFC_SECRET, now + 60_000), now), null, 'two ahead')
  const code = totpCode(RFC_SECRET, now)
  t.equal(matchTotpStep(RFC_SECRET, `${code.slice(0, 3)} ${code.slice(3)}`, now), step, 'spaces typed between the digits')
  for (const bad of ['', '12345', '1234567', 'abcdef', `${code}0`, ' '.repeat(6)]) t.equal(matchTotpStep(RFC_SECRET, bad, now), null, JSON.stringify(bad))
})

t.test('recovery codes: ten distinct, typed in any case and grouping, stored hashed', async (t) => {
  const codes = newRecoveryCodes()
  t.equal(codes.length, 10)
  t.equal(new Set(codes).size, 10)
  const [code] = codes as [string]
  t.match(code, /^[a-hjkmnp-z2-9]{4}(-[a-hjkmnp-z2-9]{4}){3}$/, 'no look-alikes (i, l, o, 0, 1)')
  t.equal(normaliseRecoveryCode(code.toUpperCase().replace(/-/g, ' ')), code.replace(/-/g, ''))
  t.equal(hashRecoveryCode(code.toUpperCase()), hashRecoveryCode(code), 'the same hash however typed')
  t.not(hashRecoveryCode(code), code)
  t.equal(normaliseRecoveryCode('too-short'), null)
  t.equal(normaliseRecoveryCode('0000-0000-0000-0000'), null, 'characters outside the alphabet')
})
