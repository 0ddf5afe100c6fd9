import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { startWhoami, type WhoamiReport } from '../examples/whoami/server.js'
import { AssertionSigner } from '../src/core/assertion-signer.js'
import { systemClock } from '../src/core/clock.js'
import type { Identity } from '../src/core/identity.js'
import { identityHeaders } from '../src/core/identity-headers.js'
import { KeyRing } from '../src/core/identity-keys.js'
import { testIdentity } from './helpers/fixtures.js'

const ISSUER = 'https://gatehouse.test'
const alice: Identity = testIdentity({ permissions: ['app:read'] }, { roles: ['viewer'] })

async function setUp(t: Test) {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-whoami-'))
  t.teardown(() => rm(directory, { recursive: true, force: true }))
  const keys = await KeyRing.open(path.join(directory, 'identity-keys.json'), { clock: systemClock, assertionTtlMs: 60_000 })
  const signer = new AssertionSigner({ keys, issuer: ISSUER, ttlMs: 60_000, bindToRequest: true, clock: systemClock })
  const jwks = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(keys.publicJwks()))
  })
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { jwks.close(() => resolve()); jwks.closeAllConnections() }))
  const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`
  const whoami = await startWhoami({ verifier: { jwksUrl, issuer: ISSUER, audience: 'whoami' } })
  t.teardown(() => whoami.close())
  /** Headers as the gateway would send them for `method uri` on the whoami route. */
  const gatewayHeaders = (method: string, uri: string, requestId = 'req-1') =>
    identityHeaders(alice, signer.sign(alice, { audience: 'whoami', requestId, method, uri }))
  return { whoami, gatewayHeaders }
}

async function reportOf(response: Response): Promise<WhoamiReport> {
  return (await response.json()) as WhoamiReport
}

t.test('reports a verified identity as JSON', async (t) => {
  const { whoami, gatewayHeaders } = await setUp(t)
  const headers = { ...gatewayHeaders('GET', '/whoami/x?y=1'), 'x-request-id': 'req-1', 'x-other': 'kept' }
  const response = await fetch(`${whoami.url}/whoami/x?y=1`, { headers })
  t.equal(response.status, 200)
  t.match(response.headers.get('content-type'), /^application\/json/)
  const report = await reportOf(response)
  t.match(report, {
    method: 'GET',
    path: '/whoami/x?y=1',
    identity_headers: {
      'x-auth-user-id': alice.user.id, 'x-auth-email': 'alice@example.com', 'x-auth-roles': 'viewer', 'x-auth-method': 'session',
    },
    other_headers: { 'x-other': 'kept', 'x-request-id': 'req-1' },
    assertion: { verified: true, identity: { id: alice.user.id, email: 'alice@example.com', roles: ['viewer'], method: 'session', amr: ['pwd'], requestId: 'req-1' } },
  })

  const post = await reportOf(await fetch(`${whoami.url}/whoami/x?y=1`, { method: 'POST', headers: gatewayHeaders('POST', '/whoami/x?y=1'), body: 'ignored' }))
  t.equal(post.assertion.verified, true, 'a POST with a body')
})

t.test('reports forged or missing identities as not verified', async (t) => {
  const { whoami, gatewayHeaders } = await setUp(t)
  const forgedRoles = await reportOf(await fetch(`${whoami.url}/whoami`, { headers: { ...gatewayHeaders('GET', '/whoami'), 'x-auth-roles': 'admin' } }))
  t.match(forgedRoles.assertion, { verified: false, code: 'header_mismatch' })
  const replayed = await reportOf(await fetch(`${whoami.url}/whoami/admin`, { headers: gatewayHeaders('GET', '/whoami') }))
  t.match(replayed.assertion, { verified: false, code: 'request_mismatch' })
  const plainHeaders = await reportOf(await fetch(`${whoami.url}/whoami`, { headers: { 'x-auth-user-id': alice.user.id, 'x-auth-email': 'alice@example.com' } }))
  t.match(plainHeaders.assertion, { verified: false, code: 'missing_assertion' })
  t.equal(plainHeaders.identity_headers['x-auth-user-id'], alice.user.id, 'what was received is shown all the same')
})

t.test('answers browsers with escaped HTML under a strict CSP', async (t) => {
  const { whoami, gatewayHeaders } = await setUp(t)
  const response = await fetch(`${whoami.url}/whoami?<q>`, {
    headers: { ...gatewayHeaders('GET', '/whoami?%3Cq%3E'), accept: 'text/html', 'x-evil': '<script>alert(1)</script>' },
  })
  t.equal(response.status, 200)
  t.match(response.headers.get('content-type'), /^text\/html/)
  t.match(response.headers.get('content-security-policy'), /default-src 'none'/)
  t.match(response.headers.get('content-security-policy'), /script-src 'self'; connect-src 'self'/, 'its own script file and socket only')
  const body = await response.text()
  t.same([...body.matchAll(/<script\b[^>]*>[^<]*<\/script>/gi)].map((m) => m[0]), ['<script src="?live.js" defer></script>'], 'one script, an external file')
  t.equal(body.match(/<script/gi)?.length, 1, 'and no other <script')
  t.match(body, '&#60;script&#62;alert(1)&#60;/script&#62;')
  t.match(body, 'Assertion verified: alice@example.com')
})

t.test('a WebSocket on any path echoes, after reporting the identity of its handshake', async (t) => {
  const { whoami, gatewayHeaders } = await setUp(t)
  const script = await fetch(`${whoami.url}/whoami/?live.js`)
  t.match(script.headers.get('content-type'), /^text\/javascript/)
  t.match(await script.text(), /new WebSocket\(url\)/, 'the page script opens a socket to its own path')

  const messages = async (headers: Record<string, string>, send: (string | Buffer)[]) => {
    const socket = new WebSocket(`${whoami.url.replace('http', 'ws')}/whoami/live`, { headers })
    t.teardown(() => socket.terminate())
    const received: { data: string; binary: boolean }[] = []
    await new Promise<void>((resolve, reject) => {
      socket.on('message', (data, isBinary) => {
        received.push({ data: Buffer.from(data as Buffer).toString('hex'), binary: isBinary })
        if (received.length === send.length + 1) resolve()
      })
      socket.once('open', () => send.forEach((item) => socket.send(item)))
      socket.once('error', reject)
    })
    return received
  }
  const [hello, text, binary] = await messages(gatewayHeaders('GET', '/whoami/live'), ['hi', Buffer.from([0, 255])])
  t.match(JSON.parse(Buffer.from(hello!.data, 'hex').toString()), { type: 'hello', assertion: { verified: true, identity: { email: 'alice@example.com', method: 'session' } } })
  t.same(text, { data: Buffer.from('hi').toString('hex'), binary: false }, 'text echoed as text')
  t.same(binary, { data: '00ff', binary: true }, 'binary echoed as binary')

  const [forged] = await messages(gatewayHeaders('GET', '/elsewhere'), [])
  t.match(JSON.parse(Buffer.from(forged!.data, 'hex').toString()), { type: 'hello', assertion: { verified: false } }, 'an assertion for another path is not verified')
})

t.test('without verifier options it says so', async (t) => {
  const whoami = await startWhoami()
  t.teardown(() => whoami.close())
  const report = await reportOf(await fetch(`${whoami.url}/`))
  t.match(report.assertion, { verified: false, code: 'not_configured' })
})
