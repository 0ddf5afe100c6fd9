/**
 * User secrets (SPEC §5, issue 17 item 6) through a real gateway on a real TLS port, with real
 * node:http upstreams and a real database: a secret reaches only its own route's upstream and
 * only for its owner (session or PAT); a client-sent header of that name never reaches any
 * upstream; the database holds no secret in clear and a row moved to another user does not
 * open; bad input leaves nothing stored; a data key rotation keeps old secrets working while new
 * writes use the new key; a changed upstream makes a secret dormant; forward auth never hands a
 * secret to the proxy in front; the logs never hold a value.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { rotateDataKeys } from '../src/core/data-keys.js'
import type { Database } from '../src/storage/database.js'
import { assertCode } from './helpers/assert-code.js'
import { bearer, browser, sessionCookie, signUp, type LoggedIn } from './helpers/auth-client.js'
import { databaseBackends, sessionStoreBackends } from './helpers/backends.js'
import { startTestGateway, testCertificate, type RawConfig, type TestGateway } from './helpers/gateway.js'
import { openSocket, startEchoUpstream } from './helpers/websocket.js'
import { startUpstream, type ReceivedRequest, type RecordingUpstream } from './helpers/upstream.js'

const HEADER = 'X-Db-Credentials'

/** Every value the upstream received under a name reading as `name` (any case, `_` as `-`). */
function received(request: ReceivedRequest, name: string): string[] {
  const canonical = (text: string) => text.toLowerCase().replaceAll('_', '-')
  const values: string[] = []
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    if (canonical(request.rawHeaders[i]!) === canonical(name)) values.push(request.rawHeaders[i + 1]!)
  }
  return values
}

interface Setup {
  vault: RecordingUpstream
  other: RecordingUpstream
  configure(raw: RawConfig): void
}

/** `vault` takes a secret; `other`, `side` and the public `open` (the last two on the vault's own upstream) do not. */
async function setup(t: Test, extra: (raw: RawConfig) => void = () => {}): Promise<Setup> {
  const vault = await startUpstream(t)
  const other = await startUpstream(t)
  return {
    vault,
    other,
    configure(raw) {
      raw.forward_auth = { trusted: ['127.0.0.1/32'], headers: 'forwarded' }
      raw.routes = [
        { name: 'vault', match: '/vault', upstream: vault.url, permissions: ['app:read'], user_secret: { header: HEADER } },
        { name: 'other', match: '/other', upstream: other.url },
        { name: 'open', match: '/open', upstream: vault.url, auth: 'public' },
        { name: 'side', match: '/side', upstream: vault.url },
        { name: 'admin-vault', match: '/admin-vault', upstream: vault.url, permissions: ['app:write'], user_secret: { header: 'X-Admin-Key' } },
      ]
      extra(raw)
    },
  }
}

/** What `upstream` received for one GET, which must have been proxied. */
async function through(t: Test, gw: TestGateway, upstream: RecordingUpstream, target: string, headers: Record<string, string | string[]>) {
  const before = upstream.received.length
  const response = await gw.call('GET', target, { headers })
  t.equal(response.status, 200, `GET ${target} proxied`, { body: response.text.slice(0, 300) })
  t.equal(upstream.received.length, before + 1, `GET ${target} reached its upstream once`)
  return upstream.last()
}

async function putSecret(gw: TestGateway, who: LoggedIn, route: string, value: unknown) {
  return gw.call('PUT', `/auth/me/secrets/${route}`, { json: { value }, headers: bearer(who.token) })
}

async function createPat(t: Test, gw: TestGateway, who: LoggedIn): Promise<string> {
  const created = await gw.call('POST', '/auth/tokens', { json: { name: 'secrets test' }, headers: bearer(who.token) })
  t.equal(created.status, 201, 'PAT created')
  return created.json<{ token: string }>().token
}

async function secretRows(db: Database) {
  return (await db.query<Record<string, unknown>>('SELECT * FROM user_secrets ORDER BY route')).rows
}

t.test('a secret reaches only its own route\'s upstream, and only for its owner', async (t) => {
  const { vault, other, configure } = await setup(t)
  const gw = await startTestGateway(t, { configure })
  const alice = await signUp(gw, 'alice')
  const bob = await signUp(gw, 'bob')
  const carol = await signUp(gw, 'carol')
  t.equal((await putSecret(gw, alice, 'vault', 'user=alice;password=alpha-1')).status, 204, 'alice stores hers')
  t.equal((await putSecret(gw, bob, 'vault', 'user=bob;password=bravo-2')).status, 204, 'bob stores his')
  const alicePat = await createPat(t, gw, alice)

  t.same(received(await through(t, gw, vault, '/vault/a', bearer(alice.token)), HEADER), ['user=alice;password=alpha-1'], 'alice\'s session: hers')
  t.same(received(await through(t, gw, vault, '/vault/a', sessionCookie(gw, alice.token)), HEADER), ['user=alice;password=alpha-1'], 'alice\'s cookie: hers')
  t.same(received(await through(t, gw, vault, '/vault/a', bearer(alicePat)), HEADER), ['user=alice;password=alpha-1'], 'alice\'s PAT: hers')
  t.same(received(await through(t, gw, vault, '/vault/b', bearer(bob.token)), HEADER), ['user=bob;password=bravo-2'], 'bob: his own, never alice\'s')
  t.same(received(await through(t, gw, vault, '/vault/c', bearer(carol.token)), HEADER), [], 'carol has none: none')

  t.same(received(await through(t, gw, other, '/other/x', bearer(alice.token)), HEADER), [], 'another route\'s upstream never gets it')
  t.same(received(await through(t, gw, vault, '/open/x', bearer(alice.token)), HEADER), [], 'a public route on the same upstream never gets it')
  t.same(received(await through(t, gw, vault, '/side/x', bearer(alice.token)), HEADER), [], 'nor another authenticated route on the same upstream')

  await t.test('a client-sent header of that name is always stripped, in any spelling', async (t) => {
    const spellings = ['X-Db-Credentials', 'x-db-credentials', 'X_DB_CREDENTIALS', 'x-db_credentials']
    for (const spelling of spellings) {
      const forged = { [spelling]: 'forged' }
      t.same(received(await through(t, gw, vault, '/vault/s', { ...bearer(alice.token), ...forged }), HEADER), ['user=alice;password=alpha-1'],
        `${spelling} from alice: only her stored one`)
      t.same(received(await through(t, gw, vault, '/vault/s', { ...bearer(carol.token), ...forged }), HEADER), [],
        `${spelling} from a user without a secret: nothing`)
      t.same(received(await through(t, gw, other, '/other/s', { ...bearer(alice.token), ...forged }), HEADER), [],
        `${spelling} to a route without user_secret: stripped too`)
      t.same(received(await through(t, gw, vault, '/open/s', forged), HEADER), [], `${spelling} on a public route: stripped too`)
    }
    const twice = await through(t, gw, vault, '/vault/s', { ...bearer(carol.token), [HEADER]: ['one', 'two'] })
    t.same(received(twice, HEADER), [], 'sent twice: both stripped')
  })

  await t.test('a route whose permissions the user lacks: no secret may be stored for it', async (t) => {
    assertCode(t, await putSecret(gw, alice, 'admin-vault', 'x'), 403, 'GH_FORBIDDEN')
  })

  await t.test('replacing and removing take effect on the next request', async (t) => {
    t.equal((await putSecret(gw, alice, 'vault', 'user=alice;password=alpha-2')).status, 204)
    t.same(received(await through(t, gw, vault, '/vault/a', bearer(alice.token)), HEADER), ['user=alice;password=alpha-2'], 'the new value at once')
    t.equal((await gw.call('DELETE', '/auth/me/secrets/vault', { headers: bearer(alice.token) })).status, 204, 'removed: 204')
    t.same(received(await through(t, gw, vault, '/vault/a', bearer(alice.token)), HEADER), [], 'removed: no longer sent')
    assertCode(t, await gw.call('DELETE', '/auth/me/secrets/vault', { headers: bearer(alice.token) }), 404, 'GH_NOT_FOUND', 'removing it again')
    t.same(received(await through(t, gw, vault, '/vault/b', bearer(bob.token)), HEADER), ['user=bob;password=bravo-2'], 'bob\'s is untouched')
  })

  await t.test('forward auth never hands a secret to the proxy in front (SPEC §4b lists identity headers only)', async (t) => {
    const answer = await gw.call('GET', '/auth/verify', {
      headers: { 'x-forwarded-method': 'GET', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'gatehouse.test', 'x-forwarded-uri': '/vault/a', ...bearer(bob.token) },
    })
    t.equal(answer.status, 200, 'allowed')
    t.equal(answer.headers['x-auth-user-id'], bob.user.id, 'with the identity headers')
    t.notOk(Object.keys(answer.headers).some((name) => name.toLowerCase() === 'x-db-credentials'), 'no secret header')
    t.notOk(Object.values(answer.headers).some((value) => String(value).includes('bravo-2')), 'the value nowhere')
  })

  await t.test('GET /auth/me/secrets lists names and times, never values', async (t) => {
    const list = await gw.call('GET', '/auth/me/secrets', { headers: bearer(bob.token) })
    t.equal(list.status, 200)
    const body = list.json<{ items: Array<Record<string, unknown>>; next_cursor: null }>()
    t.match(body, { items: [{ route: 'vault', header: HEADER, state: 'active', created_at: String, updated_at: String }], next_cursor: null })
    t.notOk(list.text.includes('bravo-2'), 'no value in the list')
    t.same((await gw.call('GET', '/auth/me/secrets', { headers: bearer(carol.token) })).json(), { items: [], next_cursor: null }, 'carol: none')
  })
})

t.test('the database holds no secret in clear, and a row moved to another user or route does not open there', async (t) => {
  const { vault, configure } = await setup(t, (raw) => {
    raw.routes.push({ name: 'vault2', match: '/vault2', upstream: raw.routes[0].upstream, user_secret: { header: HEADER } })
  })
  const db = await databaseBackends()[0]!.open(t)
  const gw = await startTestGateway(t, { configure, db })
  const alice = await signUp(gw, 'alice')
  const bob = await signUp(gw, 'bob')
  t.equal((await putSecret(gw, alice, 'vault', 'alice-plaintext-marker')).status, 204)
  t.equal((await putSecret(gw, bob, 'vault', 'bob-plaintext-marker')).status, 204)

  const rows = await secretRows(db)
  t.equal(rows.length, 2, 'one row per secret')
  const everything = JSON.stringify(rows) + JSON.stringify((await db.query('SELECT * FROM audit_events')).rows)
  t.notOk(everything.includes('plaintext-marker'), 'no value in user_secrets nor in the audit trail')
  t.notOk(everything.includes(Buffer.from('alice-plaintext-marker').toString('base64')), 'nor base64-encoded')
  for (const row of rows) {
    t.match(row.ciphertext, /^gh1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'a sealed value')
    t.equal(row.key_id, String(row.ciphertext).split('.')[1], 'key_id names the key that sealed it')
  }
  const audit = (await db.query<{ type: string; details: Record<string, unknown> }>(
    "SELECT type, details FROM audit_events WHERE type LIKE 'user_secret.%' ORDER BY id",
  )).rows
  t.same(audit.map((event) => [event.type, event.details.route]), [['user_secret.set', 'vault'], ['user_secret.set', 'vault']], 'audited by route')

  // Bob's row gets Alice's ciphertext (someone with write access to the table): it must not open.
  await db.query(
    `UPDATE user_secrets SET ciphertext = (SELECT ciphertext FROM user_secrets WHERE user_id = $1)
      WHERE user_id = $2`,
    [alice.user.id, bob.user.id],
  )
  await gw.runtime.invalidation.publish({ kind: 'user', userId: bob.user.id })
  t.same(received(await through(t, gw, vault, '/vault/x', bearer(bob.token)), HEADER), [], 'alice\'s ciphertext under bob: not injected')
  t.same(received(await through(t, gw, vault, '/vault/x', bearer(alice.token)), HEADER), ['alice-plaintext-marker'], 'alice still gets hers')

  // Alice's row moved to another route taking a secret: it must not open there either.
  await db.query("UPDATE user_secrets SET route = 'vault2' WHERE user_id = $1", [alice.user.id])
  await gw.runtime.invalidation.publish({ kind: 'user', userId: alice.user.id })
  t.same(received(await through(t, gw, vault, '/vault2/x', bearer(alice.token)), HEADER), [], 'moved to vault2: not injected')
})

t.test('bad input is refused with a clear error and leaves nothing stored', async (t) => {
  const { configure } = await setup(t)
  const db = await databaseBackends()[0]!.open(t)
  const gw = await startTestGateway(t, { configure, db })
  const alice = await signUp(gw, 'alice')
  const pat = await createPat(t, gw, alice)

  const refusals: Array<[string, () => ReturnType<typeof putSecret>, number, string]> = [
    ['a number', () => putSecret(gw, alice, 'vault', 12345), 400, 'GH_VALIDATION'],
    ['null', () => putSecret(gw, alice, 'vault', null), 400, 'GH_VALIDATION'],
    ['an object', () => putSecret(gw, alice, 'vault', { nested: 'x' }), 400, 'GH_VALIDATION'],
    ['no value', () => gw.call('PUT', '/auth/me/secrets/vault', { json: {}, headers: bearer(alice.token) }), 400, 'GH_VALIDATION'],
    ['an extra field', () => gw.call('PUT', '/auth/me/secrets/vault', { json: { value: 'x', other: 1 }, headers: bearer(alice.token) }), 400, 'GH_VALIDATION'],
    ['empty', () => putSecret(gw, alice, 'vault', ''), 400, 'GH_VALIDATION'],
    ['4097 bytes', () => putSecret(gw, alice, 'vault', 'x'.repeat(4097)), 400, 'GH_VALIDATION'],
    ['a line feed', () => putSecret(gw, alice, 'vault', 'a\r\nX-Injected: 1'), 400, 'GH_VALIDATION'],
    ['a NUL', () => putSecret(gw, alice, 'vault', 'a\u0000b'), 400, 'GH_VALIDATION'],
    ['DEL', () => putSecret(gw, alice, 'vault', 'a\u007fb'), 400, 'GH_VALIDATION'],
    ['non-ASCII', () => putSecret(gw, alice, 'vault', 'pässword'), 400, 'GH_VALIDATION'],
    ['a leading space', () => putSecret(gw, alice, 'vault', ' secret'), 400, 'GH_VALIDATION'],
    ['an unknown route', () => putSecret(gw, alice, 'nope', 'x'), 404, 'GH_NOT_FOUND'],
    ['a route without user_secret', () => putSecret(gw, alice, 'other', 'x'), 404, 'GH_NOT_FOUND'],
    ['a PAT (SPEC §3: never changes its user\'s secrets)', () => gw.call('PUT', '/auth/me/secrets/vault', { json: { value: 'x' }, headers: bearer(pat) }), 403, 'GH_FORBIDDEN'],
    ['no credential', () => gw.call('PUT', '/auth/me/secrets/vault', { json: { value: 'x' } }), 401, 'GH_UNAUTHENTICATED'],
    ['the cookie without an Origin (CSRF)', () => gw.call('PUT', '/auth/me/secrets/vault', { json: { value: 'x' }, headers: sessionCookie(gw, alice.token) }), 403, 'GH_CSRF'],
    ['the cookie from another origin', () => gw.call('PUT', '/auth/me/secrets/vault', { json: { value: 'x' }, headers: { ...sessionCookie(gw, alice.token), origin: 'https://evil.example' } }), 403, 'GH_CSRF'],
  ]
  for (const [what, send, status, code] of refusals) {
    const body = assertCode(t, await send(), status, code, what)
    t.notOk(JSON.stringify(body).includes('X-Injected'), `${what}: the value is not echoed`)
  }
  const tooLong = (await putSecret(gw, alice, 'vault', 'x'.repeat(4097))).json<{ message: string; details?: { reason?: string } }>()
  t.match(tooLong.message, /4096 bytes/, 'too long: says the limit')
  t.same(await secretRows(db), [], 'nothing stored')
  t.equal((await db.query("SELECT 1 FROM audit_events WHERE type LIKE 'user_secret.%'")).rowCount, 0, 'nothing audited')

  t.equal((await putSecret(gw, alice, 'vault', 'x'.repeat(4096))).status, 204, 'exactly 4096 bytes is accepted')
  t.equal((await gw.call('PUT', '/auth/me/secrets/vault', { json: { value: 'tab\tand space' }, headers: browser(gw, alice.token) })).status, 204,
    'the cookie from the gateway\'s own origin, with a tab and spaces inside')
  assertCode(t, await gw.call('GET', '/auth/me/secrets', { headers: bearer(pat) }), 403, 'GH_FORBIDDEN', 'a PAT does not list secrets either')
})

t.test('after a data key rotation old secrets still open, are re-sealed on read, and new ones use the new key', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-secret-keys-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const keyFile = path.join(dir, 'data-keys.json')
  const { vault, configure } = await setup(t, (raw) => {
    raw.identity.data_key_file = keyFile
  })
  const db = await databaseBackends()[0]!.open(t)
  // Shared by both gateways: the sessions outlive the restart.
  const store = await sessionStoreBackends()[0]!.open(t)

  const before = await startTestGateway(t, { configure, db, store })
  const alice = await signUp(before, 'alice')
  const bob = await signUp(before, 'bob')
  t.equal((await putSecret(before, alice, 'vault', 'sealed-with-the-old-key')).status, 204)
  const oldKid = before.runtime.dataKeys.currentKid
  t.same((await secretRows(db)).map((row) => row.key_id), [oldKid], 'sealed with the first key')
  await before.close()

  const rotated = await rotateDataKeys(keyFile)
  t.same(rotated.retained, [oldKid], 'the old key stays in the file')
  // A restart, as a SIGHUP reload does, reads the key file again.
  const after = await startTestGateway(t, { configure, db, store })
  t.equal(after.runtime.dataKeys.currentKid, rotated.kid, 'the new key is current')
  t.same(received(await through(t, after, vault, '/vault/x', bearer(alice.token)), HEADER), ['sealed-with-the-old-key'], 'the old secret still opens')
  t.same((await secretRows(db)).map((row) => [row.key_id, String(row.ciphertext).split('.')[1]]), [[rotated.kid, rotated.kid]],
    're-sealed under the new key on that read')
  t.equal((await putSecret(after, bob, 'vault', 'sealed-with-the-new-key')).status, 204)
  const bobRow = (await db.query<{ key_id: string }>('SELECT key_id FROM user_secrets WHERE user_id = $1', [bob.user.id])).rows[0]
  t.equal(bobRow?.key_id, rotated.kid, 'a new write uses the new key')
  await after.runtime.invalidation.publish({ kind: 'user', userId: alice.user.id })
  t.same(received(await through(t, after, vault, '/vault/x', bearer(alice.token)), HEADER), ['sealed-with-the-old-key'], 're-sealed: still the same value')
  t.same(received(await through(t, after, vault, '/vault/x', bearer(bob.token)), HEADER), ['sealed-with-the-new-key'])
  t.notOk((await readFile(keyFile, 'utf8')).includes('sealed-with'), 'the key file holds keys only')
})

t.test('a changed upstream makes a secret dormant until it is set again', async (t) => {
  const { vault, configure } = await setup(t)
  const moved = await startUpstream(t)
  const db = await databaseBackends()[0]!.open(t)
  const store = await sessionStoreBackends()[0]!.open(t)
  const first = await startTestGateway(t, { configure, db, store })
  const alice = await signUp(first, 'alice')
  t.equal((await putSecret(first, alice, 'vault', 'for-the-first-upstream')).status, 204)
  t.same(received(await through(t, first, vault, '/vault/x', bearer(alice.token)), HEADER), ['for-the-first-upstream'])
  await first.close()

  const second = await startTestGateway(t, {
    db,
    store,
    configure(raw) {
      configure(raw)
      raw.routes[0].upstream = moved.url
    },
  })
  t.same(received(await through(t, second, moved, '/vault/x', bearer(alice.token)), HEADER), [], 'the new upstream does not get it')
  t.match((await second.call('GET', '/auth/me/secrets', { headers: bearer(alice.token) })).json(), { items: [{ route: 'vault', state: 'dormant' }] },
    'listed as dormant')
  t.equal((await putSecret(second, alice, 'vault', 'for-the-new-upstream')).status, 204, 'set again')
  t.same(received(await through(t, second, moved, '/vault/x', bearer(alice.token)), HEADER), ['for-the-new-upstream'], 'now sent')
})

t.test('a WebSocket handshake carries its owner\'s secret to its own route only, and never a client\'s', async (t) => {
  const echo = await startEchoUpstream(t)
  const gw = await startTestGateway(t, {
    configure(raw) {
      raw.routes = [
        { name: 'live', match: '/live', upstream: echo.url, websocket: true, user_secret: { header: HEADER } },
        { name: 'feed', match: '/feed', upstream: echo.url, websocket: true },
      ]
    },
  })
  const alice = await signUp(gw, 'alice')
  const carol = await signUp(gw, 'carol')
  t.equal((await putSecret(gw, alice, 'live', 'ws-secret')).status, 204)
  const ca = (await testCertificate()).cert
  const open = async (path: string, who: LoggedIn) => {
    const socket = await openSocket(gw.url, path, { headers: { ...bearer(who.token), [HEADER]: 'forged' }, ca })
    socket.terminate()
    return echo.handshakes.at(-1)!.headers['x-db-credentials']
  }
  t.equal(await open('/live/a', alice), 'ws-secret', 'alice\'s handshake: hers, not the forged one')
  t.equal(await open('/live/a', carol), undefined, 'carol\'s: none, not the forged one')
  t.equal(await open('/feed/a', alice), undefined, 'another route on the same upstream: none')
})

t.test('the logs never hold a secret value', async (t) => {
  const { vault, configure } = await setup(t, (raw) => {
    raw.logging = { level: 'trace' }
  })
  let text = ''
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8')
      done()
    },
  })
  const gw = await startTestGateway(t, { configure, logStream })
  const alice = await signUp(gw, 'alice')
  t.equal((await putSecret(gw, alice, 'vault', 'never-log-this-value')).status, 204)
  assertCode(t, await putSecret(gw, alice, 'vault', 'never-log-this-value\n'), 400, 'GH_VALIDATION')
  assertCode(t, await putSecret(gw, alice, 'other', 'never-log-this-value'), 404, 'GH_NOT_FOUND')
  await through(t, gw, vault, '/vault/x', bearer(alice.token))
  await through(t, gw, vault, '/vault/x', { ...bearer(alice.token), [HEADER]: 'never-log-this-forged-one' })
  t.ok(text.includes('/auth/me/secrets/vault'), 'the requests were logged')
  t.notOk(text.includes('never-log-this'), 'no value in any line')
})
