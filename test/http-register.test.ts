/**
 * POST /auth/register through the real server: the user it answers, email normalisation
 * and odd Unicode, duplicates, the password policy and its length limits, closed
 * registration with an admin's session, and that a refusal writes nothing.
 */
import t, { type Test } from 'tap'
import { databaseBackends } from './helpers/backends.js'
import {
  assertError,
  bearer,
  browser,
  countRows,
  login,
  PASSWORD,
  register,
  sessionCookie,
  signUp,
  uniqueEmail,
  type RegisteredUser,
} from './helpers/auth-client.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Registers and expects a refusal that leaves no users or audit rows behind. */
async function expectRefused(
  t: Test,
  gw: TestGateway,
  body: Record<string, unknown>,
  status: number,
  code: string,
  what: string,
  headers: Record<string, string> = {},
) {
  const before = await countRows(gw)
  const response = await gw.call('POST', '/auth/register', { json: body, headers })
  assertError(t, response, status, code, what)
  t.same(await countRows(gw), before, `${what}: nothing written`)
  return response
}

t.test('POST /auth/register', async (t) => {
  const db = await databaseBackends()[0]!.open(t)
  const gw = await startTestGateway(t, { db })

  await t.test('201 with exactly the user fields, and one audit event', async (t) => {
    const before = await countRows(gw)
    const response = await gw.call('POST', '/auth/register', {
      json: { email: '  Ada.Lovelace+Gh@Example.COM ', password: PASSWORD, name: '  Ada  ' },
    })
    t.equal(response.status, 201, response.text)
    const user = response.json<RegisteredUser>()
    t.same(Object.keys(user).sort(), ['created_at', 'email', 'email_verified', 'id', 'name', 'roles'], 'no hash, no extra fields')
    t.match(user.id, UUID)
    t.equal(user.email, 'ada.lovelace+gh@example.com', 'trimmed and lowercased')
    t.equal(user.name, 'Ada', 'the name is trimmed')
    t.same(user.roles, ['viewer'], 'default_roles')
    t.ok(Math.abs(Date.parse(user.created_at) - Date.now()) < 60_000, 'created_at is now, ISO 8601')
    t.notMatch(response.text, /argon2|password/i, 'nothing about the password leaves')
    t.same(await countRows(gw), { users: before.users + 1, audit: before.audit + 1 })
    const stored = await db.query<{ password_hash: string }>('SELECT password_hash FROM users WHERE id = $1', [user.id])
    t.match(stored.rows[0]?.password_hash, /^\$argon2id\$/, 'stored as an argon2id hash')
  })

  await t.test('name is optional and may be null', async (t) => {
    const a = await register(gw, uniqueEmail('noname'))
    t.equal(a.name, null)
    const response = await gw.call('POST', '/auth/register', { json: { email: uniqueEmail('nullname'), password: PASSWORD, name: null } })
    t.equal(response.status, 201, response.text)
    t.equal(response.json().name, null)
  })

  await t.test('names with control or bidi characters, or too long, are refused', async (t) => {
    for (const [name, what] of [
      ['evil\u202Egnp.exe', 'RTL override'],
      ['line\nbreak', 'newline'],
      ['nul\u0000', 'NUL'],
      ['   ', 'only spaces'],
      ['x'.repeat(101), '101 characters'],
    ] as const) {
      await expectRefused(t, gw, { email: uniqueEmail('name'), password: PASSWORD, name }, 400, 'GH_VALIDATION', `name with ${what}`)
    }
  })

  await t.test('the same email in another case or with spaces is 409 GH_EMAIL_TAKEN', async (t) => {
    const email = uniqueEmail('taken')
    await register(gw, email)
    for (const variant of [email, email.toUpperCase(), `  ${email}  `, `\t${email}\n`, `\u00A0${email}`]) {
      await expectRefused(t, gw, { email: variant, password: PASSWORD }, 409, 'GH_EMAIL_TAKEN', `${JSON.stringify(variant)}`)
    }
    t.equal((await login(gw, email.toUpperCase())).user.email, email, 'and every variant logs in to the one account')
  })

  await t.test('an internationalised domain has one spelling (NFC, punycode)', async (t) => {
    const decomposed = 'idn@exa\u0301mple.com' // a + combining acute
    const composed = 'idn@ex\u00E1mple.com' // precomposed á
    const user = await register(gw, decomposed)
    t.equal(user.email, 'idn@xn--exmple-qta.com', 'stored in its ASCII form')
    await expectRefused(t, gw, { email: composed, password: PASSWORD }, 409, 'GH_EMAIL_TAKEN', 'the composed spelling')
    await expectRefused(t, gw, { email: 'IDN@EX\u00C1MPLE.COM', password: PASSWORD }, 409, 'GH_EMAIL_TAKEN', 'upper case')
    await expectRefused(t, gw, { email: 'idn@xn--exmple-qta.com', password: PASSWORD }, 409, 'GH_EMAIL_TAKEN', 'punycode')
  })

  await t.test('invisible, reordering and look-alike characters in emails are refused', async (t) => {
    const cases: [string, string][] = [
      ['zero-width space', 'zw\u200Bsp@example.com'],
      ['zero-width joiner', 'zw\u200Dj@example.com'],
      ['byte-order mark inside', 'bo\uFEFFm@example.com'],
      ['soft hyphen in the domain', 'soft@exa\u00ADmple.com'],
      ['RTL override', '\u202Eusr@example.com'],
      ['RTL isolate', 'usr\u2067@example.com'],
      ['NUL', 'nul\u0000@example.com'],
      ['a tab inside', 'ta\tb@example.com'],
      ['a space inside', 'sp ace@example.com'],
      ['emoji in the local part', 'smile\u{1F600}@example.com'],
      ['full-width @', 'wide\uFF20example.com'],
      ['full-width @ next to a real one', 'wi\uFF20de@example.com'],
      ['combining mark in the local part', 'e\u0301ric@example.com'],
      ['Cyrillic a in the local part', '\u0430dmin@example.com'],
      ['two @', 'a@b@example.com'],
      ['no @', 'example.com'],
      ['no domain dot', 'user@localhost'],
      ['an IP literal', 'user@[127.0.0.1]'],
      ['only spaces', '   '],
      ['empty', ''],
    ]
    for (const [what, email] of cases) {
      await expectRefused(t, gw, { email, password: PASSWORD }, 400, 'GH_VALIDATION', what)
    }
  })

  await t.test('very long emails are refused', async (t) => {
    const longLocal = `${'a'.repeat(65)}@example.com`
    const longTotal = `${'a'.repeat(60)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(10)}.com`
    t.ok(longTotal.length > 254)
    await expectRefused(t, gw, { email: longLocal, password: PASSWORD }, 400, 'GH_VALIDATION', '65-character local part')
    await expectRefused(t, gw, { email: longTotal, password: PASSWORD }, 400, 'GH_VALIDATION', `${longTotal.length}-character email`)
    await expectRefused(t, gw, { email: `${'a'.repeat(5000)}@example.com`, password: PASSWORD }, 400, 'GH_VALIDATION', '5000-character email')
    const max = `${'a'.repeat(64)}@example.com`
    t.equal((await register(gw, max)).email, max, 'a 64-character local part is fine')
  })

  await t.test('the password policy', async (t) => {
    const email = uniqueEmail('policy-owner-address')
    const refused = async (password: string, what: string, emailFor = uniqueEmail('policy')) => {
      const response = await expectRefused(t, gw, { email: emailFor, password }, 400, 'GH_VALIDATION', what)
      const body = response.json<{ field?: string; problems?: { field?: string }[] }>()
      const names = body.field === 'password' || (body.problems ?? []).some((p) => p.field === 'password')
      t.ok(names, `${what}: names the password`)
    }
    await refused('short password', 'too short (14)')
    await refused('', 'empty')
    // Common passwords of at least 15 characters from the zxcvbn list the policy uses.
    await refused('passwordpassword', 'common: passwordpassword')
    await refused('1qaz2wsx3edc4rfv', 'common: 1qaz2wsx3edc4rfv')
    await refused('PasswordPassword', 'common, in another case')
    await refused(email, 'equal to the email', email)
    await refused(email.toUpperCase(), 'equal to the email in upper case', email)
    await refused(email.slice(0, email.indexOf('@')), 'equal to the local part', email)
    await refused('x'.repeat(129), '129 characters')
    await refused('\u{1F511}'.repeat(129), '129 code points (emoji)')
    const started = performance.now()
    await refused('y'.repeat(10_000), '10 000 characters')
    t.ok(performance.now() - started < 1000, '10 000 characters are refused without hashing')

    // Not one repeated character: that is refused as a trivial pattern whatever its length.
    t.equal((await register(gw, uniqueEmail('p128'), PASSWORD.repeat(5).slice(0, 128))).roles.length, 1, '128 characters are fine')
    const emoji = uniqueEmail('emoji')
    const keys = Array.from({ length: 128 }, (_, i) => ['\u{1F511}', '\u{1F680}', '\u{1F30D}', '\u{1F355}', '\u{1F3B8}'][i % 5]).join('')
    await register(gw, emoji, keys)
    t.equal((await login(gw, emoji, keys)).user.email, emoji, '128 emoji (256 UTF-16 units) are 128 characters')
    const spaces = uniqueEmail('spaces')
    await register(gw, spaces, '  leading and trailing spaces  ')
    t.ok(await login(gw, spaces, '  leading and trailing spaces  '), 'passwords are not trimmed')
  })

  await t.test('an open registration counts towards the per-IP login limit only for non-admins (smoke)', async (t) => {
    const signedIn = await signUp(gw, 'registers-another')
    const response = await gw.call('POST', '/auth/register', {
      json: { email: uniqueEmail('by-user'), password: PASSWORD },
      headers: bearer(signedIn.token),
    })
    t.equal(response.status, 201, 'a signed-in user may register someone while registration is open')
    t.same(response.json().roles, ['viewer'])
  })

  await t.test('an invalid credential on register is a 401, not an anonymous registration', async (t) => {
    await expectRefused(t, gw, { email: uniqueEmail('badcred'), password: PASSWORD }, 401, 'GH_UNAUTHENTICATED', 'junk bearer', {
      authorization: 'Bearer nope',
    })
  })

  await t.test('closed registration', async (t) => {
    const closed = await startTestGateway(t, { db, configure: (raw) => (raw.auth.registration = 'closed') })
    const admin = await signUp(gw, 'admin')
    await gw.runtime.users.setRoles(admin.user.id, ['admin'])
    const viewer = await signUp(gw, 'viewer')
    const adminToken = (await login(closed, admin.user.email)).token
    const viewerToken = (await login(closed, viewer.user.email)).token

    await expectRefused(t, closed, { email: uniqueEmail('anon'), password: PASSWORD }, 403, 'GH_REGISTRATION_CLOSED', 'anonymous')
    await expectRefused(t, closed, { email: uniqueEmail('v'), password: PASSWORD }, 403, 'GH_REGISTRATION_CLOSED', 'a viewer', bearer(viewerToken))
    await expectRefused(t, closed, { email: uniqueEmail('v'), password: PASSWORD }, 403, 'GH_REGISTRATION_CLOSED', 'a viewer by cookie', browser(closed, viewerToken))
    // The closed answer does not leak which emails exist.
    await expectRefused(t, closed, { email: viewer.user.email, password: PASSWORD }, 403, 'GH_REGISTRATION_CLOSED', 'an existing email')

    const byBearer = await closed.call('POST', '/auth/register', {
      json: { email: uniqueEmail('made-by-admin'), password: PASSWORD, name: 'Made' },
      headers: bearer(adminToken),
    })
    t.equal(byBearer.status, 201, `an admin's bearer registers someone: ${byBearer.text}`)
    t.same(byBearer.json().roles, ['viewer'], 'with the default roles')
    const audit = await db.query<{ details: { actor_id?: string } }>(
      "SELECT details FROM audit_events WHERE type = 'user.registered' AND user_id = $1",
      [byBearer.json().id],
    )
    t.equal(audit.rows[0]?.details.actor_id, admin.user.id, 'the audit event names the admin')

    const byCookie = await closed.call('POST', '/auth/register', {
      json: { email: uniqueEmail('made-by-admin-cookie'), password: PASSWORD },
      headers: browser(closed, adminToken),
    })
    t.equal(byCookie.status, 201, `an admin's browser session from the gateway's origin: ${byCookie.text}`)
    await expectRefused(t, closed, { email: uniqueEmail('csrf'), password: PASSWORD }, 403, 'GH_CSRF', "an admin's cookie without Origin", sessionCookie(closed, adminToken))
    await expectRefused(t, closed, { email: uniqueEmail('csrf'), password: PASSWORD }, 403, 'GH_CSRF', "an admin's cookie from another origin", {
      ...sessionCookie(closed, adminToken),
      origin: 'https://evil.example',
    })
  })
})
