/**
 * Re-checking OIDC sessions with the provider (SPEC §2 `refresh_interval`) against a real
 * provider (oidc-provider issuing refresh tokens): the refresh token is kept encrypted; when
 * the check is due, the next request redeems it (once, however many requests arrive
 * together), re-maps the roles from the fresh claims, and a refusal (the user removed at the
 * provider) or a lost allowed group ends the session. A provider that is down ends nothing.
 * The gateway's clock is injected; the provider's is real.
 */
import t, { type Test } from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { sha256 } from '../src/core/crypto.js'
import { PUBLIC_URL, startTestGateway, type TestGateway } from './helpers/gateway.js'
import { browserFor, discovered, signInWith } from './helpers/oidc-browser.js'
import { startTestProvider, type TestProvider } from './helpers/oidc-provider.js'

const MINUTE = 60_000

async function setUp(t: Test): Promise<{ idp: TestProvider; gw: TestGateway; clock: ManualClock }> {
  const idp = await startTestProvider(t, {
    redirectUris: [`${PUBLIC_URL}/auth/oidc/corp/callback`],
    claimsInIdToken: true,
    refreshTokens: true,
    accounts: {
      alice: { email: 'alice@example.com', email_verified: true, groups: ['staff'] },
      bob: { email: 'bob@example.com', email_verified: true, groups: ['staff'] },
      carol: { email: 'carol@example.com', email_verified: true, groups: ['staff'] },
    },
  })
  const clock = new ManualClock(Date.now())
  const gw = await startTestGateway(t, {
    clock,
    configure: (raw) => {
      raw.auth.oidc = [{
        name: 'corp',
        issuer: idp.issuer,
        client_id: idp.clientId,
        client_secret: idp.clientSecret,
        create_users: true,
        scopes: ['openid', 'email', 'groups'],
        roles_claim: 'groups',
        role_map: { staff: ['operator'], 'gatehouse-admins': ['admin'] },
        allowed_groups: ['staff', 'gatehouse-admins'],
        refresh_interval: '5m',
      }]
    },
  })
  await discovered(gw, 'corp')
  return { idp, gw, clock }
}

async function signIn(t: Test, gw: TestGateway, idp: TestProvider, account: string): Promise<string> {
  const browser = browserFor(gw)
  t.equal((await signInWith(browser, idp, 'corp', account)).status, 303, `${account} signed in`)
  return browser.sessionToken as string
}

async function me(gw: TestGateway, token: string) {
  return gw.call('GET', '/auth/me', { headers: { authorization: `Bearer ${token}` } })
}

t.test('refresh_interval: re-check, re-map, refuse', async (t) => {
  const { idp, gw, clock } = await setUp(t)

  await t.test('the refresh token is kept encrypted, and not used before the interval', async (t) => {
    const token = await signIn(t, gw, idp, 'alice')
    const link = await gw.runtime.oidcSessions.get(sha256(token))
    t.ok(link?.refresh, 'a refresh state is recorded')
    t.match(link?.refresh?.token, /^gh1\./, 'sealed with the data key ring')
    const raw = await gw.runtime.store.get(`oidc-session:${sha256(token)}`)
    t.notOk(raw?.includes('"refresh_token"'), 'no plaintext field')
    const before = idp.refreshRequests
    clock.advance(4 * MINUTE)
    t.equal((await me(gw, token)).status, 200)
    t.equal(idp.refreshRequests, before, 'not due yet: the provider is not asked')
  })

  await t.test('due: one refresh for concurrent requests; roles re-mapped from the fresh claims', async (t) => {
    const token = await signIn(t, gw, idp, 'bob')
    t.same((await me(gw, token)).json<{ roles: string[] }>().roles.sort(), ['operator', 'viewer'])
    idp.accounts.get('bob')!.groups = ['staff', 'gatehouse-admins']
    clock.advance(6 * MINUTE)
    const before = idp.refreshRequests
    const answers = await Promise.all(Array.from({ length: 5 }, () => me(gw, token)))
    t.same(answers.map((a) => a.status), [200, 200, 200, 200, 200], 'every request passes')
    t.equal(idp.refreshRequests, before + 1, 'the provider was asked once')
    t.same((await me(gw, token)).json<{ roles: string[] }>().roles.sort(), ['admin', 'operator', 'viewer'], 'the new group mapped')
    clock.advance(MINUTE)
    await me(gw, token)
    t.equal(idp.refreshRequests, before + 1, 'the next check waits for the next interval')
    clock.advance(5 * MINUTE)
    t.equal((await me(gw, token)).status, 200, 'a rotated refresh token works for the next check')
    t.equal(idp.refreshRequests, before + 2)
  })

  await t.test('the provider down: the session goes on, and the check is tried again', async (t) => {
    const token = await signIn(t, gw, idp, 'carol')
    clock.advance(6 * MINUTE)
    idp.down = true
    t.equal((await me(gw, token)).status, 200, 'an outage ends nothing')
    idp.down = false
    const before = idp.refreshRequests
    clock.advance(MINUTE)
    t.equal((await me(gw, token)).status, 200)
    t.equal(idp.refreshRequests, before + 1, 'retried within a minute')
  })

  await t.test('a lost allowed group ends the session at the next check', async (t) => {
    const token = await signIn(t, gw, idp, 'carol')
    idp.accounts.get('carol')!.groups = ['contractors']
    clock.advance(6 * MINUTE)
    t.equal((await me(gw, token)).status, 401)
  })

  await t.test('the user removed at the provider: the refresh is refused and the session ends', async (t) => {
    const token = await signIn(t, gw, idp, 'alice')
    const other = await signIn(t, gw, idp, 'bob')
    idp.accounts.delete('alice')
    clock.advance(6 * MINUTE)
    t.equal((await me(gw, token)).status, 401, 'refused')
    t.equal(await gw.runtime.store.get(`session:${sha256(token)}`), null, 'the session is gone from the store')
    t.equal(await gw.runtime.oidcSessions.get(sha256(token)), null, 'and its provider link')
    t.equal((await me(gw, other)).status, 200, 'another user is unaffected')
    const events = await gw.runtime.audit.list({ limit: 20 })
    t.ok(events.some((e) => e.type === 'session.revoked' && String(e.details.reason).startsWith('provider_refused')), 'audited with the reason')
  })
})
