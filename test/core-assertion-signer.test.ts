import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose'
import t, { type Test } from 'tap'
import { AssertionSigner } from '../src/core/assertion-signer.js'
import { ManualClock } from '../src/core/clock.js'
import { libsodiumEd25519, nodeEd25519, type Ed25519 } from '../src/core/ed25519.js'
import type { Identity } from '../src/core/identity.js'
import { KeyRing, rotateKeys } from '../src/core/identity-keys.js'
import { ALICE_ID, testIdentity } from './helpers/fixtures.js'

const TTL = 60_000
const ISSUER = 'https://gatehouse.test'
const alice = ALICE_ID

const identity = testIdentity

const request = { audience: 'app', requestId: 'req-1', method: 'GET', uri: '/app/items?page=2' }

async function harness(t: Test, bindToRequest: boolean, cacheSize?: number, ed25519?: Ed25519) {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-signer-'))
  t.teardown(() => rm(directory, { recursive: true, force: true }))
  const file = path.join(directory, 'identity-keys.json')
  const clock = new ManualClock()
  const keys = await KeyRing.open(file, { clock, assertionTtlMs: TTL })
  const signer = new AssertionSigner({
    keys, issuer: ISSUER, ttlMs: TTL, bindToRequest, clock, ...(cacheSize === undefined ? {} : { cacheSize }), ...(ed25519 ? { ed25519 } : {}),
  })
  const verify = (token: string, audience = 'app') =>
    jwtVerify(token, createLocalJWKSet(keys.publicJwks()), {
      algorithms: ['EdDSA'], issuer: ISSUER, audience, typ: 'JWT', currentDate: new Date(clock.now()),
    })
  return { file, clock, keys, signer, verify }
}

t.test('a bound assertion carries exactly the claims of SPEC §4 and jose verifies it', async (t) => {
  const { clock, keys, signer, verify } = await harness(t, true)
  clock.advance(1234)
  const token = signer.sign(identity(), request)
  t.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/)
  t.same(decodeProtectedHeader(token), { alg: 'EdDSA', typ: 'JWT', kid: keys.current.kid })
  const iat = Math.floor(clock.now() / 1000)
  const expected = {
    iss: ISSUER, aud: 'app', sub: alice, email: 'alice@example.com', roles: ['viewer', 'operator'], amr: ['pwd'],
    iat, exp: iat + 60, jti: String, rid: 'req-1', htm: 'GET', htu: '/app/items?page=2',
  }
  t.match(decodeJwt(token), expected)
  t.same(Object.keys(decodeJwt(token)).sort(), Object.keys(expected).sort(), 'no other claims')
  const { payload, protectedHeader } = await verify(token)
  t.match(payload, expected)
  t.same(protectedHeader, { alg: 'EdDSA', typ: 'JWT', kid: keys.current.kid })

  const other = signer.sign(identity(), { ...request, requestId: 'req-2' })
  t.not(other, token, 'each request gets its own assertion')
  t.equal(decodeJwt(other).rid, 'req-2')

  // SPEC §4: jti is a fresh random id, never the client-chosen X-Request-Id.
  const jtis = new Set([token, other, signer.sign(identity(), request), signer.sign(identity(), request)].map((x) => decodeJwt(x).jti))
  t.equal(jtis.size, 4, 'every assertion has its own jti, the same request id included')
  for (const jti of jtis) t.match(jti, /^[0-9a-f-]{36}$/, 'a random UUID, not the request id')

  t.same(decodeJwt(signer.sign(identity({ method: 'pat', amr: ['pat'] }), request)).amr, ['pat'])
  t.same(decodeJwt(signer.sign(identity({ amr: ['oidc'] }), request)).amr, ['oidc'])
  t.same(decodeJwt(signer.sign(identity({}, { roles: [] }), request)).roles, [])
  const withoutEmail = decodeJwt(signer.sign(identity({}, { email: '' }), request))
  t.notOk('email' in withoutEmail, 'a user without an email address gets no email claim')
  t.same(Object.keys(withoutEmail), ['iss', 'aud', 'sub', 'roles', 'amr', 'iat', 'exp', 'jti', 'rid', 'htm', 'htu'], 'the claims in their order')
  const unusual = identity({}, { id: 'id-"\\\u2028', email: 'o\'brien+x@example.com' })
  t.same((await verify(signer.sign(unusual, { ...request, uri: '/app/"quoted"?q=%22&x=é' }))).payload.htu, '/app/"quoted"?q=%22&x=é',
    'JSON escaping is left to JSON.stringify')
})

t.test('an assertion expires after the ttl on the clock', async (t) => {
  const { clock, signer, verify } = await harness(t, true)
  const token = signer.sign(identity(), request)
  clock.advance(TTL - 1)
  await verify(token)
  clock.advance(1)
  await t.rejects(verify(token), errors.JWTExpired)
})

t.test('unbound: no jti/htm/htu, one assertion reused for half its ttl', async (t) => {
  const { clock, signer, verify } = await harness(t, false)
  const first = signer.sign(identity(), request)
  const iat = Math.floor(clock.now() / 1000)
  t.same(decodeJwt(first), { iss: ISSUER, aud: 'app', sub: alice, email: 'alice@example.com', roles: ['viewer', 'operator'], amr: ['pwd'], iat, exp: iat + 60 })
  await verify(first)

  clock.advance(TTL / 2 - 1)
  t.equal(signer.sign(identity(), { ...request, requestId: 'other', method: 'POST', uri: '/app/x' }), first, 'reused for another request')
  t.not(signer.sign(identity(), { ...request, audience: 'admin' }), first, 'not for another audience')
  t.not(signer.sign(identity({}, { roles: ['viewer'] }), request), first, 'not once the roles changed')
  t.not(signer.sign(identity({}, { email: 'alice2@example.com' }), request), first, 'not once the email changed')
  t.not(signer.sign(identity({ method: 'pat', amr: ['pat'] }), request), first, 'not for another amr')
  t.not(signer.sign(identity({}, { id: 'someone-else' }), request), first, 'not for another user')
  t.equal(signer.sign(identity(), request), first)
  await verify(signer.sign(identity(), { ...request, audience: 'admin' }), 'admin')

  clock.advance(1)
  const second = signer.sign(identity(), request)
  t.not(second, first, 'signed again once half the ttl has passed')
  t.equal(decodeJwt(second).iat, iat + 30)
  t.equal(signer.sign(identity(), request), second)
})

t.test('unbound cache is bounded: the oldest entry is dropped first', async (t) => {
  const { clock, signer } = await harness(t, false, 2)
  const users = ['u1', 'u2', 'u3'].map((id) => identity({}, { id }))
  const [one, two, three] = users.map((user) => signer.sign(user, request))
  clock.advance(1000)
  t.equal(signer.sign(users[2] as Identity, request), three)
  t.equal(signer.sign(users[1] as Identity, request), two)
  t.not(signer.sign(users[0] as Identity, request), one, 'u1 was evicted and is signed afresh')
})

t.test('after a rotation and a reload, assertions are signed with the new key', async (t) => {
  for (const bound of [true, false]) {
    const { file, clock, keys, signer, verify } = await harness(t, bound)
    const old = keys.current.kid
    const before = signer.sign(identity(), request)
    const { kid } = await rotateKeys(file, { clock, assertionTtlMs: TTL })
    t.equal(decodeProtectedHeader(signer.sign(identity(), request)).kid, old, 'the old key until the reload')
    await keys.reload()
    const after = signer.sign(identity(), request)
    t.equal(decodeProtectedHeader(after).kid, kid, `new kid (${bound ? 'bound' : 'unbound'})`)
    await verify(after)
    await verify(before)
    t.same(keys.publicJwks().keys.map((key) => key.kid), [old, kid])
  }
})

t.test('a ttl under a second is refused', async (t) => {
  const { keys, clock } = await harness(t, true)
  t.throws(() => new AssertionSigner({ keys, issuer: ISSUER, ttlMs: 500, bindToRequest: true, clock }), TypeError)
})

t.test('libsodium and node:crypto sign the same assertion, and jose verifies both', async (t) => {
  const libsodium = libsodiumEd25519()
  const { file, clock, keys, signer, verify } = await harness(t, false, undefined, nodeEd25519)
  t.equal(signer.implementation, 'node:crypto')
  const token = signer.sign(identity(), request)
  await verify(token)
  if (libsodium === null) return
  const fast = new AssertionSigner({ keys: await KeyRing.open(file, { clock, assertionTtlMs: TTL }), issuer: ISSUER, ttlMs: TTL, bindToRequest: false, clock, ed25519: libsodium })
  t.equal(fast.implementation, 'libsodium')
  t.equal(fast.sign(identity(), request), token, 'the same bytes')
  await verify(fast.sign(identity(), { ...request, audience: 'other' }), 'other')
  t.equal(keys.current.kid, decodeProtectedHeader(token).kid)
})
