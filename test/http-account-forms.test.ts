/**
 * The HTML forms of accounts through a real gateway (SPEC §3, §5): sign-up, the account page
 * (name, password, sessions, tokens, delete), forgot and reset. Every form refuses bad input
 * (empty, too long, wrong current password, mismatched fields, a spent or tampered link)
 * with a page that says why, status and `role="alert"`, and changes nothing; cookie posts
 * from another origin are refused; the pages carry no inline script.
 */
import t, { type Test } from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { bearer, browser, cookieName, login, OTHER_PASSWORD, PASSWORD, register, uniqueEmail } from './helpers/auth-client.js'
import { PUBLIC_URL, startTestGateway, type Response, type TestGateway } from './helpers/gateway.js'
import { startSmtpServer, type TestSmtpServer } from './helpers/smtp.js'

const FORM = 'application/x-www-form-urlencoded'

function post(gw: TestGateway, path: string, fields: Record<string, string | string[]>, headers: Record<string, string> = { origin: PUBLIC_URL }): Promise<Response> {
  const body = new URLSearchParams()
  for (const [name, value] of Object.entries(fields)) for (const item of [value].flat()) body.append(name, item)
  return gw.call('POST', path, { body: body.toString(), headers: { 'content-type': FORM, ...headers } })
}

/** A refused form: the page again, with this status and the reason announced. */
function assertRefusedPage(t: Test, response: Response, status: number, message: RegExp | string, what: string): void {
  t.equal(response.status, status, `${what}: ${status}`, { body: response.text.slice(0, 400) })
  t.match(String(response.headers['content-type']), /^text\/html/, `${what}: a page`)
  const alert = /<p class="error" role="alert"[^>]*>([^<]*)<\/p>/.exec(response.text)?.[1] ?? ''
  t.match(alert, message, `${what}: says why ("${alert}")`)
}

function assertStrictPage(t: Test, response: Response, what: string): void {
  const csp = String(response.headers['content-security-policy'])
  t.match(csp, /default-src 'none'/, `${what}: a strict CSP`)
  t.notMatch(csp, /unsafe-inline|unsafe-eval/, `${what}: no inline script allowed`)
  t.notMatch(response.text, /<script(?![^>]*\bsrc="\/auth\/assets\/(?:account|webauthn|passkeys)\.js")/, `${what}: no inline script`)
  t.notMatch(response.text, /\son[a-z]+\s*=/i, `${what}: no event handler attributes`)
  t.notMatch(response.text, /\sstyle=/i, `${what}: no inline styles`)
  const inputs = [...response.text.matchAll(/<(?:input|select)\b([^>]*)>/g)].map((m) => m[1] ?? '').filter((attrs) => !/type="hidden"/.test(attrs))
  for (const attrs of inputs) {
    const id = /\bid="([^"]+)"/.exec(attrs)?.[1]
    t.ok(id !== undefined && response.text.includes(`for="${id}"`), `${what}: the field ${id ?? attrs} has a label`)
  }
}

async function setUp(t: Test, options: { registration?: 'open' | 'closed' } = {}): Promise<{ gw: TestGateway; smtp: TestSmtpServer; clock: ManualClock }> {
  const smtp = await startSmtpServer(t)
  const clock = new ManualClock(Date.now())
  const gw = await startTestGateway(t, {
    clock,
    configure: (raw) => {
      raw.auth.registration = options.registration ?? 'open'
      raw.email = { smtp: smtp.url }
    },
  })
  return { gw, smtp, clock }
}

t.test('sign-up form', async (t) => {
  const { gw, smtp } = await setUp(t)
  const page = await gw.call('GET', '/auth/register')
  t.equal(page.status, 200, 'GET /auth/register with registration open')
  assertStrictPage(t, page, 'the sign-up page')
  const login = await gw.call('GET', '/auth/login')
  t.match(login.text, 'href="/auth/register"', 'the login page links to sign-up')
  t.match(login.text, 'href="/auth/password/forgot"', 'and to forgot password')

  const email = uniqueEmail('signup')
  const fields = { email, name: 'Ada', password: PASSWORD, password_confirm: PASSWORD }
  const bad: [string, Record<string, string>, number, RegExp][] = [
    ['an empty email', { ...fields, email: '' }, 400, /email address/],
    ['not an address', { ...fields, email: 'ada' }, 400, /@/],
    ['an empty password', { ...fields, password: '', password_confirm: '' }, 400, /Choose a password/],
    ['mismatched passwords', { ...fields, password_confirm: `${PASSWORD}!` }, 400, /not the same/],
    ['a short password', { ...fields, password: 'short', password_confirm: 'short' }, 400, /at least 15/],
    ['a password of 129 characters', { ...fields, password: 'p'.repeat(129), password_confirm: 'p'.repeat(129) }, 400, /128/],
    ['a name of 101 characters', { ...fields, name: 'n'.repeat(101) }, 400, /at most 100/],
    ['a field too long for the form', { ...fields, name: 'n'.repeat(5000) }, 400, /too long/],
  ]
  for (const [what, body, status, message] of bad) {
    const response = await post(gw, '/auth/register/form', body)
    assertRefusedPage(t, response, status, message, what)
    t.match(response.text, `value="${body.email}"`, `${what}: the email is kept`)
    t.notMatch(response.text, PASSWORD, `${what}: the password is not`)
  }
  t.equal(await gw.runtime.users.getByEmail(email), null, 'no account was created by any refusal')

  const crossSite = await post(gw, '/auth/register/form', fields, { origin: 'https://evil.example' })
  t.equal(crossSite.status, 403, 'a post from another origin is refused')
  t.equal(await gw.runtime.users.getByEmail(email), null)

  const arriving = smtp.next(email)
  const created = await post(gw, '/auth/register/form', fields)
  t.equal(created.status, 303, 'created: 303')
  t.equal(created.headers.location, '/auth/login?notice=registered', 'to the login page')
  const user = await gw.runtime.users.getByEmail(email)
  t.match(user, { name: 'Ada', email_verified: false }, 'the account, not verified yet')
  t.match((await arriving).subject, /confirm/i, 'a confirmation link is mailed')
  const notice = await gw.call('GET', '/auth/login?notice=registered')
  t.match(notice.text, '<p class="notice" role="status">Your account is ready. Sign in.</p>', 'the login page says so')
  t.notMatch((await gw.call('GET', '/auth/login?notice=%3Cscript%3E')).text, /class="notice"/, 'an unknown notice shows nothing')

  assertRefusedPage(t, await post(gw, '/auth/register/form', fields), 409, /already exists/, 'a taken email')
})

t.test('without an email section there is no "forgot password"', async (t) => {
  const gw = await startTestGateway(t)
  t.notMatch((await gw.call('GET', '/auth/login')).text, 'href="/auth/password/forgot"', 'the login page does not offer it')
  const page = await gw.call('GET', '/auth/password/forgot')
  t.equal(page.status, 404, 'the page says it is not available')
  t.match(page.text, 'Ask your administrator')
  t.equal((await gw.call('POST', '/auth/password/forgot', { json: { email: 'someone@example.com' } })).status, 202, 'the API answers as always')
})

t.test('sign-up is closed', async (t) => {
  const { gw } = await setUp(t, { registration: 'closed' })
  const page = await gw.call('GET', '/auth/register')
  t.equal(page.status, 404, 'GET /auth/register: 404')
  t.match(page.text, 'Sign-up is closed', 'a page that says so')
  t.notMatch((await gw.call('GET', '/auth/login')).text, 'href="/auth/register"', 'the login page does not link to it')
  const email = uniqueEmail('closed')
  assertRefusedPage(t, await post(gw, '/auth/register/form', { email, password: PASSWORD, password_confirm: PASSWORD }), 403, /closed/, 'the form')
  t.equal(await gw.runtime.users.getByEmail(email), null)
})

t.test('the account page', async (t) => {
  const { gw } = await setUp(t)
  const email = uniqueEmail('account')
  await register(gw, email, PASSWORD, 'Ann')
  const me = await login(gw, email)
  const other = await login(gw, email)
  const cookie = browser(gw, me.token)

  const signedOut = await gw.call('GET', '/auth/account')
  t.equal(signedOut.status, 303, 'signed out: 303')
  t.equal(signedOut.headers.location, '/auth/login?next=%2Fauth%2Faccount', 'to the login page, and back after')
  const viaPat = await gw.call('GET', '/auth/account', { headers: bearer('pat_' + 'x'.repeat(60)) })
  t.equal(viaPat.status, 401, 'a bad bearer credential is refused, never ignored')

  const page = await gw.call('GET', '/auth/account', { headers: cookie })
  t.equal(page.status, 200, 'the page')
  assertStrictPage(t, page, 'the account page')
  t.match(page.text, email)
  t.equal([...page.text.matchAll(/<span class="badge">this session<\/span>/g)].length, 1, 'one session is marked as this one')
  t.equal([...page.text.matchAll(/action="\/auth\/account\/sessions\/revoke"/g)].length, 1, 'the other session can be signed out')
  t.match(page.text, 'action="/auth/logout-all"', 'sign out everywhere')

  await t.test('name', async (t) => {
    assertRefusedPage(t, await post(gw, '/auth/account/name', { name: 'n'.repeat(101) }, cookie), 400, /at most 100/, 'too long')
    assertRefusedPage(t, await post(gw, '/auth/account/name', { name: 'a\u202Eb' }, cookie), 400, /control/, 'a bidi override')
    t.equal((await gw.runtime.users.getByEmail(email))?.name, 'Ann', 'unchanged')
    const saved = await post(gw, '/auth/account/name', { name: '  Ann Smith ' }, cookie)
    t.equal(saved.headers.location, '/auth/account?done=name_saved')
    t.equal((await gw.runtime.users.getByEmail(email))?.name, 'Ann Smith', 'saved, trimmed')
    const cleared = await post(gw, '/auth/account/name', { name: '' }, cookie)
    t.equal(cleared.headers.location, '/auth/account?done=name_cleared', 'empty removes it')
    t.equal((await gw.runtime.users.getByEmail(email))?.name, null)
    t.match((await gw.call('GET', '/auth/account?done=name_cleared', { headers: cookie })).text, 'Your name is removed.')
  })

  await t.test('tokens', async (t) => {
    const bad: [string, Record<string, string | string[]>, RegExp][] = [
      ['an empty name', { name: '', expires_in_days: '30' }, /Give the token a name/],
      ['a blank name', { name: '   ', expires_in_days: '30' }, /Give the token a name/],
      ['a name of 101 characters', { name: 'n'.repeat(101), expires_in_days: '30' }, /100/],
      ['a permission not held', { name: 'ci', expires_in_days: '30', permissions: ['app:read', 'app:write'] }, /app:write/],
      ['an expiry that is not a number', { name: 'ci', expires_in_days: 'soon' }, /expires/],
      ['an expiry over ten years', { name: 'ci', expires_in_days: '4000' }, /3650/],
    ]
    for (const [what, body, message] of bad) {
      const response = await post(gw, '/auth/account/tokens', body, cookie)
      assertRefusedPage(t, response, 400, message, what)
    }
    t.same(await gw.runtime.pats.list(me.user.id), [], 'no token was created by any refusal')

    const created = await post(gw, '/auth/account/tokens', { name: 'ci', expires_in_days: '30', permissions: 'app:read' }, cookie)
    t.equal(created.status, 201, 'created: the page with the token')
    assertStrictPage(t, created, 'the page with the new token')
    t.match(String(created.headers['content-security-policy']), /script-src 'self'/, 'which may load the copy script')
    t.match(created.text, '<script src="/auth/assets/account.js" defer></script>', 'from a file')
    t.match(created.text, /<button type="button" data-copy="new-token" hidden>Copy<\/button>/, 'the copy button, hidden until the script runs')
    const token = /id="new-token" type="text" readonly value="(pat_[^"]+)"/.exec(created.text)?.[1] ?? ''
    t.match(token, /^pat_/, 'the token, shown once')
    const use = await gw.call('GET', '/auth/me', { headers: bearer(token) })
    t.equal(use.status, 200, 'the token works')
    const again = await gw.call('GET', '/auth/account', { headers: cookie })
    t.notMatch(again.text, token, 'and is never shown again')
    const [pat] = await gw.runtime.pats.list(me.user.id)
    t.match(again.text, `<code>${pat?.token}</code>`, 'the list shows it masked')
    t.same(pat?.permissions, ['app:read'], 'with the chosen permissions')

    assertRefusedPage(t, await post(gw, '/auth/account/tokens/revoke', { id: '00000000-0000-4000-8000-000000000000' }, cookie), 404, /already revoked/, 'an unknown token')
    const revoked = await post(gw, '/auth/account/tokens/revoke', { id: pat?.id ?? '' }, cookie)
    t.equal(revoked.headers.location, '/auth/account?done=token_revoked', 'revoked')
    t.equal((await gw.call('GET', '/auth/me', { headers: bearer(token) })).status, 401, 'the token no longer works')
    const byPat = await post(gw, '/auth/account/tokens', { name: 'from a pat' }, bearer(token))
    t.equal(byPat.status, 401, 'a (revoked) PAT cannot post the form')
  })

  await t.test('cross-origin posts are refused and change nothing', async (t) => {
    const attempts: Record<string, string>[] = [
      { ...cookie, origin: 'https://evil.example' },
      { cookie: cookie.cookie ?? '' },
      { ...cookie, origin: PUBLIC_URL, 'sec-fetch-site': 'cross-site' },
    ]
    for (const headers of attempts) {
      const response = await post(gw, '/auth/account/name', { name: 'Mallory' }, headers)
      t.equal(response.status, 403, `refused (${JSON.stringify(Object.keys(headers))})`)
    }
    t.equal((await gw.runtime.users.getByEmail(email))?.name, null, 'the name is unchanged')
  })

  await t.test('sessions', async (t) => {
    assertRefusedPage(t, await post(gw, '/auth/account/sessions/revoke', { id: 'x'.repeat(43) }, cookie), 404, /already ended/, 'an unknown session')
    const otherId = /name="id" value="([^"]+)"><button type="submit" class="small secondary" aria-label="Sign out the session/.exec((await gw.call('GET', '/auth/account', { headers: cookie })).text)?.[1]
    const ended = await post(gw, '/auth/account/sessions/revoke', { id: otherId ?? '' }, cookie)
    t.equal(ended.headers.location, '/auth/account?done=session_revoked', 'the other session is signed out')
    t.equal((await gw.call('GET', '/auth/me', { headers: bearer(other.token) })).status, 401, 'and dead')
    t.equal((await gw.call('GET', '/auth/me', { headers: bearer(me.token) })).status, 200, 'this one lives')
  })

  await t.test('password', async (t) => {
    const third = await login(gw, email)
    const fields = { current_password: PASSWORD, new_password: OTHER_PASSWORD, new_password_confirm: OTHER_PASSWORD }
    const bad: [string, Record<string, string>, number, RegExp][] = [
      ['an empty current password', { ...fields, current_password: '' }, 400, /current password/],
      ['an empty new password', { ...fields, new_password: '', new_password_confirm: '' }, 400, /new password/],
      ['mismatched new passwords', { ...fields, new_password_confirm: `${OTHER_PASSWORD}.` }, 400, /not the same/],
      ['a short new password', { ...fields, new_password: 'short', new_password_confirm: 'short' }, 400, /at least 15/],
      ['a missing field', { current_password: PASSWORD, new_password: OTHER_PASSWORD }, 400, /incomplete/],
      ['a wrong current password', { ...fields, current_password: 'not my password at all' }, 401, /current password is not right/],
    ]
    for (const [what, body, status, message] of bad) assertRefusedPage(t, await post(gw, '/auth/account/password', body, cookie), status, message, what)
    t.equal((await gw.call('GET', '/auth/me', { headers: bearer(third.token) })).status, 200, 'no session was ended by a refusal')
    await login(gw, email, PASSWORD)
    t.pass('the password is unchanged')

    const changed = await post(gw, '/auth/account/password', fields, cookie)
    t.equal(changed.headers.location, '/auth/account?done=password_changed', 'changed')
    t.equal((await gw.call('GET', '/auth/me', { headers: bearer(third.token) })).status, 401, 'the other sessions are signed out')
    t.equal((await gw.call('GET', '/auth/account', { headers: cookie })).status, 200, 'this one is not')
    await login(gw, email, OTHER_PASSWORD)
  })

  await t.test('delete', async (t) => {
    assertRefusedPage(t, await post(gw, '/auth/account/delete', { password: OTHER_PASSWORD }, cookie), 400, /Tick the box/, 'without the confirmation')
    assertRefusedPage(t, await post(gw, '/auth/account/delete', { password: '', confirm: 'yes' }, cookie), 400, /Enter your password/, 'an empty password')
    assertRefusedPage(t, await post(gw, '/auth/account/delete', { password: 'not my password at all', confirm: 'yes' }, cookie), 401, /not right/, 'a wrong password')
    t.ok(await gw.runtime.users.getByEmail(email), 'still there')
    const deleted = await post(gw, '/auth/account/delete', { password: OTHER_PASSWORD, confirm: 'yes' }, cookie)
    t.equal(deleted.status, 303)
    t.equal(deleted.headers.location, '/auth/login?notice=account_deleted')
    t.match(String(deleted.headers['set-cookie']), new RegExp(`^${cookieName(gw)}=;`), 'the cookie is cleared')
    t.equal(await gw.runtime.users.getByEmail(email), null, 'the account is gone')
  })
})

t.test('forgot and reset forms', async (t) => {
  const { gw, smtp } = await setUp(t)
  const email = uniqueEmail('forms')
  await register(gw, email)
  await gw.emailsSettled() // the confirmation link, so that the next message is the reset link
  assertStrictPage(t, await gw.call('GET', '/auth/password/forgot'), 'the forgot page')
  assertRefusedPage(t, await post(gw, '/auth/password/forgot', { email: '' }, {}), 400, /incomplete|required/, 'an empty email')
  assertRefusedPage(t, await post(gw, '/auth/password/forgot', { email: 'nobody' }, {}), 400, /@/, 'not an address')
  t.equal((await post(gw, '/auth/password/forgot', { email }, { origin: 'https://evil.example' })).status, 403, 'from another origin')

  const arriving = smtp.next(email)
  const sent = await post(gw, '/auth/password/forgot', { email }, {})
  t.equal(sent.headers.location, '/auth/login?notice=reset_sent', 'sent: to the login page, which says so')
  const token = new URL((await arriving).links[0] ?? '').searchParams.get('token') ?? ''
  const page = await gw.call('GET', `/auth/password/reset?token=${token}`)
  t.equal(page.status, 200, 'the reset page')
  assertStrictPage(t, page, 'the reset page')

  const bad: [string, Record<string, string>, number, RegExp][] = [
    ['mismatched passwords', { token, new_password: OTHER_PASSWORD, new_password_confirm: `${OTHER_PASSWORD}x` }, 400, /not the same/],
    ['an empty password', { token, new_password: '', new_password_confirm: '' }, 400, /incomplete/],
    ['a short password', { token, new_password: 'short', new_password_confirm: 'short' }, 400, /at least 15/],
  ]
  for (const [what, body, status, message] of bad) {
    const response = await post(gw, '/auth/password/reset', body, {})
    assertRefusedPage(t, response, status, message, what)
    t.match(response.text, `name="token" value="${token}"`, `${what}: the link is kept`)
  }
  const tampered = await post(gw, '/auth/password/reset', { token: `${token.slice(0, -1)}${token.endsWith('Q') ? 'R' : 'Q'}`, new_password: OTHER_PASSWORD, new_password_confirm: OTHER_PASSWORD }, {})
  t.equal(tampered.status, 400, 'a tampered link')
  t.match(tampered.text, 'no longer works')
  const done = await post(gw, '/auth/password/reset', { token, new_password: OTHER_PASSWORD, new_password_confirm: OTHER_PASSWORD }, {})
  t.equal(done.headers.location, '/auth/login?notice=password_reset', 'reset: to the login page')
  const replay = await post(gw, '/auth/password/reset', { token, new_password: PASSWORD, new_password_confirm: PASSWORD }, {})
  t.equal(replay.status, 400, 'a replayed link')
  t.match(replay.text, 'no longer works')
  await login(gw, email, OTHER_PASSWORD)
  t.pass('the reset password stands')
})
