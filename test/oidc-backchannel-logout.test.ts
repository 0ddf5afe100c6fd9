/**
 * OpenID Connect Back-Channel Logout 1.0 (SPEC §5) between a real provider (oidc-provider,
 * whose own key signs the logout tokens) and two gateways sharing one Redis session store and
 * one database: a logout token posted to one replica ends the sessions it names on both at
 * once (the next request on the other replica is already refused); forged, replayed,
 * wrong-audience, wrong-issuer, nonce-carrying and event-less tokens are 400 and end nothing;
 * login_rate_limit does not apply. And RP-initiated logout (`provider_logout`): a form logout
 * goes on to the provider's end_session_endpoint with id_token_hint.
 */
import { randomUUID } from 'node:crypto'
import { decodeJwt, generateKeyPair, SignJWT, type JWTPayload } from 'jose'
import t, { type Test } from 'tap'
import { sha256 } from '../src/core/crypto.js'
import { assertCode } from './helpers/assert-code.js'
import { databaseBackends, sessionStoreBackends } from './helpers/backends.js'
import { PUBLIC_URL, startTestGateway, type RawConfig, type TestGateway } from './helpers/gateway.js'
import { browserFor, discovered, signInWith, type Browser } from './helpers/oidc-browser.js'
import { startTestProvider, type TestProvider } from './helpers/oidc-provider.js'

const EVENT = 'http://schemas.openid.net/event/backchannel-logout'
const FORM = { 'content-type': 'application/x-www-form-urlencoded' }

async function signedIn(t: Test, gw: TestGateway, idp: TestProvider, name: string, account: string): Promise<Browser> {
  const browser = browserFor(gw)
  const callback = await signInWith(browser, idp, name, account)
  t.equal(callback.status, 303, `${account} signed in on ${name}`)
  return browser
}

async function meStatus(browser: Browser, gw: TestGateway): Promise<number> {
  const token = browser.sessionToken
  if (token === undefined) return 401
  return (await gw.call('GET', '/auth/me', { headers: { authorization: `Bearer ${token}` } })).status
}

t.test('back-channel logout across two replicas, and every bad logout token refused', async (t) => {
  const idp = await startTestProvider(t, {
    redirectUris: [`${PUBLIC_URL}/auth/oidc/corp/callback`, `${PUBLIC_URL}/auth/oidc/other/callback`],
    backchannelLogoutUri: `${PUBLIC_URL}/auth/oidc/corp/backchannel-logout`,
    accounts: {
      alice: { email: 'alice@example.com', email_verified: true },
      bob: { email: 'bob@example.com', email_verified: true },
    },
  })
  const db = await databaseBackends().at(-1)!.open(t)
  const store = await sessionStoreBackends().at(-1)!.open(t)
  const configure = (raw: RawConfig) => {
    raw.auth.oidc = [
      { name: 'corp', issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret, create_users: true },
      // Same issuer, another client: its tokens' audience is not corp's.
      { name: 'other', issuer: idp.issuer, client_id: 'another-client', client_secret: 'x', create_users: true },
    ]
  }
  const a = await startTestGateway(t, { db, store, configure })
  const b = await startTestGateway(t, { db, store, configure })
  await discovered(a, 'corp')
  await discovered(b, 'corp', 'other')

  async function linkOf(browser: Browser) {
    const link = await a.runtime.oidcSessions.get(sha256(browser.sessionToken ?? ''))
    if (link === null) throw new Error('no OIDC link recorded for this session')
    return link
  }

  function claims(extra: JWTPayload): JWTPayload {
    return { iss: idp.issuer, aud: idp.clientId, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), events: { [EVENT]: {} }, ...extra }
  }

  async function post(gw: TestGateway, token: string, name = 'corp') {
    return gw.call('POST', `/auth/oidc/${name}/backchannel-logout`, { body: new URLSearchParams({ logout_token: token }).toString(), headers: FORM })
  }

  await t.test('a valid token with sid, posted to replica B, ends that provider session on A at once', async (t) => {
    const first = await signedIn(t, a, idp, 'corp', 'alice')
    const second = await signedIn(t, a, idp, 'corp', 'alice')
    const { sid, sub } = await linkOf(first)
    t.ok(sid, 'the provider sid was recorded with the session')
    t.equal(sub, 'alice')
    t.not((await linkOf(second)).sid, sid, 'another sign-in is another provider session')

    const answer = await post(b, await idp.signAsProvider(claims({ sid, sub }), { typ: 'logout+jwt' }))
    t.equal(answer.status, 200, 'accepted')
    t.equal(answer.headers['cache-control'], 'no-store')
    t.equal(await meStatus(first, a), 401, 'the session of that sid is refused on replica A by the next request')
    t.equal(await meStatus(first, b), 401, 'and on B')
    t.equal(await meStatus(second, a), 200, 'the same user\'s other provider session goes on')
    const events = await a.runtime.audit.list({ limit: 20 })
    t.ok(events.some((e) => e.type === 'logout.backchannel' && e.details.provider === 'corp' && e.details.sessions === 1), 'audited')
  })

  await t.test('a token with sub only ends every session of that user at this provider', async (t) => {
    const one = await signedIn(t, a, idp, 'corp', 'bob')
    const two = await signedIn(t, b, idp, 'corp', 'bob')
    const alice = await signedIn(t, a, idp, 'corp', 'alice')
    t.equal((await post(a, await idp.signAsProvider(claims({ sub: 'bob' })))).status, 200)
    t.equal(await meStatus(one, b), 401, 'bob on A, checked on B')
    t.equal(await meStatus(two, a), 401, 'bob on B, checked on A')
    t.equal(await meStatus(alice, a), 200, 'alice is untouched')
  })

  await t.test('no matching session is still 200 (the provider must not retry)', async (t) => {
    t.equal((await post(a, await idp.signAsProvider(claims({ sid: 'no-such-session' })))).status, 200)
  })

  await t.test('bad tokens: 400, and the session goes on', async (t) => {
    const victim = await signedIn(t, a, idp, 'corp', 'alice')
    const { sid, sub } = await linkOf(victim)
    const { privateKey: strangerKey } = await generateKeyPair('RS256')
    const forged = await new SignJWT(claims({ sid, sub })).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(strangerKey)
    const hs256 = await new SignJWT(claims({ sid, sub })).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(idp.clientSecret))
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims({ sid, sub }))).toString('base64url')}.`
    const cases: Array<[string, string]> = [
      ['forged: signed with another key under the provider\'s kid', forged],
      ['HS256 with the client secret', hs256],
      ['alg none', none],
      ['wrong audience', await idp.signAsProvider(claims({ sid, sub, aud: 'another-client' }))],
      ['wrong issuer', await idp.signAsProvider(claims({ sid, sub, iss: 'https://idp.example.com' }))],
      ['carries a nonce (an ID token in disguise)', await idp.signAsProvider(claims({ sid, sub, nonce: 'n' }))],
      ['no events claim', await idp.signAsProvider(claims({ sid, sub, events: undefined }))],
      ['events without the back-channel logout event', await idp.signAsProvider(claims({ sid, sub, events: { 'http://example.com/other': {} } }))],
      ['neither sid nor sub', await idp.signAsProvider(claims({ sid: undefined, sub: undefined }))],
      ['no jti', await idp.signAsProvider(claims({ sid, sub, jti: undefined }))],
      ['no iat', await idp.signAsProvider(claims({ sid, sub, iat: undefined }))],
      ['issued an hour ago', await idp.signAsProvider(claims({ sid, sub, iat: Math.floor(Date.now() / 1000) - 3600 }))],
      ['expired', await idp.signAsProvider(claims({ sid, sub, exp: Math.floor(Date.now() / 1000) - 300 }))],
      ['typed as something else', await idp.signAsProvider(claims({ sid, sub }), { typ: 'at+jwt' })],
      ['not a JWT', 'not-a-token'],
    ]
    for (const [what, token] of cases) {
      const answer = await post(b, token)
      assertCode(t, answer, 400, 'GH_OIDC_INVALID', what)
    }
    t.equal(await meStatus(victim, a), 200, 'no bad token ended the session')

    const other = await post(b, await idp.signAsProvider(claims({ sid, sub })), 'other')
    assertCode(t, other, 400, 'GH_OIDC_INVALID', 'a token for corp posted to another client\'s endpoint (aud is not its client_id)')
    t.equal(await meStatus(victim, a), 200)

    const missing = await b.call('POST', '/auth/oidc/corp/backchannel-logout', { body: 'other=1', headers: FORM })
    assertCode(t, missing, 400, 'GH_VALIDATION', 'no logout_token')
    assertCode(t, await post(b, 'x', 'nobody'), 404, 'GH_NOT_FOUND', 'unknown provider')
  })

  await t.test('a replayed token is refused on either replica', async (t) => {
    const victim = await signedIn(t, a, idp, 'corp', 'bob')
    const { sid } = await linkOf(victim)
    const token = await idp.signAsProvider(claims({ sid }))
    t.equal((await post(a, token)).status, 200, 'first use')
    const again = await signedIn(t, a, idp, 'corp', 'bob')
    assertCode(t, await post(a, token), 400, 'GH_OIDC_INVALID', 'replayed on the same replica')
    assertCode(t, await post(b, token), 400, 'GH_OIDC_INVALID', 'replayed on the other replica')
    t.equal(await meStatus(again, a), 200, 'a replay ends nothing')
  })

  await t.test('login_rate_limit does not cover it', async (t) => {
    // A third replica on the same store with a limit of 2: the sign-ins above used it up.
    const limited = await startTestGateway(t, {
      db,
      store,
      configure: (raw) => {
        configure(raw)
        raw.auth.login_rate_limit = { max: 2, window: '1m' }
      },
    })
    await discovered(limited, 'corp')
    t.equal((await limited.call('GET', '/auth/oidc/corp/start')).status, 429, 'sign-in is over the limit')
    for (let i = 0; i < 5; i++) {
      t.equal((await post(limited, await idp.signAsProvider(claims({ sub: 'nobody' })))).status, 200, `logout token ${i + 1}`)
    }
  })
})

t.test('RP-initiated logout: a form logout of an OIDC session goes on to end_session_endpoint', async (t) => {
  const idp = await startTestProvider(t, {
    redirectUris: [`${PUBLIC_URL}/auth/oidc/corp/callback`, `${PUBLIC_URL}/auth/oidc/quiet/callback`],
    accounts: { alice: { email: 'alice@example.com', email_verified: true } },
  })
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      const common = { issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret, create_users: true }
      raw.auth.oidc = [{ name: 'corp', ...common, provider_logout: true }, { name: 'quiet', ...common }]
    },
  })
  await discovered(gw, 'corp', 'quiet')
  const origin = new URL(PUBLIC_URL).origin

  const browser = await signedIn(t, gw, idp, 'corp', 'alice')
  const logout = await browser.request('POST', '/auth/logout', { origin, 'content-type': 'application/x-www-form-urlencoded' })
  t.equal(logout.status, 303)
  const location = new URL(String(logout.headers.location))
  t.equal(location.origin + location.pathname, `${idp.issuer}/session/end`, 'to the provider\'s end_session_endpoint')
  t.equal(location.searchParams.get('post_logout_redirect_uri'), `${PUBLIC_URL}/auth/login`)
  t.equal(location.searchParams.get('client_id'), idp.clientId)
  const hint = decodeJwt(location.searchParams.get('id_token_hint') ?? '')
  t.equal(hint.aud, idp.clientId, 'id_token_hint is the ID token of this sign-in')
  t.equal(hint.sub, 'alice')
  t.equal(browser.sessionToken, undefined, 'the cookie is cleared')

  const quiet = await signedIn(t, gw, idp, 'quiet', 'alice')
  const plain = await quiet.request('POST', '/auth/logout', { origin, 'content-type': 'application/x-www-form-urlencoded' })
  t.equal(plain.status, 303)
  t.equal(plain.headers.location, '/auth/login', 'without provider_logout: the login page')
})
