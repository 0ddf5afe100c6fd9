/**
 * Access tokens of other issuers (SPEC §3 `auth.jwt_bearer`, §7) through a real gateway,
 * signed by keys a real JWKS server on a loopback port publishes (discovery document and key
 * set): a valid token reaches the upstream as `<name>|<sub>` with the mapped roles only and
 * method jwt; expired, not yet valid, wrong audience, wrong issuer, `alg: none`, HS256 keyed
 * with the public key are 401; an unknown kid makes the keys be fetched again at most once a
 * minute (injected clock); the JWKS down is 503 except for keys already cached; of the /auth
 * API only GET /auth/me.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose'
import t, { type Test } from 'tap'
import { ManualClock } from '../src/core/clock.js'
import { assertCode } from './helpers/assert-code.js'
import { bearer, signUp } from './helpers/auth-client.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'
import { startUpstream, type RecordingUpstream } from './helpers/upstream.js'

interface Issuer {
  url: string
  keys: JWK[]
  jwksFetches: number
  down: boolean
  sign(claims: JWTPayload, kid?: string, header?: Record<string, unknown>): Promise<string>
  addKey(kid: string, publish: boolean): Promise<void>
  publicPem: string
}

async function startIssuer(t: Test): Promise<Issuer> {
  const privateKeys = new Map<string, Awaited<ReturnType<typeof generateKeyPair>>['privateKey']>()
  const server: Server = createServer((request, response) => {
    if (issuer.down) {
      request.socket.destroy()
      return
    }
    if (request.url === '/.well-known/openid-configuration') {
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ issuer: issuer.url, jwks_uri: `${issuer.url}/jwks` }))
    } else if (request.url === '/jwks') {
      issuer.jwksFetches++
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ keys: issuer.keys }))
    } else {
      response.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const issuer: Issuer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    keys: [],
    jwksFetches: 0,
    down: false,
    publicPem: '',
    async sign(claims, kid = 'k1', header = {}) {
      const key = privateKeys.get(kid)
      if (key === undefined) throw new Error(`no key ${kid}`)
      return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid, ...header }).sign(key)
    },
    async addKey(kid, publish) {
      const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
      privateKeys.set(kid, privateKey)
      if (publish) issuer.keys.push({ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' })
      if (kid === 'k1') issuer.publicPem = await exportSPKI(publicKey)
    },
  }
  await issuer.addKey('k1', true)
  return issuer
}

function unsigned(claims: JWTPayload): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`
}

async function hs256(claims: JWTPayload, secret: string): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode(secret))
}

t.test('jwt_bearer tokens', async (t) => {
  const issuer = await startIssuer(t)
  const upstream: RecordingUpstream = await startUpstream(t)
  const clock = new ManualClock(Date.now())
  const gw: TestGateway = await startTestGateway(t, {
    clock,
    configure: (raw) => {
      raw.routes = [{ name: 'app', match: '/app', upstream: upstream.url, auth: 'required', permissions: ['app:read'] }]
      raw.auth.jwt_bearer = [
        { issuer: issuer.url, audience: 'gatehouse', name: 'keycloak', roles_claim: 'realm_access.roles', role_map: { 'api-writer': ['operator'] } },
      ]
    },
  })
  const now = () => Math.floor(clock.now() / 1000)
  const claims = (extra: JWTPayload = {}): JWTPayload => ({
    iss: issuer.url,
    aud: 'gatehouse',
    sub: 'service-7',
    iat: now(),
    exp: now() + 300,
    realm_access: { roles: ['api-writer', 'unmapped'] },
    ...extra,
  })
  const app = (token: string) => gw.call('GET', '/app/x', { headers: bearer(token) })

  await t.test('a valid token reaches the upstream as <name>|<sub>, mapped roles only, method jwt', async (t) => {
    const answer = await app(await issuer.sign(claims({ email: 'Svc@Example.com' })))
    t.equal(answer.status, 200, { body: answer.text })
    const headers = upstream.last().headers
    t.equal(headers['x-auth-user-id'], 'keycloak|service-7')
    t.equal(headers['x-auth-method'], 'jwt')
    t.equal(headers['x-auth-roles'], 'operator', 'the mapped roles only, no default_roles')
    t.equal(headers['x-auth-email'], 'svc@example.com')
    t.equal(headers.authorization, undefined, 'the credential is not passed on')
    const assertion = JSON.parse(Buffer.from(String(headers['x-auth-assertion']).split('.')[1] ?? '', 'base64url').toString('utf8')) as JWTPayload
    t.same(assertion.amr, ['jwt'])
    t.equal(assertion.sub, 'keycloak|service-7')

    t.equal((await app(await issuer.sign(claims()))).status, 200)
    t.equal(upstream.last().headers['x-auth-email'], undefined, 'no email claim: no X-Auth-Email')
    t.equal((await app(await issuer.sign(claims({ exp: now() - 30 })))).status, 200, 'expired 30 s ago: within the 60 s leeway')
  })

  await t.test('refused with 401', async (t) => {
    const cases: Array<[string, string]> = [
      ['expired', await issuer.sign(claims({ exp: now() - 120 }))],
      ['not valid yet', await issuer.sign(claims({ nbf: now() + 120 }))],
      ['wrong audience', await issuer.sign(claims({ aud: 'someone-else' }))],
      ['wrong issuer (not listed)', await issuer.sign(claims({ iss: 'https://evil.example.com' }))],
      ['alg none', unsigned(claims())],
      ['HS256 keyed with the public key', await hs256(claims(), issuer.publicPem)],
      ['HS256 keyed with the JWK', await hs256(claims(), JSON.stringify(issuer.keys[0]))],
      ['no sub', await issuer.sign(claims({ sub: undefined }))],
      ['a tampered payload', (await issuer.sign(claims())).replace(/\.[^.]+\./, `.${Buffer.from(JSON.stringify(claims({ sub: 'admin' }))).toString('base64url')}.`)],
    ]
    for (const [what, token] of cases) assertCode(t, await app(token), 401, 'GH_UNAUTHENTICATED', what)
    const unmapped = await app(await issuer.sign(claims({ realm_access: { roles: ['other'] } })))
    assertCode(t, unmapped, 403, 'GH_FORBIDDEN', 'no mapped role: no permission')
  })

  await t.test('an unknown kid: keys fetched again at most once a minute', async (t) => {
    const fetched = issuer.jwksFetches
    await issuer.addKey('k2', true)
    const k2 = await issuer.sign(claims(), 'k2')
    clock.advance(61_000)
    t.equal((await app(k2)).status, 200, 'a new key after the cooldown: fetched and accepted')
    t.equal(issuer.jwksFetches, fetched + 1)
    await issuer.addKey('k3', true)
    const k3 = await issuer.sign(claims(), 'k3')
    for (let i = 0; i < 5; i++) assertCode(t, await app(k3), 401, 'GH_UNAUTHENTICATED', `within the minute, attempt ${i + 1}`)
    await issuer.addKey('k4', false)
    assertCode(t, await app(await issuer.sign(claims(), 'k4')), 401, 'GH_UNAUTHENTICATED', 'an unpublished kid')
    t.equal(issuer.jwksFetches, fetched + 1, 'no fetch within the minute')
    clock.advance(61_000)
    t.equal((await app(k3)).status, 200, 'after the minute: fetched again')
    t.equal(issuer.jwksFetches, fetched + 2)
  })

  await t.test('the JWKS down: cached keys keep working, anything else is 503', async (t) => {
    issuer.down = true
    t.equal((await app(await issuer.sign(claims()))).status, 200, 'a cached key')
    await issuer.addKey('k5', true)
    clock.advance(61_000)
    assertCode(t, await app(await issuer.sign(claims(), 'k5')), 503, 'GH_UNAVAILABLE', 'an uncached key while the JWKS is down')
    const fresh = await startTestGateway(t, {
      clock,
      configure: (raw) => {
        raw.routes = [{ name: 'app', match: '/app', upstream: upstream.url, auth: 'required' }]
        raw.auth.jwt_bearer = [{ issuer: issuer.url, audience: 'gatehouse', name: 'keycloak' }]
      },
    })
    assertCode(t, await fresh.call('GET', '/app/x', { headers: bearer(await issuer.sign(claims())) }), 503, 'GH_UNAVAILABLE', 'nothing cached')
    issuer.down = false
    clock.advance(61_000)
    t.equal((await fresh.call('GET', '/app/x', { headers: bearer(await issuer.sign(claims())) })).status, 200, 'answers again once the JWKS is back')
  })

  await t.test('of the /auth API, only GET /auth/me', async (t) => {
    const token = await issuer.sign(claims({ email: 'svc@example.com' }))
    const me = await gw.call('GET', '/auth/me', { headers: bearer(token) })
    t.equal(me.status, 200)
    const body = me.json<{ id: string; roles: string[]; auth: { method: string; amr: string[] } }>()
    t.equal(body.id, 'keycloak|service-7')
    t.same(body.roles, ['operator'])
    t.same(body.auth, { ...body.auth, method: 'jwt', amr: ['jwt'] })
    assertCode(t, await gw.call('GET', '/auth/sessions', { headers: bearer(token) }), 403, 'GH_FORBIDDEN', 'sessions')
    assertCode(t, await gw.call('POST', '/auth/tokens', { json: { name: 'x' }, headers: bearer(token) }), 403, 'GH_FORBIDDEN', 'minting a PAT')
    assertCode(t, await gw.call('POST', '/auth/logout', { headers: bearer(token) }), 403, 'GH_FORBIDDEN', 'logout')
  })

  await t.test('a session cookie and a JWT together are ambiguous; session tokens still work', async (t) => {
    const user = await signUp(gw, 'jwt-neighbour')
    const both = await gw.call('GET', '/app/x', { headers: { ...bearer(await issuer.sign(claims())), cookie: `__Host-gh_session=${user.token}` } })
    assertCode(t, both, 400, 'GH_AMBIGUOUS_CREDENTIALS')
    t.equal((await app(user.token)).status, 200, 'a session token as Bearer')
  })
})
