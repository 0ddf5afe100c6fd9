/**
 * Second factors at the edge (SPEC §3): route `mfa: required` (403 GH_MFA_REQUIRED, a browser
 * navigation to the step-up page), step-up (a new session whose amr adds the factor, the old one
 * ended, back to a safe next), PATs that satisfy it only when made by a session with a second
 * factor and while their user still has one, forward auth deciding the same, the enrolment gate
 * of `auth.mfa.required_roles`, the admin reset and `user reset-mfa` through the control socket's
 * command set. Real gateway, real upstream, ManualClock.
 */
import t from 'tap'
import { decodeJwt } from 'jose'
import { ManualClock } from '../src/core/clock.js'
import { totpCode } from '../src/core/mfa/index.js'
import { runControlRequest, servicesOf } from '../src/control/commands.js'
import { assertError, bearer, browser, login, meStatus, PASSWORD, register, setCookies, uniqueEmail } from './helpers/auth-client.js'
import { sessionStoreBackends } from './helpers/backends.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'
import { enrolledUser, mfaLogin } from './helpers/mfa-client.js'
import { startUpstream } from './helpers/upstream.js'

const STEP = 30_000
const ORIGIN = 'https://gatehouse.test'
const HTML = { accept: 'text/html,application/xhtml+xml' }

function form(fields: Record<string, string>, headers: Record<string, string>) {
  return { body: new URLSearchParams(fields).toString(), headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', origin: ORIGIN } }
}

async function createPat(gw: TestGateway, sessionToken: string): Promise<string> {
  const created = await gw.call('POST', '/auth/tokens', { headers: bearer(sessionToken), json: { name: `pat-${Math.random()}` } })
  if (created.status !== 201) throw new Error(`token: ${created.status} ${created.text}`)
  return created.json<{ token: string }>().token
}

t.test('route mfa: required', async (t) => {
  const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP + STEP / 2)
  const store = await sessionStoreBackends()[0]!.open(t, { clock })
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    clock,
    store,
    configure: (raw) => {
      raw.sessions = { cookie_domain: 'gatehouse.test' }
      raw.forward_auth = { trusted: ['127.0.0.1/32'], headers: 'forwarded' }
      raw.routes = [
        { name: 'secure', match: '/secure', upstream: upstream.url, mfa: 'required' },
        { name: 'plain', match: '/plain', upstream: upstream.url },
        { name: 'guarded', host: 'app.gatehouse.test', match: '/', mfa: 'required' },
      ]
    },
  })

  await t.test('a password-only session: 403 GH_MFA_REQUIRED; a browser navigation goes to step-up', async (t) => {
    const email = uniqueEmail('pwd')
    await register(gw, email)
    const { token } = await login(gw, email)
    t.equal((await gw.call('GET', '/plain/x', { headers: bearer(token) })).status, 200, 'other routes are unaffected')
    assertError(t, await gw.call('GET', '/secure/x?a=1', { headers: bearer(token) }), 403, 'GH_MFA_REQUIRED')
    const navigation = await gw.call('GET', '/secure/x?a=1', { headers: { ...browser(gw, token), ...HTML } })
    t.equal(navigation.status, 302)
    t.equal(navigation.headers.location, `/auth/login/step-up?next=${encodeURIComponent('/secure/x?a=1')}`)
    const decisions = await gw.metrics.registry.getSingleMetricAsString('gatehouse_decisions_total')
    t.match(decisions, /route="secure",outcome="forbidden"\} [1-9]/, 'counted as forbidden')
  })

  await t.test('a session with a second factor passes, and its assertion says so', async (t) => {
    const user = await enrolledUser(gw, 'otp', clock.now())
    clock.advance(STEP)
    const token = await mfaLogin(gw, user.email, user.secret, clock.now())
    t.equal((await gw.call('GET', '/secure/x', { headers: bearer(token) })).status, 200)
    const assertion = upstream.last().headers['x-auth-assertion'] as string
    t.same(decodeJwt(assertion).amr, ['pwd', 'otp'])
  })

  await t.test('step-up: asks for the factor, replaces the session, lands back on a safe next', async (t) => {
    const user = await enrolledUser(gw, 'stepup', clock.now())
    clock.advance(STEP)
    // A password-only session of a user with TOTP: an OIDC sign-in, or one from before enrolment.
    const old = await gw.runtime.sessions.create(user.id, { amr: ['pwd'] })
    const page = await gw.call('GET', '/auth/login/step-up?next=%2Fsecure%2Fx', { headers: browser(gw, old.token) })
    t.equal(page.status, 200)
    t.match(page.text, /action="\/auth\/login\/step-up"/)
    t.match(page.text, /name="next" value="\/secure\/x"/)
    t.match(page.text, /name="code"/)
    const anonymous = await gw.call('GET', '/auth/login/step-up?next=%2Fsecure%2Fx', {})
    t.equal(anonymous.status, 303, 'signed out: to the login page first')
    t.match(anonymous.headers.location as string, /^\/auth\/login\?next=/)

    const wrong = await gw.call('POST', '/auth/login/step-up', form({ code: '000000', next: '/secure/x' }, browser(gw, old.token)))
    t.equal(wrong.status, 401)
    t.match(wrong.text, /The code is not right/)
    const done = await gw.call('POST', '/auth/login/step-up', form({ code: totpCode(user.secret, clock.now()), next: '//evil.example/' }, browser(gw, old.token)))
    t.equal(done.status, 303)
    t.equal(done.headers.location, '/', 'an unsafe next becomes /')
    const cookie = setCookies(done)[0]
    t.ok(cookie, 'a new session cookie')
    t.equal(await meStatus(gw, old.token), 401, 'the old session has ended')
    t.equal((await gw.call('GET', '/secure/x', { headers: bearer(cookie!.value) })).status, 200, 'the new one passes')
    const me = await gw.call('GET', '/auth/me', { headers: bearer(cookie!.value) })
    t.same(me.json<{ auth: { amr: string[] } }>().auth.amr, ['pwd', 'otp'])
    const audit = await gw.runtime.audit.list({ limit: 20, userId: user.id })
    t.ok(audit.some((e) => e.type === 'mfa.step_up'), 'audited')
    t.ok(audit.some((e) => e.type === 'login.failed' && e.details.reason === 'wrong_second_factor'), 'the failure too')

    const json = await gw.runtime.sessions.create(user.id, { amr: ['pwd'] })
    const upgraded = await gw.call('POST', '/auth/login/step-up', { headers: bearer(json.token), json: { code: totpCode(user.secret, clock.now() + STEP) } })
    t.equal(upgraded.status, 200, upgraded.text)
    t.same(upgraded.json<{ amr: string[] }>().amr, ['pwd', 'otp'])
    t.same(setCookies(upgraded), [], 'a bearer session gets no cookie')
  })

  await t.test('PATs: only when made by a session with a second factor, and while the user still has one', async (t) => {
    const user = await enrolledUser(gw, 'pat', clock.now())
    clock.advance(STEP)
    const pwdSession = await gw.runtime.sessions.create(user.id, { amr: ['pwd'] })
    const weak = await createPat(gw, pwdSession.token)
    assertError(t, await gw.call('GET', '/secure/x', { headers: bearer(weak) }), 403, 'GH_MFA_REQUIRED', 'made by a password-only session')
    const strong = await createPat(gw, await mfaLogin(gw, user.email, user.secret, clock.now()))
    t.equal((await gw.call('GET', '/secure/x', { headers: bearer(strong) })).status, 200, 'made by a session with a second factor')
    const navigation = await gw.call('GET', '/secure/x', { headers: { ...bearer(weak), ...HTML } })
    t.equal(navigation.status, 403, 'a PAT is never sent to step-up')
    const removed = await gw.call('DELETE', '/auth/mfa/totp', { headers: bearer(user.token), json: { password: PASSWORD } })
    t.equal(removed.status, 204)
    assertError(t, await gw.call('GET', '/secure/x', { headers: bearer(strong) }), 403, 'GH_MFA_REQUIRED', 'its user has no second factor any more')
  })

  await t.test('forward auth decides the same, and sends a navigation to step-up', async (t) => {
    const email = uniqueEmail('fwd')
    await register(gw, email)
    const { token } = await login(gw, email)
    const headers = { 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.gatehouse.test', 'x-forwarded-uri': '/x' }
    assertError(t, await gw.call('GET', '/auth/verify', { headers: { ...headers, ...bearer(token) } }), 403, 'GH_MFA_REQUIRED')
    const redirected = await gw.call('GET', '/auth/verify?redirect=true', { headers: { ...headers, ...browser(gw, token), ...HTML } })
    t.equal(redirected.status, 302)
    t.equal(redirected.headers.location, `${ORIGIN}/auth/login/step-up?next=${encodeURIComponent('https://app.gatehouse.test/x')}`)
  })

  await t.test('admin reset: DELETE /auth/admin/users/:id/mfa, and user reset-mfa through the control commands', async (t) => {
    const admin = uniqueEmail('admin')
    const adminUser = await register(gw, admin)
    await gw.runtime.users.setRoles(adminUser.id, ['admin'])
    const { token: adminToken } = await login(gw, admin)
    const user = await enrolledUser(gw, 'reset', clock.now())
    const viewer = await login(gw, (await register(gw, uniqueEmail('viewer'))).email)
    assertError(t, await gw.call('DELETE', `/auth/admin/users/${user.id}/mfa`, { headers: bearer(viewer.token) }), 403, 'GH_FORBIDDEN', 'needs users:manage')
    assertError(t, await gw.call('DELETE', `/auth/admin/users/${adminUser.id}/mfa`, { headers: bearer(adminToken) }), 403, 'GH_FORBIDDEN', 'not on oneself')
    assertError(t, await gw.call('DELETE', '/auth/admin/users/00000000-0000-4000-8000-000000000000/mfa', { headers: bearer(adminToken) }), 404, 'GH_NOT_FOUND')
    t.equal((await gw.call('DELETE', `/auth/admin/users/${user.id}/mfa`, { headers: bearer(adminToken) })).status, 204)
    t.equal(await meStatus(gw, user.token), 401, 'the user’s sessions have ended')
    const { token } = await login(gw, user.email)
    t.same((await gw.call('GET', '/auth/me', { headers: bearer(token) })).json<{ mfa: unknown }>().mfa, { totp: false, passkeys: 0 }, 'signs in with the password alone')
    const events = await gw.runtime.audit.list({ limit: 20, userId: user.id })
    t.ok(events.some((e) => e.type === 'mfa.reset' && e.details.actor_id === adminUser.id), 'audited with the actor')

    const other = await enrolledUser(gw, 'cli-reset', clock.now())
    const answer = await runControlRequest(servicesOf(gw.runtime), { command: 'user.reset-mfa', args: { email: other.email } })
    t.same(answer, { email: other.email, removed: true, sessions_ended: 1 })
    t.same(await runControlRequest(servicesOf(gw.runtime), { command: 'user.mfa', args: { email: other.email } }), { totp: false, passkeys: 0, recovery_codes: 0, second_factor: false })
  })
})

t.test('auth.mfa.required_roles: users holding them reach only enrolment until they enrol', async (t) => {
  const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP + STEP / 2)
  const store = await sessionStoreBackends()[0]!.open(t, { clock })
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    clock,
    store,
    configure: (raw) => {
      raw.auth.mfa = { required_roles: ['operator'] }
      raw.routes = [{ name: 'plain', match: '/plain', upstream: upstream.url }]
    },
  })
  const email = uniqueEmail('operator')
  const user = await register(gw, email)
  await gw.runtime.users.setRoles(user.id, ['operator'])
  const { token } = await login(gw, email)
  const pat = (await gw.runtime.pats.create({ id: user.id, permissions: ['app:read'] }, { name: 'automation' })).token
  const viewer = await login(gw, (await register(gw, uniqueEmail('viewer'))).email)

  t.equal((await gw.call('GET', '/plain/x', { headers: bearer(viewer.token) })).status, 200, 'other users are unaffected')
  t.equal((await gw.call('GET', '/auth/me', { headers: bearer(viewer.token) })).status, 200)
  assertError(t, await gw.call('GET', '/plain/x', { headers: bearer(token) }), 403, 'GH_MFA_ENROLMENT_REQUIRED', 'a session, at the edge')
  assertError(t, await gw.call('GET', '/plain/x', { headers: bearer(pat) }), 403, 'GH_MFA_ENROLMENT_REQUIRED', 'a PAT, at the edge')
  assertError(t, await gw.call('GET', '/auth/me', { headers: bearer(token) }), 403, 'GH_MFA_ENROLMENT_REQUIRED', 'the /auth API')
  assertError(t, await gw.call('GET', '/auth/sessions', { headers: bearer(token) }), 403, 'GH_MFA_ENROLMENT_REQUIRED')
  assertError(t, await gw.call('POST', '/auth/tokens', { headers: bearer(token), json: { name: 'x' } }), 403, 'GH_MFA_ENROLMENT_REQUIRED')
  t.equal((await gw.call('GET', '/auth/account', { headers: browser(gw, token) })).status, 200, 'the account page')
  const started = await gw.call('POST', '/auth/mfa/totp', { headers: bearer(token) })
  t.equal(started.status, 200, 'enrolment')
  const second = await login(gw, email)
  t.equal((await gw.call('POST', '/auth/logout', { headers: bearer(second.token) })).status, 204, 'logout')
  const confirmed = await gw.call('POST', '/auth/mfa/totp/confirm', { headers: bearer(token), json: { code: totpCode(started.json<{ secret: string }>().secret, clock.now()) } })
  t.equal(confirmed.status, 200)
  t.equal((await gw.call('GET', '/plain/x', { headers: bearer(token) })).status, 200, 'enrolled: everything again')
  t.equal((await gw.call('GET', '/auth/me', { headers: bearer(token) })).status, 200)
  t.equal((await gw.call('GET', '/plain/x', { headers: bearer(pat) })).status, 200, 'the PAT too')
})
