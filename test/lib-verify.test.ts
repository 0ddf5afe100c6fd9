import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { decodeJwt, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { AssertionSigner } from '../src/core/assertion-signer.js'
import { ManualClock } from '../src/core/clock.js'
import type { Identity } from '../src/core/identity.js'
import { identityHeaders } from '../src/core/identity-headers.js'
import { KeyRing, RETIRED_KEY_MARGIN_MS, rotateKeys } from '../src/core/identity-keys.js'
import { ensureDevCertificate } from '../src/dev-certificate.js'
import { createVerifier, VerificationError, type VerifierOptions } from '../src/verify.js'
import { ALICE_ID, testIdentity } from './helpers/fixtures.js'

const TTL = 60_000
const ISSUER = 'https://gatehouse.test'
const alice = ALICE_ID
const request = { audience: 'app', requestId: 'req-1', method: 'GET', uri: '/app/items?page=2' }

const identity = (overrides: Partial<Identity> = {}): Identity => testIdentity({ permissions: ['app:read'], ...overrides })

async function temporaryDirectory(t: Test): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-verify-'))
  t.teardown(() => rm(directory, { recursive: true, force: true }))
  return directory
}

/** Serves `body()` as the JWKS on 127.0.0.1; counts the requests it answered. */
async function jwksServer(t: Test, body: () => unknown, tls?: { cert: string; key: string }) {
  const state = { requests: 0, status: 200 }
  const handler = (_request: IncomingMessage, response: ServerResponse) => {
    state.requests++
    response.writeHead(state.status, { 'content-type': 'application/json' }).end(JSON.stringify(body()))
  }
  const server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections() }))
  const { port } = server.address() as AddressInfo
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/.well-known/jwks.json`, state }
}

async function harness(t: Test, { bindToRequest = true } = {}) {
  const file = path.join(await temporaryDirectory(t), 'identity-keys.json')
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000)
  const keys = await KeyRing.open(file, { clock, assertionTtlMs: TTL })
  const signer = new AssertionSigner({ keys, issuer: ISSUER, ttlMs: TTL, bindToRequest, clock })
  const jwks = await jwksServer(t, () => keys.publicJwks())
  const verifier = (options: Partial<VerifierOptions> = {}) =>
    createVerifier({ jwksUrl: jwks.url, issuer: ISSUER, audience: 'app', now: () => clock.now(), ...options })
  /** The headers the upstream receives for `identity` on `request`. */
  const headersFor = (who = identity(), on = request) => identityHeaders(who, signer.sign(who, on))
  return { file, clock, keys, signer, jwks, verifier, headersFor }
}

async function refusal(t: Test, promise: Promise<unknown>, code: string, what: string): Promise<void> {
  const error = await promise.then(() => null, (caught: unknown) => caught)
  t.ok(error instanceof VerificationError, `${what}: a VerificationError`)
  t.equal((error as VerificationError | null)?.code, code, what)
}

t.test('accepts a valid assertion and returns the identity', async (t) => {
  const { clock, verifier, headersFor } = await harness(t)
  const verify = verifier()
  const headers = headersFor()
  const iat = Math.floor(clock.now() / 1000)
  const { jti } = decodeJwt(headers['x-auth-assertion'] as string)
  const expected = { id: alice, email: 'alice@example.com', roles: ['viewer', 'operator'], method: 'session', amr: ['pwd'], requestId: 'req-1', assertionId: jti, issuedAt: iat, expiresAt: iat + 60 }
  t.same(await verify({ headers, method: 'GET', url: '/app/items?page=2' }), expected)
  t.same(await verify({ headers: new Headers(headers), method: 'GET', url: '/app/items?page=2' }), expected, 'a Headers object')
  t.same(await verify({ headers: { 'X-Auth-Assertion': headers['x-auth-assertion'] }, method: 'GET', url: 'http://upstream:9001/app/items?page=2' }), expected,
    'header names in any case; an absolute URL is reduced to path and query')
  t.same(await verify({ headers: { 'x-auth-assertion': headers['x-auth-assertion'] }, method: 'GET', url: '/app/items?page=2' }), expected,
    'the plain headers are optional')

  const foreignKeys = await KeyRing.open(path.join(await temporaryDirectory(t), 'other-keys.json'), { clock, assertionTtlMs: TTL })
  const foreign = new AssertionSigner({ keys: foreignKeys, issuer: ISSUER, ttlMs: TTL, bindToRequest: true, clock })
  const forged = identityHeaders(identity(), foreign.sign(identity(), request))
  await refusal(t, verify({ headers: forged, method: 'GET', url: '/app/items?page=2' }), 'invalid_signature', 'signed by a key the gateway does not publish')
})

t.test('identity headers: lower-case names, SPEC §4 values, refused when not visible ASCII', async (t) => {
  const assertion = 'a.b.c'
  t.same(identityHeaders(identity(), assertion), {
    'x-auth-user-id': alice,
    'x-auth-email': 'alice@example.com',
    'x-auth-roles': 'viewer,operator',
    'x-auth-method': 'session',
    'x-auth-assertion': assertion,
  })
  t.same(identityHeaders(identity({ method: 'pat', amr: ['pat'] }), assertion, 'tok_1')['x-auth-token-id'], 'tok_1')
  t.notOk('x-auth-token-id' in identityHeaders(identity(), assertion, 'tok_1'), 'only for a PAT')
  t.equal(identityHeaders({ ...identity(), user: { ...identity().user, roles: [] } }, assertion)['x-auth-roles'], '')
  const withUser = (user: Partial<Identity['user']>) => ({ ...identity(), user: { ...identity().user, ...user } })
  for (const [what, who, extra] of [
    ['CRLF in the email', withUser({ email: 'a@example.com\r\nx-auth-roles: admin' }), undefined],
    ['space in the email', withUser({ email: 'a b@example.com' }), undefined],
    ['non-ASCII in the email', withUser({ email: 'ä@example.com' }), undefined],
    ['a comma in a role', withUser({ roles: ['viewer,admin'] }), undefined],
    ['an empty role', withUser({ roles: [''] }), undefined],
    ['LF in the id', withUser({ id: 'a\nb' }), undefined],
    ['LF in the token id', { ...identity(), method: 'pat' as const, amr: ['pat'] as const }, 'tok\n'],
  ] as const) {
    t.throws(() => identityHeaders(who, assertion, extra), { code: 'GH_INTERNAL' }, what)
  }
})

t.test('a PAT identity carries its method and token id', async (t) => {
  const { verifier, headersFor, signer } = await harness(t)
  const pat = identity({ method: 'pat', amr: ['pat'] })
  const headers = identityHeaders(pat, signer.sign(pat, request), 'tok_123')
  t.equal(headers['x-auth-token-id'], 'tok_123')
  t.match(await verifier()({ headers, method: 'GET', url: '/app/items?page=2' }), { method: 'pat', amr: ['pat'], tokenId: 'tok_123' })
  const session = await verifier()({ headers: { ...headersFor(), 'x-auth-token-id': 'tok_123' }, method: 'GET', url: '/app/items?page=2' })
  t.notOk('tokenId' in session, 'no token id for a session')
})

t.test('unbound assertions need only the headers', async (t) => {
  const { verifier, headersFor } = await harness(t, { bindToRequest: false })
  const identityOut = await verifier()({ headers: headersFor() })
  t.notOk('requestId' in identityOut)
  t.notOk('assertionId' in identityOut)
  t.equal(identityOut.id, alice)
})

t.test('refusals carry stable codes', async (t) => {
  const { clock, verifier, headersFor } = await harness(t)
  const verify = verifier()
  const headers = headersFor()
  const good = { headers, method: 'GET', url: '/app/items?page=2' }
  const assertion = headers['x-auth-assertion'] ?? ''
  const [encodedHeader, encodedPayload, signature] = assertion.split('.')

  await refusal(t, verify({ ...good, headers: {} }), 'missing_assertion', 'no assertion')
  await refusal(t, verify({ ...good, headers: { 'x-auth-assertion': 'abc' } }), 'malformed', 'not a JWS')
  await refusal(t, verify({ ...good, headers: { 'x-auth-assertion': [assertion, assertion] } }), 'malformed', 'two assertions')
  await refusal(t, verifier({ audience: 'other' })(good), 'wrong_audience', 'another route')
  await refusal(t, verifier({ audience: ['other', 'more'] })(good), 'wrong_audience', 'other routes')
  t.equal((await verifier({ audience: ['other', 'app'] })(good)).id, alice, 'one of several audiences')
  await refusal(t, verifier({ issuer: 'https://evil.test' })(good), 'wrong_issuer', 'another gateway')

  const payload = JSON.parse(Buffer.from(encodedPayload ?? '', 'base64url').toString()) as Record<string, unknown>
  const tampered = Buffer.from(JSON.stringify({ ...payload, roles: ['admin'] })).toString('base64url')
  await refusal(t, verify({ ...good, headers: { 'x-auth-assertion': `${encodedHeader}.${tampered}.${signature}` } }), 'invalid_signature', 'tampered payload')
  const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${encodedPayload}.`
  await refusal(t, verify({ ...good, headers: { 'x-auth-assertion': unsigned } }), 'invalid_signature', 'alg none')

  await refusal(t, verify({ ...good, url: '/app/admin' }), 'request_mismatch', 'replayed on another path')
  await refusal(t, verify({ ...good, url: '/app/items?page=3' }), 'request_mismatch', 'another query')
  await refusal(t, verify({ ...good, method: 'POST' }), 'request_mismatch', 'another method')
  await t.rejects(verify({ headers }), TypeError, 'a bound assertion without method and url cannot be checked')

  await refusal(t, verify({ ...good, headers: { ...headers, 'x-auth-user-id': 'someone-else' } }), 'header_mismatch', 'user id')
  await refusal(t, verify({ ...good, headers: { ...headers, 'x-auth-email': 'mallory@example.com' } }), 'header_mismatch', 'email')
  await refusal(t, verify({ ...good, headers: { ...headers, 'x-auth-roles': 'viewer,operator,admin' } }), 'header_mismatch', 'roles')
  await refusal(t, verify({ ...good, headers: { ...headers, 'x-auth-method': 'pat' } }), 'header_mismatch', 'method')
  await refusal(t, verify({ ...good, headers: { ...headers, 'x-auth-user-id': [alice, 'x'] } }), 'header_mismatch', 'user id twice')

  clock.advance(TTL + 5000 - 1)
  t.ok(await verify(good), 'within the clock tolerance')
  clock.advance(1)
  await refusal(t, verify(good), 'expired', 'expired')
})

t.test('an unreachable or broken JWKS is jwks_unavailable', async (t) => {
  const { verifier, headersFor, jwks } = await harness(t)
  const good = { headers: headersFor(), method: 'GET', url: '/app/items?page=2' }
  jwks.state.status = 500
  await refusal(t, verifier()(good), 'jwks_unavailable', 'a 500')
  const closed = createHttpServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const { port } = closed.address() as AddressInfo
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  const error = await verifier({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` })(good).catch((caught: unknown) => caught)
  t.match(error, { code: 'jwks_unavailable', status: 503 })
})

t.test('invalid options are a TypeError', async (t) => {
  const base = { jwksUrl: 'https://gatehouse.test/.well-known/jwks.json', issuer: ISSUER, audience: 'app' }
  t.throws(() => createVerifier({ ...base, jwksUrl: 'not a url' }), TypeError)
  t.throws(() => createVerifier({ ...base, jwksUrl: 'file:///etc/passwd' }), TypeError)
  t.throws(() => createVerifier({ ...base, issuer: '' }), TypeError)
  t.throws(() => createVerifier({ ...base, audience: [] }), TypeError)
  t.throws(() => createVerifier({ ...base, ca: 'x', fetch: fetch }), TypeError)
})

t.test('rotation: the old key verifies while published, and not once pruned', async (t) => {
  const { file, clock, keys, signer, jwks, verifier } = await harness(t)
  const good = (token: string, on = request) => ({ headers: { 'x-auth-assertion': token }, method: on.method, url: on.uri })
  // One long-lived verifier with cooldownMs 0, so that an unknown kid refetches at once (the
  // default waits a second after a fetch), and its default 10-minute cache otherwise.
  const longLived = verifier({ cooldownMs: 0 })
  const oldKey = keys.current
  const beforeRotation = signer.sign(identity(), request)
  await longLived(good(beforeRotation))
  t.equal(jwks.state.requests, 1)

  await rotateKeys(file, { clock, assertionTtlMs: TTL })
  await keys.reload()
  const afterRotation = signer.sign(identity(), request)
  t.not(afterRotation.split('.')[0], beforeRotation.split('.')[0], 'another kid')
  await longLived(good(afterRotation))
  t.equal(jwks.state.requests, 2, 'the unknown kid made the verifier fetch the JWKS again')
  await longLived(good(beforeRotation))
  t.equal((await verifier()(good(beforeRotation))).id, alice, 'a fresh verifier sees the old key published too')

  // A token made with the retired key after its window (as if the key had leaked).
  const forgeWithOldKey = () => {
    const iat = Math.floor(clock.now() / 1000)
    return new SignJWT({ email: 'alice@example.com', roles: ['admin'], amr: ['pwd'], jti: 'x', htm: 'GET', htu: request.uri })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: oldKey.kid })
      .setIssuer(ISSUER).setAudience('app').setSubject(alice).setIssuedAt(iat).setExpirationTime(iat + 60)
      .sign(oldKey.privateKey)
  }
  clock.advance(TTL + RETIRED_KEY_MARGIN_MS - 1000)
  t.ok(await verifier()(good(await forgeWithOldKey())), 'still published just before the window ends')
  await refusal(t, verifier()(good(beforeRotation)), 'expired', 'its real assertions have all expired by then')
  clock.advance(1000)
  t.same(keys.publicJwks().keys.map((key) => key.kid), [keys.current.kid], 'pruned from the JWKS')
  await refusal(t, verifier()(good(await forgeWithOldKey())), 'invalid_signature', 'a fresh verifier refuses the pruned key')
  await refusal(t, verifier({ cacheMaxAgeMs: 0 })(good(await forgeWithOldKey())), 'invalid_signature', 'cacheMaxAgeMs 0 refetches every time')
  t.ok(await longLived(good(signer.sign(identity(), request))), 'the current key still verifies')
})

t.test('ca: verifies against a gateway with a self-signed development certificate', async (t) => {
  const directory = await temporaryDirectory(t)
  const certFile = path.join(directory, 'tls.crt')
  const keyFile = path.join(directory, 'tls.key')
  await ensureDevCertificate(certFile, keyFile)
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')])
  const { keys, headersFor, clock } = await harness(t)
  const tls = await jwksServer(t, () => keys.publicJwks(), { cert, key })
  const good = { headers: headersFor(), method: 'GET', url: '/app/items?page=2' }
  const options = { jwksUrl: tls.url, issuer: ISSUER, audience: 'app', now: () => clock.now() }
  t.equal((await createVerifier({ ...options, ca: cert })(good)).id, alice)
  await refusal(t, createVerifier(options)(good), 'jwks_unavailable', 'not trusted without ca')
})
