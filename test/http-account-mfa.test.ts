/**
 * The account page's second-factor section (SPEC §5), without JavaScript: set up an
 * authenticator app from its QR code (an inline SVG), confirm it and see the recovery codes
 * once, make new codes and turn it off with the password; open to users who must still enrol
 * (`auth.mfa.required_roles`).
 */
import t from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { totpCode } from '../src/core/mfa/index.js'
import { PASSKEY_SCRIPTS } from '../src/http/login-page.js'
import { browser, login, meStatus, PASSWORD, register, uniqueEmail } from './helpers/auth-client.js'
import { sessionStoreBackends } from './helpers/backends.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'

const STEP = 30_000

function post(gw: TestGateway, token: string, path: string, fields: Record<string, string>) {
  return gw.call('POST', path, {
    body: new URLSearchParams(fields).toString(),
    headers: { ...browser(gw, token), 'content-type': 'application/x-www-form-urlencoded' },
  })
}

t.test('the account page: two-step sign-in without JavaScript', async (t) => {
  const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP + STEP / 2)
  const store = await sessionStoreBackends()[0]!.open(t, { clock })
  const gw = await startTestGateway(t, {
    clock,
    store,
    configure: (raw) => {
      raw.auth.mfa = { required_roles: ['operator'] }
    },
  })
  const email = uniqueEmail('page')
  const user = await register(gw, email)
  // Holding a required role: only the account page and enrolment are open.
  await gw.runtime.users.setRoles(user.id, ['operator'])
  const { token } = await login(gw, email)
  const other = await login(gw, email)

  const page = await gw.call('GET', '/auth/account', { headers: browser(gw, token) })
  t.equal(page.status, 200)
  t.match(page.text, /<h2 id="mfa-title">Two-step sign-in<\/h2>/)
  t.match(page.text, /action="\/auth\/account\/mfa\/totp"/)
  // The only scripts are the passkey files (adding a passkey needs WebAuthn); the forms work without them.
  t.notMatch(page.text.replace(PASSKEY_SCRIPTS, ''), /<script/, 'no script needed')

  const started = await post(gw, token, '/auth/account/mfa/totp', { factor: 'totp' })
  t.equal(started.status, 200, started.text.slice(0, 300))
  t.match(started.text, /<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/, 'the QR code, inline')
  const secret = /<code>([A-Z2-7]{32})<\/code>/.exec(started.text)?.[1]
  t.ok(secret, 'the key, for typing in')
  t.match(started.headers['content-security-policy'], /script-src|default-src 'none'/)

  const wrong = await post(gw, token, '/auth/account/mfa/totp/confirm', { code: totpCode(secret!, clock.now() + 10 * STEP) })
  t.equal(wrong.status, 400)
  t.match(wrong.text, /The code is not right/)
  const confirmed = await post(gw, token, '/auth/account/mfa/totp/confirm', { code: totpCode(secret!, clock.now()) })
  t.equal(confirmed.status, 200)
  const codes = [...confirmed.text.matchAll(/<li><code>([a-z2-9-]{19})<\/code><\/li>/g)].map((m) => m[1])
  t.equal(codes.length, 10, 'ten recovery codes, shown once')
  t.equal(await meStatus(gw, other.token), 401, 'the other session was signed out')
  t.equal(await meStatus(gw, token), 200, 'enrolled: the API is open again')

  const again = await gw.call('GET', '/auth/account', { headers: browser(gw, token) })
  t.notMatch(again.text, new RegExp(codes[0]!), 'not shown again')
  t.match(again.text, /10 of 10 unused/)
  t.match(again.text, /action="\/auth\/account\/mfa\/totp\/remove"/)

  const badPassword = await post(gw, token, '/auth/account/mfa/recovery-codes', { password: 'not the password at all' })
  t.equal(badPassword.status, 401)
  t.match(badPassword.text, /The password is not right/)
  const renewed = await post(gw, token, '/auth/account/mfa/recovery-codes', { password: PASSWORD })
  t.equal(renewed.status, 200)
  const fresh = [...renewed.text.matchAll(/<li><code>([a-z2-9-]{19})<\/code><\/li>/g)].map((m) => m[1])
  t.equal(fresh.length, 10)
  t.notOk(fresh.includes(codes[0]), 'new codes')

  const removed = await post(gw, token, '/auth/account/mfa/totp/remove', { password: PASSWORD })
  t.equal(removed.status, 303)
  t.equal(removed.headers.location, '/auth/account?done=totp_removed')
  t.equal(await meStatus(gw, token), 403, 'a required role without a factor: enrolment again')
})
