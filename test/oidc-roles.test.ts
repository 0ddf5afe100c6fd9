/**
 * Provider groups to roles (SPEC §2 `roles_claim`, `role_map`, `allowed_groups`) against a
 * real provider (oidc-provider) whose ID tokens carry the groups: the roles are set at every
 * sign-in to default_roles + the mapped roles (overriding what an admin set), each change is
 * audited, a user without an allowed group is refused with a page that says why, and dotted
 * paths reach nested claims (Keycloak's realm_access.roles).
 */
import t, { type Test } from 'tap'
import { PUBLIC_URL, startTestGateway } from './helpers/gateway.js'
import { browserFor, discovered, signInWith } from './helpers/oidc-browser.js'
import { startTestProvider } from './helpers/oidc-provider.js'

interface Me {
  id: string
  roles: string[]
}

t.test('groups in the ID token map to roles at every sign-in; allowed_groups refuses', async (t) => {
  const idp = await startTestProvider(t, {
    redirectUris: ['groups', 'keycloak'].map((name) => `${PUBLIC_URL}/auth/oidc/${name}/callback`),
    claimsInIdToken: true,
    accounts: {
      alice: { email: 'alice@example.com', email_verified: true, groups: ['staff', 'gatehouse-admins', 'unmapped'] },
      carol: { email: 'carol@example.com', email_verified: true, groups: ['contractors'] },
      dave: { email: 'dave@example.com', email_verified: true, groups: 'staff' },
      erin: { email: 'erin@example.com', email_verified: true, realm_access: { roles: ['api-writer'] } },
      frank: { email: 'frank@example.com', email_verified: true, groups: { staff: true } },
    },
  })
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      const common = { issuer: idp.issuer, client_id: idp.clientId, client_secret: idp.clientSecret, create_users: true }
      raw.auth.oidc = [
        {
          name: 'groups',
          ...common,
          scopes: ['openid', 'email', 'groups'],
          roles_claim: 'groups',
          role_map: { 'gatehouse-admins': ['admin'], staff: ['operator'] },
          allowed_groups: ['staff'],
        },
        { name: 'keycloak', ...common, scopes: ['openid', 'email', 'roles'], roles_claim: 'realm_access.roles', role_map: { 'api-writer': ['operator'] } },
      ]
    },
  })
  await discovered(gw, 'groups', 'keycloak')

  async function me(t: Test, browser: ReturnType<typeof browserFor>): Promise<Me> {
    const response = await browser.request('GET', '/auth/me', { accept: 'application/json' })
    t.equal(response.status, 200, '/auth/me with the new session')
    return response.json<Me>()
  }

  await t.test('a new user gets default_roles + the mapped roles; unmapped groups give nothing', async (t) => {
    const browser = browserFor(gw)
    const callback = await signInWith(browser, idp, 'groups', 'alice')
    t.equal(callback.status, 303, 'signed in')
    const alice = await me(t, browser)
    t.same([...alice.roles].sort(), ['admin', 'operator', 'viewer'])
  })

  await t.test('the next sign-in re-maps: a group lost at the provider is a role lost here, audited', async (t) => {
    idp.accounts.get('alice')!.groups = ['staff']
    const browser = browserFor(gw)
    t.equal((await signInWith(browser, idp, 'groups', 'alice')).status, 303)
    const alice = await me(t, browser)
    t.same([...alice.roles].sort(), ['operator', 'viewer'])
    const events = await gw.runtime.audit.list({ userId: alice.id, limit: 10 })
    const change = events.find((event) => event.type === 'user.roles_changed')
    t.ok(change, 'user.roles_changed recorded')
    t.same([...(change?.details.from as string[])].sort(), ['admin', 'operator', 'viewer'], 'from')
    t.same([...(change?.details.to as string[])].sort(), ['operator', 'viewer'], 'to')
    t.equal(change?.details.provider, 'groups')

    // Roles an admin set by hand are replaced at the next sign-in: the provider is the source.
    await gw.runtime.users.setRoles(alice.id, ['viewer', 'admin'])
    const again = browserFor(gw)
    t.equal((await signInWith(again, idp, 'groups', 'alice')).status, 303)
    t.same([...(await me(t, again)).roles].sort(), ['operator', 'viewer'], 'mapped roles again')
    const unchanged = browserFor(gw)
    const before = (await gw.runtime.audit.list({ userId: alice.id, limit: 50 })).filter((e) => e.type === 'user.roles_changed').length
    t.equal((await signInWith(unchanged, idp, 'groups', 'alice')).status, 303)
    const after = (await gw.runtime.audit.list({ userId: alice.id, limit: 50 })).filter((e) => e.type === 'user.roles_changed').length
    t.equal(after, before, 'no event when the roles stay the same')
  })

  await t.test('a single group as a string counts', async (t) => {
    const browser = browserFor(gw)
    t.equal((await signInWith(browser, idp, 'groups', 'dave')).status, 303)
    t.same([...(await me(t, browser)).roles].sort(), ['operator', 'viewer'])
  })

  await t.test('without an allowed group: 403 page saying why, no user, no session', async (t) => {
    for (const account of ['carol', 'frank']) {
      const browser = browserFor(gw)
      const callback = await signInWith(browser, idp, 'groups', account)
      t.equal(callback.status, 403, `${account} refused`)
      t.match(callback.text, /GH_OIDC_REFUSED \(group_not_allowed\)/, 'names the reason')
      t.match(callback.text, /needs membership of one of these groups: staff/, 'says which group is needed')
      t.equal(browser.sessionToken, undefined, 'no session cookie')
      t.equal(await gw.runtime.users.getByEmail(`${account}@example.com`), null, 'no user created')
    }
    const failures = (await gw.runtime.audit.list({ limit: 50 })).filter((e) => e.type === 'login.failed' && e.details.reason === 'group_not_allowed')
    t.equal(failures.length, 2, 'each refusal audited with its reason')
  })

  await t.test('a dotted roles_claim reaches a nested claim', async (t) => {
    const browser = browserFor(gw)
    t.equal((await signInWith(browser, idp, 'keycloak', 'erin')).status, 303)
    t.same([...(await me(t, browser)).roles].sort(), ['operator', 'viewer'])
  })
})
