/**
 * X-Auth-Assertion from the upstream's side (SPEC §4): a real upstream verifies what a real
 * gateway sent it with `gatehouse/verify`, fetching the gateway's JWKS over TLS. Bound
 * assertions name their request (jti, htm, htu), are refused for another request, another
 * audience, after expiry, and survive a key rotation exactly as long as the old key is
 * published. Unbound ones are reused for at most half their lifetime.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet } from 'jose'
import t, { type Test } from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { RETIRED_KEY_MARGIN_MS, rotateKeys } from '../src/core/identity-keys.js'
import { createVerifier, VerificationError, type VerifiableRequest, type VerifiedIdentity, type Verifier, type VerifierOptions } from '../src/verify.js'
import { PASSWORD, bearer, login, register, uniqueEmail } from './helpers/auth-client.js'
import { PUBLIC_URL, startTestGateway, testCertificate, type TestGateway } from './helpers/gateway.js'
import { rawCall } from './helpers/raw-http.js'

const TTL_MS = 60_000

interface Verified {
  method: string
  url: string
  headers: IncomingHttpHeaders
  /** What the upstream's verifier said: the identity, or the refusal's code. */
  result: VerifiedIdentity | { refused: string }
}

/**
 * An upstream serving two routes, as an app behind the gateway would: it verifies every
 * request with the verifier for the route the path belongs to, and records the outcome.
 */
async function startVerifyingUpstream(t: Test, verifierFor: (url: string) => Verifier) {
  const seen: Verified[] = []
  const server = createServer((request, response) => {
    request.resume()
    request.on('end', () => {
      verifierFor(request.url ?? '')(request).then(
        (identity) => identity,
        (error: unknown) => ({ refused: error instanceof VerificationError ? error.code : String(error) }),
      ).then((result) => {
        seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, result })
        response.writeHead('refused' in result ? 401 : 200, { 'content-type': 'application/json' })
        response.end(JSON.stringify(result))
      }, (error: unknown) => response.writeHead(500).end(String(error)))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    last(): Verified {
      const entry = seen.at(-1)
      if (entry === undefined) throw new Error('the upstream received nothing')
      return entry
    },
  }
}

async function keyFile(t: Test): Promise<string> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-edge-assertion-'))
  t.teardown(() => rm(directory, { recursive: true, force: true }))
  return path.join(directory, 'identity-keys.json')
}

/** The code a verification is refused with, or 'accepted'. */
async function outcome(verify: Verifier, request: VerifiableRequest): Promise<string> {
  try {
    await verify(request)
    return 'accepted'
  } catch (error) {
    if (error instanceof VerificationError) return error.code
    throw error
  }
}

function single(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name]
  if (typeof value !== 'string') throw new Error(`expected one ${name} header`)
  return value
}

async function credentials(gw: TestGateway) {
  const email = uniqueEmail('assert')
  const user = await register(gw, email)
  const session = (await login(gw, email, PASSWORD)).token
  const created = await gw.call('POST', '/auth/tokens', { json: { name: 'assertion' }, headers: bearer(session) })
  if (created.status !== 201) throw new Error(created.text)
  return { user, email, session, pat: created.json<{ token: string; id: string }>() }
}

t.test('bound assertions, verified by a real upstream', async (t) => {
  // Whole seconds, so that iat (seconds) and the clock (ms) line up exactly.
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000)
  const file = await keyFile(t)
  const { cert } = await testCertificate()
  let gatewayUrl = ''
  const verifierOptions = (audience: string, extra: Partial<VerifierOptions> = {}): VerifierOptions => ({
    jwksUrl: `${gatewayUrl}/.well-known/jwks.json`,
    issuer: PUBLIC_URL,
    audience,
    ca: cert,
    cooldownMs: 0,
    now: () => clock.now(),
    ...extra,
  })
  const verifiers = new Map<string, Verifier>()
  const verifier = (audience: string): Verifier => {
    let existing = verifiers.get(audience)
    if (existing === undefined) {
      existing = createVerifier(verifierOptions(audience))
      verifiers.set(audience, existing)
    }
    return existing
  }
  const upstream = await startVerifyingUpstream(t, (url) => verifier(url.startsWith('/app') ? 'app' : 'tools'))
  const gw = await startTestGateway(t, {
    clock,
    configure: (raw) => {
      raw.identity = { signing_key_file: file, assertion_ttl: '60s' }
      raw.routes = [
        { name: 'app', match: '/app', upstream: upstream.url, auth: 'required' },
        { name: 'tools', match: '/tools', upstream: upstream.url, auth: 'required', strip_prefix: true },
      ]
    },
  })
  gatewayUrl = gw.url
  const { user, email, session, pat } = await credentials(gw)

  t.test("the package's self-reference resolves gatehouse/verify", async (t) => {
    const specifier = 'gatehouse/verify'
    const viaPackage = (await import(specifier)) as { createVerifier?: unknown; VerificationError?: unknown }
    t.equal(viaPackage.createVerifier, createVerifier, 'the same createVerifier as src/verify.ts')
    t.equal(viaPackage.VerificationError, VerificationError)
  })

  t.test('rid, htm and htu name the request the upstream received', async (t) => {
    const cases: Array<{ method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD'; target: string; expected: string; audience: string; token: string; via: 'session' | 'pat' }> = [
      { method: 'GET', target: '/app/items?page=2', expected: '/app/items?page=2', audience: 'app', token: session, via: 'session' },
      { method: 'POST', target: '/app/items', expected: '/app/items', audience: 'app', token: pat.token, via: 'pat' },
      { method: 'PUT', target: '/app/items/1?x', expected: '/app/items/1?x', audience: 'app', token: pat.token, via: 'pat' },
      { method: 'PATCH', target: '/app/items/1', expected: '/app/items/1', audience: 'app', token: session, via: 'session' },
      { method: 'DELETE', target: '/app/items/1', expected: '/app/items/1', audience: 'app', token: pat.token, via: 'pat' },
      { method: 'HEAD', target: '/app/head', expected: '/app/head', audience: 'app', token: pat.token, via: 'pat' },
      { method: 'GET', target: '/app//a/./b/../c?q=1&q=2', expected: '/app/a/c?q=1&q=2', audience: 'app', token: pat.token, via: 'pat' },
      { method: 'GET', target: "/app/q?name='o'&v={x}&r=a/../b", expected: "/app/q?name='o'&v={x}&r=a/../b", audience: 'app', token: pat.token, via: 'pat' },
      { method: 'GET', target: '/app/{id}/%7e', expected: '/app/%7Bid%7D/~', audience: 'app', token: pat.token, via: 'pat' },
      { method: 'GET', target: '/tools', expected: '/', audience: 'tools', token: pat.token, via: 'pat' },
      { method: 'GET', target: '/tools/x?q=1', expected: '/x?q=1', audience: 'tools', token: session, via: 'session' },
      { method: 'POST', target: '/tools/a/../b/', expected: '/b/', audience: 'tools', token: pat.token, via: 'pat' },
    ]
    for (const { method, target, expected, audience, token, via } of cases) {
      const what = `${method} ${target}`
      const before = upstream.seen.length
      const response = await rawCall(gw.url, method, target, [['Authorization', `Bearer ${token}`], ['Content-Type', 'application/json']], method === 'GET' || method === 'HEAD' ? '' : '{}')
      t.equal(response.status, 200, `${what}: verified by the upstream`, { body: response.body })
      t.equal(upstream.seen.length, before + 1)
      const got = upstream.last()
      t.equal(got.url, expected, `${what}: the upstream received ${expected}`)
      const result = got.result
      if ('refused' in result) {
        t.fail(`${what}: refused with ${result.refused}`)
        continue
      }
      t.equal(result.id, user.id, `${what}: id`)
      t.equal(result.email, email, `${what}: email`)
      t.same(result.roles, ['viewer'], `${what}: roles`)
      t.equal(result.method, via, `${what}: method`)
      t.same(result.amr, [via === 'pat' ? 'pat' : 'pwd'], `${what}: amr`)
      if (via === 'pat') t.equal(result.tokenId, pat.id, `${what}: token id`)
      const claims = decodeJwt(single(got.headers, 'x-auth-assertion'))
      t.equal(claims.rid, single(got.headers, 'x-request-id'), `${what}: rid is the X-Request-Id`)
      t.equal(claims.rid, response.headers['x-request-id'], `${what}: and the response's`)
      t.equal(result.requestId, claims.rid, `${what}: the verifier reports rid as requestId`)
      t.equal(result.assertionId, claims.jti, `${what}: and jti as assertionId`)
      t.not(claims.jti, claims.rid, `${what}: jti is not the request id`)
      t.equal(claims.htm, method, `${what}: htm`)
      t.equal(claims.htu, expected, `${what}: htu is what the upstream received`)
      t.equal(claims.aud, audience, `${what}: aud is the route's name`)
      t.equal(claims.iss, PUBLIC_URL, `${what}: iss`)
      t.equal(claims.exp, (claims.iat ?? 0) + TTL_MS / 1000, `${what}: exp = iat + ttl`)
      t.equal(decodeProtectedHeader(single(got.headers, 'x-auth-assertion')).alg, 'EdDSA')
    }
  })

  t.test('jti is fresh for every request, even two with the same X-Request-Id (SPEC §4)', async (t) => {
    const jtis: unknown[] = []
    for (let i = 0; i < 2; i++) {
      const response = await gw.call('GET', '/app/items', { headers: { ...bearer(pat.token), 'x-request-id': 'chosen-by-client' } })
      t.equal(response.status, 200, response.text)
      const claims = decodeJwt(single(upstream.last().headers, 'x-auth-assertion'))
      t.equal(claims.rid, 'chosen-by-client', 'rid is the request id')
      t.not(claims.jti, 'chosen-by-client', 'jti is not the client-chosen id')
      jtis.push(claims.jti)
    }
    t.not(jtis[0], jtis[1], 'two requests, two jti')
  })

  t.test('a received assertion is refused for another request, audience or issuer', async (t) => {
    const response = await gw.call('GET', '/app/orders?id=7', { headers: bearer(pat.token) })
    t.equal(response.status, 200, response.text)
    const got = upstream.last()
    const as = (changes: Partial<VerifiableRequest>): VerifiableRequest => ({ headers: got.headers, method: got.method, url: got.url, ...changes })
    t.equal(await outcome(verifier('app'), as({})), 'accepted', 'the request it was made for')
    t.equal(await outcome(verifier('app'), as({ url: `https://app.internal${got.url}` })), 'accepted', 'an absolute URL of the same target')
    for (const [changes, what] of [
      [{ method: 'POST' }, 'another method'],
      [{ method: 'DELETE' }, 'another method'],
      [{ url: '/app/orders' }, 'without the query'],
      [{ url: '/app/orders?id=8' }, 'another query'],
      [{ url: '/app/admin?id=7' }, 'another path'],
      [{ url: '/app/orders/?id=7' }, 'a trailing slash'],
    ] as Array<[Partial<VerifiableRequest>, string]>) {
      t.equal(await outcome(verifier('app'), as(changes)), 'request_mismatch', `replayed with ${what}: request_mismatch`)
    }
    const otherRoute = await outcome(createVerifier(verifierOptions('tools')), as({}))
    t.equal(otherRoute, 'wrong_audience', "another route's verifier: wrong_audience")
    t.equal(await outcome(createVerifier(verifierOptions('app', { issuer: 'https://other.test' })), as({})), 'wrong_issuer')
    const tampered = { ...got.headers, 'x-auth-user-id': 'someone-else' }
    t.equal(await outcome(verifier('app'), as({ headers: tampered })), 'header_mismatch', 'plain headers must agree with it')
  })

  t.test('an assertion expires after identity.assertion_ttl', async (t) => {
    const response = await gw.call('GET', '/app/expiring', { headers: bearer(session) })
    t.equal(response.status, 200)
    const got = upstream.last()
    const request: VerifiableRequest = { headers: got.headers, method: got.method, url: got.url }
    const jwks = (await gw.call('GET', '/.well-known/jwks.json')).json<JSONWebKeySet>()
    const assertion = single(got.headers, 'x-auth-assertion')

    clock.advance(TTL_MS - 1000)
    t.equal(await outcome(verifier('app'), request), 'accepted', 'still valid just before exp')
    clock.advance(1000 + 5000 + 1000) // past exp and the verifier's default 5 s tolerance
    t.equal(await outcome(verifier('app'), request), 'expired', 'refused after expiry')
    await t.rejects(
      jwtVerify(assertion, createLocalJWKSet(jwks), { issuer: PUBLIC_URL, audience: 'app', currentDate: new Date(clock.now()) }),
      errors.JWTExpired,
      'jose agrees',
    )
  })

  t.test('key rotation: the old key verifies while published, then is gone', async (t) => {
    const before = await gw.call('GET', '/app/rotation', { headers: bearer(pat.token) })
    t.equal(before.status, 200)
    const old = upstream.last()
    const oldAssertion = single(old.headers, 'x-auth-assertion')
    const oldKid = decodeProtectedHeader(oldAssertion).kid
    const oldRequest: VerifiableRequest = { headers: old.headers, method: old.method, url: old.url }
    const oldIat = decodeJwt(oldAssertion).iat ?? 0

    const rotation = await rotateKeys(file, { clock, assertionTtlMs: TTL_MS })
    await gw.runtime.keys.reload()
    t.not(rotation.kid, oldKid)

    const after = await gw.call('GET', '/app/rotation', { headers: bearer(pat.token) })
    t.equal(after.status, 200, 'an upstream that cached the old key set still verifies a new-key assertion')
    const fresh = upstream.last()
    t.equal(decodeProtectedHeader(single(fresh.headers, 'x-auth-assertion')).kid, rotation.kid, 'new assertions carry the new kid')
    const kids = () => gw.call('GET', '/.well-known/jwks.json').then((r) => r.json<JSONWebKeySet>().keys.map((key) => key.kid).sort())
    t.same(await kids(), [oldKid, rotation.kid].sort(), 'both keys are published')
    t.equal(await outcome(verifier('app'), oldRequest), 'accepted', 'an old assertion still verifies')
    t.equal(await outcome(createVerifier(verifierOptions('app')), oldRequest), 'accepted', 'also for a fresh verifier')

    clock.advance(TTL_MS + RETIRED_KEY_MARGIN_MS - 1000)
    t.same(await kids(), [oldKid, rotation.kid].sort(), 'still published just before ttl + margin')
    clock.advance(1000)
    t.same(await kids(), [rotation.kid], 'gone once ttl + margin has passed')
    // Judged at a time the assertion was valid, so that only the missing key can refuse it.
    const atIssue = createVerifier(verifierOptions('app', { now: () => oldIat * 1000 + 1000 }))
    t.equal(await outcome(atIssue, oldRequest), 'invalid_signature', 'a fresh verifier refuses the old assertion')

    const later = await gw.call('GET', '/app/rotation', { headers: bearer(pat.token) })
    t.equal(later.status, 200, 'new assertions keep verifying')
  })

  t.test('routes without an identity carry no assertion', async (t) => {
    const anonymous = await gw.call('GET', '/app/x')
    t.equal(anonymous.status, 401)
    t.equal(await outcome(verifier('app'), { headers: {}, method: 'GET', url: '/app/x' }), 'missing_assertion')
  })
})

t.test('identity.bind_to_request: false reuses one assertion for at most half its ttl', async (t) => {
  const clock = new ManualClock(Math.floor(Date.now() / 1000) * 1000)
  const file = await keyFile(t)
  const { cert } = await testCertificate()
  let gatewayUrl = ''
  const make = (audience: string) =>
    createVerifier({ jwksUrl: `${gatewayUrl}/.well-known/jwks.json`, issuer: PUBLIC_URL, audience, ca: cert, cooldownMs: 0, now: () => clock.now() })
  const verifiers: Record<string, Verifier> = {}
  const upstream = await startVerifyingUpstream(t, (url) => {
    const audience = url.startsWith('/app') ? 'app' : 'tools'
    return (verifiers[audience] ??= make(audience))
  })
  const gw = await startTestGateway(t, {
    clock,
    configure: (raw) => {
      raw.identity = { signing_key_file: file, assertion_ttl: '60s', bind_to_request: false }
      raw.routes = [
        { name: 'app', match: '/app', upstream: upstream.url, auth: 'required' },
        { name: 'tools', match: '/tools', upstream: upstream.url, auth: 'required', strip_prefix: true },
      ]
    },
  })
  gatewayUrl = gw.url
  const { session, pat } = await credentials(gw)
  const assertionFor = async (method: 'GET' | 'POST' | 'DELETE', target: string, token: string): Promise<string> => {
    const response = await gw.call(method, target, { headers: bearer(token), body: method === 'GET' ? undefined : 'x' })
    t.equal(response.status, 200, `${method} ${target}: verified by the upstream`, { body: response.text })
    return single(upstream.last().headers, 'x-auth-assertion')
  }

  const first = await assertionFor('GET', '/app/a', pat.token)
  const claims = decodeJwt(first)
  t.equal(claims.jti, undefined, 'no jti')
  t.equal(claims.htm, undefined, 'no htm')
  t.equal(claims.htu, undefined, 'no htu')
  t.equal(claims.aud, 'app')
  t.equal(await assertionFor('POST', '/app/b?x=1', pat.token), first, 'another request within half the ttl: the identical assertion')
  clock.advance(TTL_MS / 2 - 1000)
  t.equal(await assertionFor('DELETE', '/app/c', pat.token), first, 'still the same just before half the ttl')
  t.not(await assertionFor('GET', '/tools/a', pat.token), first, 'another route: another assertion (aud)')
  t.not(await assertionFor('GET', '/app/a', session), first, 'another credential kind: another assertion (amr)')
  clock.advance(1000)
  const renewed = await assertionFor('GET', '/app/a', pat.token)
  t.not(renewed, first, 'after half the ttl: a new one')
  t.equal(decodeJwt(renewed).iat, (claims.iat ?? 0) + TTL_MS / 2 / 1000, 'issued now')
  t.equal(await assertionFor('GET', '/app/d', pat.token), renewed, 'which is reused in turn')
  for (const entry of upstream.seen) t.notOk('refused' in entry.result, `${entry.method} ${entry.url}: verified`)
})
