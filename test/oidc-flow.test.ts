/**
 * Signing in with OpenID Connect against a real provider (panva's oidc-provider on a
 * loopback port), driven like a browser: redirects followed by hand, cookies kept per site
 * (SPEC §3, §5). A protected page sends the browser to the login page, whose provider button
 * starts the authorization code flow; the provider's sign-in and consent are completed; the
 * gateway's callback starts an ordinary session (amr `oidc`) that reaches the upstream with
 * the right identity. Around it, every refusal (state, nonce, issuer, audience, code,
 * unverified email, domain, linking, provider down) answers a page that says why, with a
 * link back, and starts no session.
 */
import { decodeJwt } from 'jose'
import t, { type Test } from 'tap'
import { assertCode } from './helpers/assert-code.js'
import { countRows, isCleared, login, PASSWORD, register, setCookies, uniqueEmail } from './helpers/auth-client.js'
import { PUBLIC_URL, startTestGateway, type Response, type TestGateway } from './helpers/gateway.js'
import { browserFor, gatewayPath, SESSION_COOKIE, waitUntil, type Browser } from './helpers/oidc-browser.js'
import { startTestProvider, type TestProvider } from './helpers/oidc-provider.js'
import { startUpstream } from './helpers/upstream.js'

const ORIGIN = new URL(PUBLIC_URL).origin
const SESSION = SESSION_COOKIE
const FLOW = '__Host-gh_oidc'
const NAMES = ['idp', 'idp-link', 'idp-down']

interface Started {
  browser: Browser
  /** The provider's authorization URL the gateway sent the browser to. */
  authorization: URL
}

/** The browser presses the provider's button: GET /auth/oidc/<name>/start. */
async function start(t: Test, gw: TestGateway, name: string, next = '/', browser = browserFor(gw)): Promise<Started> {
  const response = await browser.request('GET', `/auth/oidc/${name}/start?next=${encodeURIComponent(next)}`)
  t.equal(response.status, 302, `start ${name}: 302 to the provider`, { body: response.text.slice(0, 300) })
  return { browser, authorization: new URL(String(response.headers.location)) }
}

/** Start, sign in at the provider as `account`: the callback URL the provider sends the browser back to. */
async function throughProvider(t: Test, gw: TestGateway, idp: TestProvider, name: string, account: string, next = '/'): Promise<Started & { callback: string }> {
  const started = await start(t, gw, name, next)
  const callback = await idp.authorize(started.authorization.href, account)
  return { ...started, callback: gatewayPath(callback) }
}

/** A refused callback: the status and code, a page that says why with a link to the login page, and no session. */
async function assertRefusedPage(t: Test, response: Response, status: number, code: string, reason: string): Promise<void> {
  t.equal(response.status, status, `${code} (${reason}): ${status}`, { body: response.text.slice(0, 400) })
  t.match(String(response.headers['content-type']), /^text\/html/, 'an HTML page')
  t.match(response.text, /role="alert"/, 'the reason, announced')
  t.match(response.text, new RegExp(`${code} \\(${reason}\\)`), `names ${code} (${reason})`)
  t.match(response.text, /<a [^>]*href="\/auth\/login[^"]*"/, 'a link back to the login page')
  t.notOk(/<script/i.test(response.text), 'no script')
  const cookies = setCookies(response)
  t.notOk(cookies.some((c) => c.name === SESSION && !isCleared(c)), 'no session cookie')
}

async function assertSignedOut(t: Test, browser: Browser): Promise<void> {
  const me = await browser.request('GET', '/auth/me', { accept: 'application/json' })
  t.equal(me.status, 401, 'the browser has no session')
}

t.test('OpenID Connect sign-in against oidc-provider', async (t) => {
  const upstream = await startUpstream(t)
  const idp = await startTestProvider(t, {
    redirectUris: NAMES.map((name) => `${PUBLIC_URL}/auth/oidc/${name}/callback`),
    accounts: {
      alice: { email: 'Alice@Example.com', email_verified: true, name: 'Alice Liddell' },
      mallory: { email: 'mallory@example.com', email_verified: false },
      nobody: { email: 'nobody@example.com' },
      outsider: { email: 'outsider@elsewhere.example', email_verified: true },
    },
  })
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [{ name: 'app', match: '/app', upstream: upstream.url, auth: 'required', permissions: ['app:read'] }]
      const common = { issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret }
      raw.auth.oidc = [
        { name: 'idp', ...common, create_users: true, allowed_email_domains: ['example.com'] },
        { name: 'idp-link', ...common, create_users: false, link_existing_users: true },
      ]
    },
  })
  await waitUntil('the provider is discovered', () => gw.runtime.oidc.get('idp')?.ready === true && gw.runtime.oidc.get('idp-link')?.ready === true)

  await t.test('protected page → login page → provider button → provider → callback → the page, as a new user', async (t) => {
    const browser = browserFor(gw)
    const first = await browser.request('GET', '/app/x?y=1')
    t.equal(first.status, 302, 'a protected page sends the browser to the login page')
    const page = await browser.request('GET', gatewayPath(String(first.headers.location)))
    t.equal(page.status, 200)
    const buttons = [...page.text.matchAll(/<a class="provider" href="([^"]+)">([^<]*)<\/a>/g)]
    t.same(buttons.map((b) => b[2]), ['Sign in with idp', 'Sign in with idp-link'], 'one button per provider')
    const href = (buttons[0]?.[1] ?? '').replace(/&amp;/g, '&')
    t.equal(href, `/auth/oidc/idp/start?next=${encodeURIComponent('/app/x?y=1')}`, 'the button keeps next')

    const before = await countRows(gw)
    const started = await browser.request('GET', href)
    t.equal(started.status, 302, 'start: 302 to the provider')
    const authorization = new URL(String(started.headers.location))
    t.equal(authorization.origin + authorization.pathname, `${idp.issuer}/auth`, "to the provider's authorization endpoint")
    const params = authorization.searchParams
    t.equal(params.get('client_id'), idp.clientId)
    t.equal(params.get('response_type'), 'code')
    t.equal(params.get('redirect_uri'), `${PUBLIC_URL}/auth/oidc/idp/callback`)
    t.equal(params.get('scope'), 'openid email profile')
    t.equal(params.get('code_challenge_method'), 'S256', 'PKCE with S256')
    t.match(params.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/)
    t.match(params.get('state'), /^[A-Za-z0-9_-]{43}$/, 'a random state')
    t.match(params.get('nonce'), /^[A-Za-z0-9_-]{43}$/, 'a random nonce')
    t.notOk(authorization.search.includes('app'), 'next stays at the gateway')
    const flow = setCookies(started).find((c) => c.name === FLOW)
    t.ok(flow, 'the flow cookie')
    t.equal(flow?.attributes.httponly, true, 'HttpOnly')
    t.equal(flow?.attributes.secure, true, 'Secure')
    t.equal(String(flow?.attributes.samesite).toLowerCase(), 'lax', 'SameSite=Lax: the way back is a cross-site GET')
    t.equal(flow?.attributes.path, '/')
    t.ok(Number(flow?.attributes['max-age']) > 0 && Number(flow?.attributes['max-age']) <= 600, 'short-lived')
    t.notOk(setCookies(started).some((c) => c.name === SESSION), 'no session yet')

    const callback = await idp.authorize(authorization.href, 'alice')
    t.equal(callback.origin + callback.pathname, `${PUBLIC_URL}/auth/oidc/idp/callback`, 'the provider sends the browser back')
    const back = await browser.request('GET', gatewayPath(callback))
    t.equal(back.status, 303, 'the callback: 303', { body: back.text.slice(0, 400) })
    t.equal(back.headers.location, '/app/x?y=1', 'to next')
    const session = setCookies(back).find((c) => c.name === SESSION)
    t.match(session?.value, /^[A-Za-z0-9_-]{43}$/, 'a session cookie')
    t.equal(session?.attributes.httponly, true)
    t.equal(session?.attributes.secure, true)
    t.equal(String(session?.attributes.samesite).toLowerCase(), 'lax')
    t.ok(setCookies(back).some((c) => c.name === FLOW && isCleared(c)), 'the flow cookie is cleared')
    t.equal(
      Number(session?.attributes['max-age']),
      Math.floor(gw.config.sessions.absolute_timeout / 1000),
      'the same cookie lifetime as a password login',
    )

    const landed = await browser.request('GET', '/app/x?y=1')
    t.equal(landed.status, 200, 'the protected page')
    const got = upstream.last()
    t.equal(got.url, '/app/x?y=1')
    t.equal(got.headers['x-auth-email'], 'alice@example.com', 'the normalised email reaches the upstream')
    t.equal(got.headers['x-auth-roles'], 'viewer', 'default_roles')
    t.equal(got.headers['x-auth-method'], 'session', 'an ordinary session')
    const assertion = decodeJwt(String(got.headers['x-auth-assertion']))
    t.same(assertion.amr, ['oidc'], 'amr oidc in the assertion')
    t.equal(assertion.email, 'alice@example.com')
    const userId = String(got.headers['x-auth-user-id'])
    t.equal(assertion.sub, userId)

    const me = await browser.request('GET', '/auth/me', { accept: 'application/json' })
    t.equal(me.status, 200)
    const body = me.json<{ id: string; email: string; name: string; roles: string[]; auth: { method: string; amr: string[] } }>()
    t.same({ id: body.id, email: body.email, name: body.name, roles: body.roles, method: body.auth.method, amr: body.auth.amr }, {
      id: userId,
      email: 'alice@example.com',
      name: 'Alice Liddell',
      roles: ['viewer'],
      method: 'session',
      amr: ['oidc'],
    }, '/auth/me says how the user signed in')
    const sessions = await browser.request('GET', '/auth/sessions', { accept: 'application/json' })
    t.equal(sessions.json<{ items: { method: string }[] }>().items[0]?.method, 'oidc')

    const after = await countRows(gw)
    t.equal(after.users, before.users + 1, 'one user created')
    t.same(await gw.runtime.oidcAccounts.identitiesOf(userId), [{ issuer: idp.issuer, subject: 'alice', email: 'alice@example.com' }], 'linked by (issuer, sub)')
    const events = (await gw.runtime.audit.list({ userId, limit: 10 })).map((e) => [e.type, e.details.via ?? e.details.amr ?? null])
    t.same(events.reverse(), [['user.registered', 'oidc'], ['identity.linked', null], ['login.succeeded', 'oidc']], 'audited')

    const password = await gw.call('POST', '/auth/login', { json: { email: 'alice@example.com', password: PASSWORD } })
    assertCode(t, password, 401, 'GH_INVALID_CREDENTIALS', 'an OIDC-only user has no password')
    const change = await gw.call('POST', '/auth/password', {
      json: { current_password: 'there is no current password', new_password: 'a brand new long passphrase' },
      headers: { ...browser.jar.header(), origin: ORIGIN },
    })
    assertCode(t, change, 401, 'GH_INVALID_CREDENTIALS', 'nor can one be set with only a session: there is no current password to prove')

    const replay = await browser.request('GET', gatewayPath(callback))
    await assertRefusedPage(t, replay, 400, 'GH_OIDC_INVALID', 'state_missing')

    await t.test('the second sign-in finds the same user by (issuer, sub), with a new session', async (t) => {
      const again = await throughProvider(t, gw, idp, 'idp', 'alice', '/app/again')
      const response = await again.browser.request('GET', again.callback)
      t.equal(response.status, 303)
      t.equal(response.headers.location, '/app/again')
      const token = again.browser.jar.cookies.get(SESSION)
      t.ok(token && token !== browser.jar.cookies.get(SESSION), 'a new session token')
      const me = await again.browser.request('GET', '/auth/me', { accept: 'application/json' })
      t.equal(me.json<{ id: string }>().id, userId, 'the same user')
      t.equal((await countRows(gw)).users, after.users, 'no user created')
    })

    await t.test('a replayed callback (same URL, same flow cookie) is refused', async (t) => {
      const once = await throughProvider(t, gw, idp, 'idp', 'alice')
      const flowCookie = once.browser.jar.cookies.get(FLOW)
      t.equal((await once.browser.request('GET', once.callback)).status, 303, 'the first time')
      const attacker = browserFor(gw)
      attacker.jar.cookies.set(FLOW, String(flowCookie))
      const replayed = await attacker.request('GET', once.callback)
      await assertRefusedPage(t, replayed, 400, 'GH_OIDC_INVALID', 'state_unknown')
      await assertSignedOut(t, attacker)
    })
  })

  await t.test('a wrong state is refused and ends the pending sign-in', async (t) => {
    const { browser, callback } = await throughProvider(t, gw, idp, 'idp', 'alice')
    const url = new URL(callback, ORIGIN)
    url.searchParams.set('state', 'x'.repeat(43))
    const response = await browser.request('GET', url.pathname + url.search)
    await assertRefusedPage(t, response, 400, 'GH_OIDC_INVALID', 'state_mismatch')
    await assertSignedOut(t, browser)
    const retried = await browser.request('GET', callback)
    await assertRefusedPage(t, retried, 400, 'GH_OIDC_INVALID', 'state_missing')
  })

  await t.test("another browser's callback (login CSRF) is refused", async (t) => {
    const attacker = await throughProvider(t, gw, idp, 'idp', 'alice')
    const victim = await start(t, gw, 'idp')
    const response = await victim.browser.request('GET', attacker.callback)
    await assertRefusedPage(t, response, 400, 'GH_OIDC_INVALID', 'state_mismatch')
    await assertSignedOut(t, victim.browser)
    const noCookie = await browserFor(gw).request('GET', attacker.callback)
    await assertRefusedPage(t, noCookie, 400, 'GH_OIDC_INVALID', 'state_missing')
  })

  for (const [what, claim, tamper] of [
    ['a wrong nonce', 'nonce', { nonce: 'not-the-nonce-the-gateway-sent' }],
    ['an ID token from another issuer', 'iss', { iss: 'http://127.0.0.1:1/another-issuer' }],
    ['an ID token for another audience', 'aud', { aud: 'another-client' }],
  ] as const) {
    await t.test(`${what} is refused, though signed with the provider's key`, async (t) => {
      const before = await countRows(gw)
      const { browser, callback } = await throughProvider(t, gw, idp, 'idp', 'alice')
      idp.tamperNextIdToken = (claims) => ({ ...claims, ...tamper })
      const response = await browser.request('GET', callback)
      t.equal(idp.tamperNextIdToken, null, 'the token response was tampered with')
      await assertRefusedPage(t, response, 400, 'GH_OIDC_INVALID', 'id_token_invalid')
      t.match(response.text, new RegExp(`&quot;${claim}&quot;`), `the page names the ${claim} claim`)
      await assertSignedOut(t, browser)
      t.equal((await countRows(gw)).users, before.users)
    })
  }

  await t.test('a callback naming another issuer (RFC 9207 iss) is refused', async (t) => {
    const { browser, callback } = await throughProvider(t, gw, idp, 'idp', 'alice')
    const url = new URL(callback, ORIGIN)
    t.equal(url.searchParams.get('iss'), idp.issuer, 'the provider names itself')
    url.searchParams.set('iss', 'https://mix-up.example')
    const requests = idp.tokenRequests
    const response = await browser.request('GET', url.pathname + url.search)
    await assertRefusedPage(t, response, 400, 'GH_OIDC_INVALID', 'issuer_mismatch')
    t.equal(idp.tokenRequests, requests, 'the code was not sent anywhere')
    await assertSignedOut(t, browser)
  })

  await t.test('a code already redeemed is refused', async (t) => {
    const { browser, callback } = await throughProvider(t, gw, idp, 'idp', 'alice')
    const requests = idp.tokenRequests
    idp.replayNextTokenRequest = true
    const response = await browser.request('GET', callback)
    t.equal(idp.tokenRequests, requests + 2, 'the code reached the provider twice')
    await assertRefusedPage(t, response, 400, 'GH_OIDC_INVALID', 'code_rejected')
    await assertSignedOut(t, browser)
  })

  await t.test('an expired code is refused', async (t) => {
    idp.codeTtlSeconds = 1
    t.teardown(() => void (idp.codeTtlSeconds = 60))
    const { browser, callback } = await throughProvider(t, gw, idp, 'idp', 'alice')
    await new Promise((resolve) => setTimeout(resolve, 2_100))
    const response = await browser.request('GET', callback)
    await assertRefusedPage(t, response, 400, 'GH_OIDC_INVALID', 'code_rejected')
    await assertSignedOut(t, browser)
  })

  await t.test('an unverified email is refused, and so is a missing email_verified', async (t) => {
    const before = await countRows(gw)
    for (const [account, message] of [['mallory', /has not verified/], ['nobody', /has not verified/]] as const) {
      const { browser, callback } = await throughProvider(t, gw, idp, 'idp', account)
      const response = await browser.request('GET', callback)
      await assertRefusedPage(t, response, 403, 'GH_OIDC_REFUSED', 'email_unverified')
      t.match(response.text, message)
      await assertSignedOut(t, browser)
    }
    t.equal((await countRows(gw)).users, before.users, 'no user created')
    const failed = (await gw.runtime.audit.list({ limit: 5 })).filter((e) => e.type === 'login.failed')
    t.ok(failed.some((e) => e.details.reason === 'email_unverified' && e.email === 'nobody@example.com'), 'audited')
  })

  await t.test('an email outside allowed_email_domains is refused', async (t) => {
    const { browser, callback } = await throughProvider(t, gw, idp, 'idp', 'outsider')
    const response = await browser.request('GET', callback)
    await assertRefusedPage(t, response, 403, 'GH_OIDC_REFUSED', 'domain_not_allowed')
    t.match(response.text, /elsewhere\.example/)
    await assertSignedOut(t, browser)
  })

  await t.test('a JSON client gets the JSON error shape', async (t) => {
    const { browser, callback } = await throughProvider(t, gw, idp, 'idp', 'outsider')
    const response = await browser.request('GET', callback, { accept: 'application/json' })
    const body = assertCode(t, response, 403, 'GH_OIDC_REFUSED')
    t.equal(body.reason, 'domain_not_allowed')
  })

  await t.test('a local user with the same email: refused unless link_existing_users, then linked', async (t) => {
    const email = uniqueEmail('bob')
    const local = await register(gw, email)
    idp.accounts.set('bob-sub', { email, email_verified: true })

    const refused = await throughProvider(t, gw, idp, 'idp', 'bob-sub')
    const response = await refused.browser.request('GET', refused.callback)
    await assertRefusedPage(t, response, 403, 'GH_OIDC_REFUSED', 'link_disabled')
    t.match(response.text, /already exists here/, 'says why')
    t.match(response.text, /password/, 'and what to do instead')
    t.same(await gw.runtime.oidcAccounts.identitiesOf(local.id), [], 'nothing linked')

    const linked = await throughProvider(t, gw, idp, 'idp-link', 'bob-sub', '/app/linked')
    const back = await linked.browser.request('GET', linked.callback)
    t.equal(back.status, 303, 'link_existing_users: signed in')
    t.equal(back.headers.location, '/app/linked')
    const me = await linked.browser.request('GET', '/auth/me', { accept: 'application/json' })
    t.equal(me.json<{ id: string }>().id, local.id, 'as the existing local user')
    t.same(await gw.runtime.oidcAccounts.identitiesOf(local.id), [{ issuer: idp.issuer, subject: 'bob-sub', email }])
    t.equal((await login(gw, email)).user.id, local.id, 'the password still works')

    const known = await throughProvider(t, gw, idp, 'idp', 'bob-sub')
    t.equal((await known.browser.request('GET', known.callback)).status, 303, 'once linked, the identity signs in with either entry of this issuer')
  })

  await t.test('create_users false and no local user: refused', async (t) => {
    idp.accounts.set('carol-sub', { email: uniqueEmail('carol'), email_verified: true })
    const { browser, callback } = await throughProvider(t, gw, idp, 'idp-link', 'carol-sub')
    const response = await browser.request('GET', callback)
    await assertRefusedPage(t, response, 403, 'GH_OIDC_REFUSED', 'no_account')
  })

  await t.test('a disabled user is refused', async (t) => {
    idp.accounts.set('dave-sub', { email: uniqueEmail('dave'), email_verified: true })
    const first = await throughProvider(t, gw, idp, 'idp', 'dave-sub')
    t.equal((await first.browser.request('GET', first.callback)).status, 303)
    const me = await first.browser.request('GET', '/auth/me', { accept: 'application/json' })
    await gw.runtime.users.setDisabled(me.json<{ id: string }>().id, true)
    const second = await throughProvider(t, gw, idp, 'idp', 'dave-sub')
    const response = await second.browser.request('GET', second.callback)
    await assertRefusedPage(t, response, 403, 'GH_OIDC_REFUSED', 'user_disabled')
  })

  await t.test('the provider denying the sign-in is shown as such', async (t) => {
    const { browser, authorization } = await start(t, gw, 'idp')
    const state = authorization.searchParams.get('state') ?? ''
    const response = await browser.request(
      'GET',
      `/auth/oidc/idp/callback?error=access_denied&state=${state}&iss=${encodeURIComponent(idp.issuer)}`,
    )
    await assertRefusedPage(t, response, 403, 'GH_OIDC_REFUSED', 'provider_error')
    t.match(response.text, /access_denied/)
  })

  await t.test('the provider down during the callback: 503, no session, and fine again once it is back', async (t) => {
    const { browser, callback } = await throughProvider(t, gw, idp, 'idp', 'alice')
    idp.down = true
    t.teardown(() => void (idp.down = false))
    const response = await browser.request('GET', callback)
    t.equal(response.status, 503, 'unavailable', { body: response.text.slice(0, 300) })
    t.match(response.text, /GH_OIDC_UNAVAILABLE/)
    t.match(response.text, /<a [^>]*href="\/auth\/login/)
    t.notOk(response.text.includes(idp.issuer.replace('http://', '')), 'the page does not name the provider address')
    t.notOk(setCookies(response).some((c) => c.name === SESSION && !isCleared(c)), 'no session cookie')
    await assertSignedOut(t, browser)
    idp.down = false
    const again = await throughProvider(t, gw, idp, 'idp', 'alice')
    t.equal((await again.browser.request('GET', again.callback)).status, 303, 'signing in works again')
  })

  await t.test('an unsafe next becomes / at the end of the flow', async (t) => {
    for (const next of ['//evil.example/x', 'https://evil.example', '/\\evil.example', '/%2F%2Fevil.example']) {
      const { browser, callback } = await throughProvider(t, gw, idp, 'idp', 'alice', next)
      const response = await browser.request('GET', callback)
      t.equal(response.status, 303, `${next}: signed in`)
      t.equal(response.headers.location, '/', `${next}: to / exactly`)
    }
  })

  await t.test('HEAD neither starts nor finishes a sign-in', async (t) => {
    const head = await gw.call('HEAD', '/auth/oidc/idp/start')
    t.not(head.status, 302, 'no redirect to the provider')
    t.notOk(setCookies(head).some((c) => c.name === FLOW), 'no flow cookie')
  })

  await t.test('unknown provider: 404', async (t) => {
    const response = await gw.call('GET', '/auth/oidc/nope/start', { headers: { accept: 'application/json' } })
    assertCode(t, response, 404, 'GH_NOT_FOUND')
  })
})

t.test('login_rate_limit covers /auth/oidc/*', async (t) => {
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.auth.login_rate_limit = { max: 3, window: '1m' }
      raw.auth.oidc = [{ name: 'idp', issuer: 'http://127.0.0.1:9/', client_id: 'a', client_secret: 'b' }]
    },
  })
  t.teardown(() => gw.runtime.oidc.close())
  const statuses: number[] = []
  for (const path of ['/auth/oidc/idp/start', '/auth/oidc/idp/start', '/auth/oidc/idp/callback?code=x&state=y', '/auth/oidc/idp/start']) {
    statuses.push((await gw.call('GET', path, { headers: { accept: 'application/json' } })).status)
  }
  t.same(statuses, [503, 503, 400, 429], 'the fourth attempt from this IP within the window is refused')
  const limited = await gw.call('GET', '/auth/oidc/idp/callback?code=x&state=y', { headers: { accept: 'text/html' } })
  t.equal(limited.status, 429)
  t.ok(Number(limited.headers['retry-after']) >= 1, 'Retry-After')
  t.match(limited.text, /Too many attempts/)
})

t.test('discovery does not block the gateway: 503 with Retry-After until the issuer answers', async (t) => {
  const idp = await startTestProvider(t, {
    redirectUris: [`${PUBLIC_URL}/auth/oidc/idp-down/callback`],
    accounts: { erin: { email: 'erin@example.com', email_verified: true } },
  })
  idp.down = true
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.auth.oidc = [{ name: 'idp-down', issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret, create_users: true }]
    },
  })
  const email = uniqueEmail('local')
  await register(gw, email)
  t.equal((await login(gw, email)).user.email, email, 'password login works while the issuer is down')

  const json = await gw.call('GET', '/auth/oidc/idp-down/start', { headers: { accept: 'application/json' } })
  const body = assertCode(t, json, 503, 'GH_OIDC_UNAVAILABLE')
  t.equal(body.reason, 'not_discovered')
  t.ok(Number(json.headers['retry-after']) >= 1, 'Retry-After')
  t.notOk(setCookies(json).some((c) => c.name === FLOW), 'no flow cookie')
  const page = await gw.call('GET', '/auth/oidc/idp-down/start', { headers: { accept: 'text/html' } })
  t.equal(page.status, 503)
  t.ok(Number(page.headers['retry-after']) >= 1, 'Retry-After on the page too')
  t.match(page.text, /unavailable right now/)

  idp.down = false
  // Retried with back-off (1 s, then 2 s, …): the second attempt comes about a second later.
  await waitUntil('the issuer is discovered', () => gw.runtime.oidc.get('idp-down')?.ready === true, 8_000)
  const { browser, authorization } = await start(t, gw, 'idp-down', '/after')
  const callback = await idp.authorize(authorization.href, 'erin')
  const back = await browser.request('GET', gatewayPath(callback))
  t.equal(back.status, 303)
  t.equal(back.headers.location, '/after')
})
