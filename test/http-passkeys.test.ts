/**
 * The passkey endpoints through the real server (SPEC §5 webauthn rows, §3): registering with
 * a software authenticator's real answers, listing, removing, who may call them, and what a
 * change does to the user's other sessions; the rules (challenge once, the gateway's origin,
 * the owner's passkey only) each with a request that breaks them.
 */
import t from 'tap'
import { assertError, bearer, browser, login, meStatus, register, signUp, uniqueEmail } from './helpers/auth-client.js'
import { PUBLIC_URL, startTestGateway } from './helpers/gateway.js'
import { addPasskey, passkeyRows as rows, registrationOptions as options, type Passkey } from './helpers/passkeys.js'
import { SoftAuthenticator } from './helpers/soft-authenticator.js'

t.test('passkey endpoints', async (t) => {
  const gw = await startTestGateway(t)

  await t.test('registration options name the gateway as relying party and the user by id', async (t) => {
    const alice = await signUp(gw, 'alice')
    const opts = await options(gw, alice)
    t.equal(opts.rp.id, 'gatehouse.test', 'RP ID: public_url’s host')
    t.equal(Buffer.from(opts.user.id, 'base64url').toString('utf8'), alice.user.id)
    t.equal(opts.user.name, alice.user.email)
    t.match(opts.challenge, /^[A-Za-z0-9_-]{43}$/)
  })

  await t.test('register, list, remove; each change ends the other sessions and is audited', async (t) => {
    const email = uniqueEmail('bob')
    await register(gw, email)
    const bob = await login(gw, email)
    const other = await login(gw, email)

    const { response: added } = await addPasskey(gw, bob, 'Work laptop')
    t.equal(added.status, 201, added.text)
    const passkey = added.json<Passkey>()
    t.same(Object.keys(passkey).sort(), ['backed_up', 'created_at', 'id', 'last_used_at', 'name', 'transports'])
    t.equal(passkey.name, 'Work laptop')
    t.equal(await meStatus(gw, bob.token), 200, 'this session goes on')
    t.equal(await meStatus(gw, other.token), 401, 'the other session is ended')

    const listed = await gw.call('GET', '/auth/mfa/webauthn', { headers: bearer(bob.token) })
    t.same(listed.json(), { items: [passkey], next_cursor: null })

    const third = await login(gw, email)
    const removed = await gw.call('DELETE', `/auth/mfa/webauthn/${passkey.id}`, { headers: bearer(bob.token) })
    t.equal(removed.status, 204, removed.text)
    t.equal(await meStatus(gw, third.token), 401, 'removing ends the other sessions too')
    t.equal(await meStatus(gw, bob.token), 200)
    assertError(t, await gw.call('DELETE', `/auth/mfa/webauthn/${passkey.id}`, { headers: bearer(bob.token) }), 404, 'GH_NOT_FOUND', 'again')

    const { rows: events } = await gw.runtime.db.query<{ type: string }>(
      "SELECT type FROM audit_events WHERE user_id = $1 AND type LIKE 'mfa.%' ORDER BY id",
      [bob.user.id],
    )
    t.same(events.map((e) => e.type), ['mfa.passkey_added', 'mfa.passkey_removed'])
  })

  await t.test('another user’s passkey cannot be removed, nor listed', async (t) => {
    const carol = await signUp(gw, 'carol')
    const dave = await signUp(gw, 'dave')
    const { response } = await addPasskey(gw, carol)
    const carols = response.json<Passkey>()
    assertError(t, await gw.call('DELETE', `/auth/mfa/webauthn/${carols.id}`, { headers: bearer(dave.token) }), 404, 'GH_NOT_FOUND')
    t.same((await gw.call('GET', '/auth/mfa/webauthn', { headers: bearer(dave.token) })).json(), { items: [], next_cursor: null })
    t.equal((await gw.call('GET', '/auth/mfa/webauthn', { headers: bearer(carol.token) })).json<{ items: unknown[] }>().items.length, 1)
    assertError(t, await gw.call('DELETE', '/auth/mfa/webauthn/not-a-uuid', { headers: bearer(carol.token) }), 404, 'GH_NOT_FOUND')
  })

  await t.test('a registration answer works once, from the gateway’s origin, for the user it was issued to', async (t) => {
    const erin = await signUp(gw, 'erin')
    const frank = await signUp(gw, 'frank')
    const before = await rows(gw)

    const replayed = new SoftAuthenticator(PUBLIC_URL).register(await options(gw, erin))
    const first = await gw.call('POST', '/auth/mfa/webauthn', { headers: bearer(erin.token), json: { name: 'a', response: replayed } })
    t.equal(first.status, 201)
    // Removed again, so that only the spent challenge stands in the way of the same answer.
    t.equal((await gw.call('DELETE', `/auth/mfa/webauthn/${first.json<Passkey>().id}`, { headers: bearer(erin.token) })).status, 204)
    assertError(t, await gw.call('POST', '/auth/mfa/webauthn', { headers: bearer(erin.token), json: { name: 'b', response: replayed } }), 400, 'GH_VALIDATION', 'challenge reused')

    const evil = new SoftAuthenticator('https://evil.example').register(await options(gw, erin))
    assertError(t, await gw.call('POST', '/auth/mfa/webauthn', { headers: bearer(erin.token), json: { name: 'c', response: evil } }), 400, 'GH_VALIDATION', 'another origin')

    const erinsChallenge = new SoftAuthenticator(PUBLIC_URL).register(await options(gw, erin))
    assertError(t, await gw.call('POST', '/auth/mfa/webauthn', { headers: bearer(frank.token), json: { name: 'd', response: erinsChallenge } }), 400, 'GH_VALIDATION', 'another user’s challenge')
    t.equal(await rows(gw), before, 'nothing was stored but the first, removed since')
  })

  await t.test('bad input: 400 and nothing stored', async (t) => {
    const gina = await signUp(gw, 'gina')
    const before = await rows(gw)
    const response = new SoftAuthenticator(PUBLIC_URL).register(await options(gw, gina))
    for (const [what, json] of [
      ['no name', { response }],
      ['empty name', { name: ' ', response }],
      ['no response', { name: 'x' }],
      ['a string response', { name: 'x', response: 'x' }],
      ['an extra field', { name: 'x', response, admin: true }],
      ['a huge clientDataJSON', { name: 'x', response: { ...response, response: { ...response.response, clientDataJSON: 'A'.repeat(9000) } } }],
    ] as const) {
      assertError(t, await gw.call('POST', '/auth/mfa/webauthn', { headers: bearer(gina.token), json }), 400, 'GH_VALIDATION', what)
    }
    t.equal(await rows(gw), before)
  })

  await t.test('session access only: anonymous 401, a PAT 403, a cross-site browser post 403', async (t) => {
    const hank = await signUp(gw, 'hank')
    assertError(t, await gw.call('POST', '/auth/mfa/webauthn/options', { json: {} }), 401, 'GH_UNAUTHENTICATED')
    assertError(t, await gw.call('GET', '/auth/mfa/webauthn'), 401, 'GH_UNAUTHENTICATED')
    const pat = await gw.call('POST', '/auth/tokens', { headers: bearer(hank.token), json: { name: 'ci' } })
    const token = pat.json<{ token: string }>().token
    for (const [method, path] of [['POST', '/auth/mfa/webauthn/options'], ['GET', '/auth/mfa/webauthn'], ['DELETE', '/auth/mfa/webauthn/00000000-0000-4000-8000-000000000000']] as const) {
      assertError(t, await gw.call(method, path, { headers: bearer(token), ...(method === 'POST' ? { json: {} } : {}) }), 403, 'GH_FORBIDDEN', `${method} ${path} with a PAT`)
    }
    const crossSite = await gw.call('POST', '/auth/mfa/webauthn/options', { headers: { ...browser(gw, hank.token), origin: 'https://evil.example' }, json: {} })
    assertError(t, crossSite, 403, 'GH_CSRF')
  })
})
