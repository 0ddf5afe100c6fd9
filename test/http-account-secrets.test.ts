/**
 * The "Secrets" section of the account page (SPEC §5) through a real gateway: it lists the
 * routes the user may keep a secret for, sets, replaces and removes one with plain forms (no
 * script), refuses bad input with a page that says why and stores nothing, refuses cookie posts
 * from another origin, and never shows a value, not even the one just refused.
 */
import t, { type Test } from 'tap'
import { bearer, browser, sessionCookie, signUp } from './helpers/auth-client.js'
import { databaseBackends } from './helpers/backends.js'
import { PUBLIC_URL, startTestGateway, type Response, type TestGateway } from './helpers/gateway.js'
import { startUpstream } from './helpers/upstream.js'
import { PASSKEY_SCRIPTS } from '../src/http/login-page.js'

const FORM = 'application/x-www-form-urlencoded'

function post(gw: TestGateway, path: string, fields: Record<string, string>, headers: Record<string, string>): Promise<Response> {
  return gw.call('POST', path, { body: new URLSearchParams(fields).toString(), headers: { 'content-type': FORM, ...headers } })
}

function alertOf(response: Response): string {
  return /<p class="error" role="alert"[^>]*>([^<]*)<\/p>/.exec(response.text)?.[1] ?? ''
}

function secretsSection(page: Response): string {
  return /<section aria-labelledby="secrets-title">[\s\S]*?<\/section>/.exec(page.text)?.[0] ?? ''
}

async function setUp(t: Test) {
  const upstream = await startUpstream(t)
  const db = await databaseBackends()[0]!.open(t)
  const gw = await startTestGateway(t, {
    db,
    configure(raw) {
      raw.routes = [
        { name: 'vault', match: '/vault', upstream: upstream.url, user_secret: { header: 'X-Db-Credentials' } },
        { name: 'ops-vault', match: '/ops', upstream: upstream.url, permissions: ['app:write'], user_secret: { header: 'X-Ops-Key' } },
        { name: 'plain', match: '/plain', upstream: upstream.url },
      ]
    },
  })
  const alice = await signUp(gw, 'alice')
  const rows = async () => (await db.query('SELECT route FROM user_secrets WHERE user_id = $1', [alice.user.id])).rows
  return { gw, upstream, alice, rows }
}

t.test('the section lists the routes the user may keep a secret for, with a form each', async (t) => {
  const { gw, alice } = await setUp(t)
  const page = await gw.call('GET', '/auth/account', { headers: sessionCookie(gw, alice.token) })
  t.equal(page.status, 200)
  const section = secretsSection(page)
  t.match(section, /<code>vault<\/code>/, 'vault is listed')
  t.match(section, /sent as <code>X-Db-Credentials<\/code>/, 'with its header')
  t.match(section, /not set/, 'not set yet')
  t.notMatch(section, /ops-vault/, 'a route the user may not reach is not offered')
  t.notMatch(section, /<code>plain<\/code>/, 'a route without user_secret is not offered')
  t.match(section, /<form method="post" action="\/auth\/account\/secrets">/, 'a plain form')
  t.match(section, /name="value" type="password" autocomplete="off"/, 'the value is typed into a masked field')
  t.notMatch(page.text.replace(PASSKEY_SCRIPTS, ''), /<script/, 'no script needed (the passkey buttons aside)')
})

t.test('set, replace and remove through the forms; the page never shows a value', async (t) => {
  const { gw, upstream, alice, rows } = await setUp(t)
  const saved = await post(gw, '/auth/account/secrets', { route: 'vault', value: 'form-secret-one' }, browser(gw, alice.token))
  t.equal(saved.status, 303)
  t.equal(saved.headers.location, '/auth/account?done=secret_saved')
  await gw.call('GET', '/vault/x', { headers: bearer(alice.token) })
  t.equal(upstream.last().headers['x-db-credentials'], 'form-secret-one', 'the upstream gets it')

  const page = await gw.call('GET', '/auth/account?done=secret_saved', { headers: sessionCookie(gw, alice.token) })
  t.match(page.text, /The secret is saved/, 'confirmed')
  t.match(secretsSection(page), /Replace secret/, 'now offered for replacement')
  t.match(secretsSection(page), /action="\/auth\/account\/secrets\/remove"/, 'and removal')
  t.notOk(page.text.includes('form-secret-one'), 'the value is nowhere on the page')

  t.equal((await post(gw, '/auth/account/secrets', { route: 'vault', value: 'form-secret-two' }, browser(gw, alice.token))).status, 303, 'replaced')
  await gw.call('GET', '/vault/x', { headers: bearer(alice.token) })
  t.equal(upstream.last().headers['x-db-credentials'], 'form-secret-two')

  const removed = await post(gw, '/auth/account/secrets/remove', { route: 'vault' }, browser(gw, alice.token))
  t.equal(removed.headers.location, '/auth/account?done=secret_removed')
  t.same(await rows(), [], 'removed from the database')
  const again = await post(gw, '/auth/account/secrets/remove', { route: 'vault' }, browser(gw, alice.token))
  t.equal(again.status, 404)
  t.match(alertOf(again), /no secret for that route/)
})

t.test('bad input: the page again with the reason, nothing stored, the value not echoed', async (t) => {
  const { gw, alice, rows } = await setUp(t)
  const cases: Array<[Record<string, string>, number, RegExp]> = [
    [{ route: 'vault', value: '' }, 400, /must not be empty/],
    [{ route: 'vault', value: 'echo-me\u0001' }, 400, /printable ASCII/],
    [{ route: 'vault', value: `echo-me${'x'.repeat(4100)}` }, 400, /4096 bytes/],
    [{ route: 'plain', value: 'echo-me' }, 404, /takes no user secret/],
    [{ route: 'nope', value: 'echo-me' }, 404, /No route is named/],
    [{ route: 'ops-vault', value: 'echo-me' }, 403, /needs app:write/],
    [{ route: 'vault' }, 400, /incomplete/],
  ]
  for (const [fields, status, reason] of cases) {
    const answer = await post(gw, '/auth/account/secrets', fields, browser(gw, alice.token))
    t.equal(answer.status, status, `${JSON.stringify(fields).slice(0, 60)}: ${status}`)
    t.match(alertOf(answer), reason, 'says why')
    t.notOk(answer.text.includes('echo-me'), 'the value is not echoed')
  }
  const foreign = await post(gw, '/auth/account/secrets', { route: 'vault', value: 'x' }, { ...sessionCookie(gw, alice.token), origin: 'https://evil.example' })
  t.equal(foreign.status, 403, 'a post from another origin is refused')
  const noOrigin = await post(gw, '/auth/account/secrets', { route: 'vault', value: 'x' }, sessionCookie(gw, alice.token))
  t.equal(noOrigin.status, 403, 'and one without an Origin')
  t.same(await rows(), [], 'nothing stored')
  const signedOut = await post(gw, '/auth/account/secrets', { route: 'vault', value: 'x' }, { origin: PUBLIC_URL })
  t.equal(signedOut.status, 303, 'signed out: to the sign-in page')
  t.match(String(signedOut.headers.location), /^\/auth\/login/)
})
