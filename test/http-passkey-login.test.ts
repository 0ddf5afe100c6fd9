/**
 * Signing in with passkeys through the real server (SPEC §3, §5): a passkey alone
 * (POST /auth/login/passkey/options, POST /auth/login/passkey; amr ["hwk","user"], a refresh
 * token like /auth/login, counted as `passkey` auth attempts), and a passkey as the second
 * step of a password login (`webauthn` at POST /auth/login/mfa, counted as `webauthn` MFA
 * attempts). Each rule is a request that breaks it: a challenge used twice, another origin,
 * another user's passkey, no user verification, passkey_login off.
 */
import t from 'tap'
import { assertError, bearer, browser, login, register, signUp, uniqueEmail } from './helpers/auth-client.js'
import { PUBLIC_URL, startTestGateway, type TestGateway } from './helpers/gateway.js'
import { passwordStep, secondStep } from './helpers/mfa-client.js'
import { enrolPasskey } from './helpers/passkeys.js'
import { SoftAuthenticator } from './helpers/soft-authenticator.js'
import { startUpstream } from './helpers/upstream.js'

interface RequestOptions {
  challenge: string
  rpId: string
  allowCredentials?: { id: string }[]
  userVerification?: string
}

interface Me {
  mfa: { totp: boolean; passkeys: number }
  auth: { amr: string[] }
}

async function loginOptions(gw: TestGateway): Promise<RequestOptions> {
  const response = await gw.call('POST', '/auth/login/passkey/options', { json: {} })
  if (response.status !== 200) throw new Error(`options: ${response.status} ${response.text}`)
  return response.json<RequestOptions>()
}

async function mfaOptions(gw: TestGateway, mfaToken: string): Promise<RequestOptions> {
  const response = await gw.call('POST', '/auth/login/mfa/webauthn/options', { json: { mfa_token: mfaToken } })
  if (response.status !== 200) throw new Error(`mfa options: ${response.status} ${response.text}`)
  return response.json<RequestOptions>()
}

const passkeyLogin = (gw: TestGateway, response: unknown) => gw.call('POST', '/auth/login/passkey', { json: { response } })

async function me(gw: TestGateway, token: string): Promise<Me> {
  return (await gw.call('GET', '/auth/me', { headers: bearer(token) })).json<Me>()
}

async function metric(gw: TestGateway, name: string, labels: string): Promise<number> {
  const text = await gw.metrics.registry.metrics()
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`))
  return Number(line?.split(' ').at(-1) ?? NaN)
}

t.test('passkey-only sign-in', async (t) => {
  const gw = await startTestGateway(t, { configure: (raw) => void (raw.sessions = { refresh_tokens: true }) })

  await t.test('a registered passkey signs in alone: a session with amr hwk+user, a cookie and a refresh token', async (t) => {
    const alice = await signUp(gw, 'alice')
    const key = await enrolPasskey(gw, alice)
    const options = await loginOptions(gw)
    t.equal(options.rpId, 'gatehouse.test')
    t.equal(options.userVerification, 'required')
    t.same(options.allowCredentials ?? [], [], 'nobody is named before the passkey speaks')
    const successes = await metric(gw, 'gatehouse_auth_attempts_total', 'method="passkey",result="success"')

    const response = await passkeyLogin(gw, key.authenticate(options))
    t.equal(response.status, 200, response.text)
    const body = response.json<{ token: string; expires_at: string; user: { id: string }; refresh_token?: string }>()
    t.same(Object.keys(body).sort(), ['expires_at', 'refresh_token', 'token', 'user'])
    t.equal(body.user.id, alice.user.id)
    t.match(String(response.headers['set-cookie']), /__Host-gh_session=/, 'the session cookie is set')
    const signedIn = await me(gw, body.token)
    t.same(signedIn.auth.amr, ['hwk', 'user'])
    t.same(signedIn.mfa, { totp: false, passkeys: 1 })
    t.equal(await metric(gw, 'gatehouse_auth_attempts_total', 'method="passkey",result="success"'), successes + 1)

    const refreshed = await gw.call('POST', '/auth/refresh', { json: { refresh_token: body.refresh_token } })
    t.equal(refreshed.status, 200, refreshed.text)
    t.same((await me(gw, refreshed.json<{ token: string }>().token)).auth.amr, ['hwk', 'user'], 'the refreshed session keeps its amr')

    const { rows } = await gw.runtime.db.query<{ details: { amr: string[] } }>(
      "SELECT details FROM audit_events WHERE user_id = $1 AND type = 'login.succeeded' ORDER BY id DESC LIMIT 1",
      [alice.user.id],
    )
    t.same(rows[0]?.details.amr, ['hwk', 'user'], 'audited')
  })

  await t.test('refused: a spent challenge, another origin, no user verification, an unknown passkey, a disabled user', async (t) => {
    const bob = await signUp(gw, 'bob')
    const key = await enrolPasskey(gw, bob)
    const failures = await metric(gw, 'gatehouse_auth_attempts_total', 'method="passkey",result="failure"')

    const answer = key.authenticate(await loginOptions(gw))
    t.equal((await passkeyLogin(gw, answer)).status, 200)
    // The same answer again: refused by the spent challenge (and, were it not, by the counter).
    assertError(t, await passkeyLogin(gw, answer), 401, 'GH_INVALID_CREDENTIALS', 'replayed')
    assertError(t, await passkeyLogin(gw, key.authenticate(await loginOptions(gw), { origin: 'https://evil.example' })), 401, 'GH_INVALID_CREDENTIALS', 'another origin')
    assertError(t, await passkeyLogin(gw, key.authenticate(await loginOptions(gw), { userVerified: false })), 401, 'GH_INVALID_CREDENTIALS', 'no user verification')
    assertError(t, await passkeyLogin(gw, new SoftAuthenticator(PUBLIC_URL).authenticate(await loginOptions(gw))), 401, 'GH_INVALID_CREDENTIALS', 'unknown passkey')
    t.equal(await metric(gw, 'gatehouse_auth_attempts_total', 'method="passkey",result="failure"'), failures + 4, 'each failure counted')

    await gw.runtime.users.setDisabled(bob.user.id, true)
    assertError(t, await passkeyLogin(gw, key.authenticate(await loginOptions(gw))), 401, 'GH_INVALID_CREDENTIALS', 'disabled user')
    await gw.runtime.users.setDisabled(bob.user.id, false)
    t.equal((await passkeyLogin(gw, key.authenticate(await loginOptions(gw)))).status, 200, 'enabled again: signs in')
  })

  await t.test('a second-step challenge does not sign in alone', async (t) => {
    const email = uniqueEmail('carol')
    await register(gw, email)
    const key = await enrolPasskey(gw, await login(gw, email))
    const { mfa_token } = await passwordStep(gw, email)
    assertError(t, await passkeyLogin(gw, key.authenticate(await mfaOptions(gw, mfa_token))), 401, 'GH_INVALID_CREDENTIALS')
  })

  await t.test('bad bodies are 400', async (t) => {
    for (const json of [{}, { response: 'x' }, { response: { id: 'a', rawId: 'a', type: 'public-key' } }, { response: { id: 'a', rawId: 'a', type: 'other', response: { clientDataJSON: 'a' } } }]) {
      assertError(t, await gw.call('POST', '/auth/login/passkey', { json }), 400, 'GH_VALIDATION', JSON.stringify(json))
    }
  })
})

t.test('auth.mfa.passkey_login: false', async (t) => {
  const gw = await startTestGateway(t, { configure: (raw) => void (raw.auth.mfa = { passkey_login: false }) })
  const dave = await signUp(gw, 'dave')
  const key = await enrolPasskey(gw, dave)
  assertError(t, await gw.call('POST', '/auth/login/passkey/options', { json: {} }), 404, 'GH_NOT_FOUND', 'no options')
  const forged = key.authenticate({ challenge: 'A'.repeat(43), rpId: 'gatehouse.test' })
  assertError(t, await passkeyLogin(gw, forged), 404, 'GH_NOT_FOUND', 'no sign-in')
  const page = await gw.call('GET', '/auth/login')
  t.notMatch(page.text, /Sign in with a passkey/, 'no button on the sign-in page')
  t.notMatch(page.text, /<script/, 'and no script')
  // A passkey still serves as a second factor.
  const { mfa_token, methods } = await passwordStep(gw, dave.user.email)
  t.same(methods, ['webauthn'])
  const answer = await secondStep(gw, mfa_token, { webauthn: key.authenticate(await mfaOptions(gw, mfa_token)) })
  t.equal(answer.status, 200, answer.text)
})

t.test('a passkey as the second step of a password login', async (t) => {
  const gw = await startTestGateway(t)

  await t.test('methods offer webauthn; the assertion finishes the login with amr pwd+hwk+user', async (t) => {
    const erin = await signUp(gw, 'erin')
    const key = await enrolPasskey(gw, erin)
    const successes = await metric(gw, 'gatehouse_mfa_attempts_total', 'method="webauthn",result="success"')
    const { mfa_token, methods } = await passwordStep(gw, erin.user.email)
    t.same(methods, ['webauthn'])
    const options = await mfaOptions(gw, mfa_token)
    t.same(options.allowCredentials?.map((c) => c.id), [key.id], 'only her passkey is offered')
    const answer = await secondStep(gw, mfa_token, { webauthn: key.authenticate(options) })
    t.equal(answer.status, 200, answer.text)
    t.same((await me(gw, answer.json<{ token: string }>().token)).auth.amr, ['pwd', 'hwk', 'user'])
    t.equal(await metric(gw, 'gatehouse_mfa_attempts_total', 'method="webauthn",result="success"'), successes + 1)
  })

  await t.test('without user verification the amr says hwk only', async (t) => {
    const gina = await signUp(gw, 'gina')
    const key = await enrolPasskey(gw, gina)
    const { mfa_token } = await passwordStep(gw, gina.user.email)
    const answer = await secondStep(gw, mfa_token, { webauthn: key.authenticate(await mfaOptions(gw, mfa_token), { userVerified: false }) })
    t.equal(answer.status, 200, answer.text)
    t.same((await me(gw, answer.json<{ token: string }>().token)).auth.amr, ['pwd', 'hwk'])
  })

  await t.test('another user’s passkey, another login’s challenge, a replay: refused and counted', async (t) => {
    const frank = await signUp(gw, 'frank')
    const mallory = await signUp(gw, 'mallory')
    const franksKey = await enrolPasskey(gw, frank)
    const mallorysKey = await enrolPasskey(gw, mallory)
    const failures = await metric(gw, 'gatehouse_mfa_attempts_total', 'method="webauthn",result="failure"')

    const first = await passwordStep(gw, frank.user.email)
    // Mallory's authenticator answering Frank's challenge.
    const wrongKey = await secondStep(gw, first.mfa_token, { webauthn: mallorysKey.authenticate(await mfaOptions(gw, first.mfa_token)) })
    assertError(t, wrongKey, 401, 'GH_INVALID_CREDENTIALS', 'another user’s passkey')
    // A challenge of another pending login of the same user.
    const second = await passwordStep(gw, frank.user.email)
    const otherLogin = await secondStep(gw, first.mfa_token, { webauthn: franksKey.authenticate(await mfaOptions(gw, second.mfa_token)) })
    assertError(t, otherLogin, 401, 'GH_INVALID_CREDENTIALS', 'another login’s challenge')
    t.equal(await metric(gw, 'gatehouse_mfa_attempts_total', 'method="webauthn",result="failure"'), failures + 2)

    const good = franksKey.authenticate(await mfaOptions(gw, first.mfa_token))
    t.equal((await secondStep(gw, first.mfa_token, { webauthn: good })).status, 200)
    const third = await passwordStep(gw, frank.user.email)
    assertError(t, await secondStep(gw, third.mfa_token, { webauthn: good }), 401, 'GH_INVALID_CREDENTIALS', 'a replayed assertion')
    assertError(t, await gw.call('POST', '/auth/login/mfa/webauthn/options', { json: { mfa_token: 'x'.repeat(43) } }), 401, 'GH_INVALID_CREDENTIALS', 'options for an unknown mfa_token')
    t.ok(mallorysKey, 'used')
  })

  await t.test('the second page offers the passkey with its scripts under a CSP that allows them', async (t) => {
    const hank = await signUp(gw, 'hank')
    await enrolPasskey(gw, hank)
    const form = await gw.call('POST', '/auth/login', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ email: hank.user.email, password: 'correct horse battery staple', next: '/app/' }).toString(),
    })
    t.equal(form.status, 200, form.text.slice(0, 300))
    t.match(form.text, /data-passkey-factor="\/auth\/login\/mfa\/webauthn\/options"/)
    t.match(form.text, /<script src="\/auth\/assets\/webauthn\.js" defer><\/script>/)
    const csp = String(form.headers['content-security-policy'])
    t.match(csp, /script-src 'self'; connect-src 'self'/)
    t.notMatch(csp, /unsafe/)
  })
})

t.test('a passkey as the step-up of a mfa: required route', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    configure: (raw) => void (raw.routes = [{ name: 'secure', match: '/secure', upstream: upstream.url, mfa: 'required' }]),
  })
  const ivan = await signUp(gw, 'ivan')
  const key = await enrolPasskey(gw, ivan)
  const stepUpOptions = async (token: string) => {
    const response = await gw.call('POST', '/auth/login/step-up/webauthn/options', { headers: bearer(token), json: {} })
    if (response.status !== 200) throw new Error(`step-up options: ${response.status} ${response.text}`)
    return response.json<RequestOptions>()
  }
  const stepUp = (token: string, webauthn: unknown) => gw.call('POST', '/auth/login/step-up', { headers: bearer(token), json: { webauthn } })

  // A password-only session (the enrolling one had no second factor either).
  assertError(t, await gw.call('GET', '/secure/x', { headers: bearer(ivan.token) }), 403, 'GH_MFA_REQUIRED')

  // Another session's challenge does not upgrade this one.
  const { mfa_token } = await passwordStep(gw, ivan.user.email)
  const second = await secondStep(gw, mfa_token, { webauthn: key.authenticate(await mfaOptions(gw, mfa_token)) })
  const secondToken = second.json<{ token: string }>().token
  assertError(t, await stepUp(ivan.token, key.authenticate(await stepUpOptions(secondToken))), 401, 'GH_INVALID_CREDENTIALS', 'another session’s challenge')

  const upgraded = await stepUp(ivan.token, key.authenticate(await stepUpOptions(ivan.token)))
  t.equal(upgraded.status, 200, upgraded.text)
  const body = upgraded.json<{ token: string; amr: string[] }>()
  t.same(body.amr, ['pwd', 'hwk', 'user'])
  t.equal((await gw.call('GET', '/secure/x', { headers: bearer(body.token) })).status, 200, 'the route lets the new session through')
  t.equal((await gw.call('GET', '/auth/me', { headers: bearer(ivan.token) })).status, 401, 'the old session is ended')

  const page = await gw.call('GET', '/auth/login/step-up?next=%2Fsecure%2Fx', { headers: { ...browser(gw, secondToken) } })
  t.equal(page.status, 303, 'a session with a second factor goes on to next')
})
