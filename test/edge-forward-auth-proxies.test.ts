/**
 * Forward auth behind the real nginx and Caddy of Debian's packages (SPEC §4b), configured from
 * the very files under examples/forward-auth/ that the README shows: only host names, ports and
 * certificate paths are replaced, and each replacement must find its text (so the examples
 * cannot drift from what is tested). A real upstream behind each proxy checks what arrives.
 */
import https from 'node:https'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { createVerifier } from '../src/verify.js'
import { bearer, PASSWORD, signUp, type LoggedIn } from './helpers/auth-client.js'
import { APP_HOST, forwardAuthGateway, haveProxy, startCaddy, startNginx } from './helpers/forward-auth-proxy.js'
import { testCertificate, type TestGateway } from './helpers/gateway.js'
import { startUpstream, type RecordingUpstream } from './helpers/upstream.js'

interface Proxied {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

interface Setup {
  gw: TestGateway
  upstream: RecordingUpstream
  proxyPort: number
  viewer: LoggedIn
  /** A request to the proxy, as a client of app.gatehouse.test. */
  send(method: string, target: string, headers?: Record<string, string>): Promise<Proxied>
}

async function client(t: Test, proxyPort: number) {
  const { cert } = await testCertificate()
  // The test certificate names localhost; the proxy serves it for app.gatehouse.test too.
  const dispatcher = new Agent({ connect: { ca: cert, checkServerIdentity: () => undefined } })
  t.teardown(() => dispatcher.close())
  return async (method: string, target: string, headers: Record<string, string> = {}): Promise<Proxied> => {
    const answer = await request(`https://127.0.0.1:${proxyPort}${target}`, {
      method: method as 'GET',
      headers: { host: `${APP_HOST}:${proxyPort}`, ...headers },
      dispatcher,
    })
    return { status: answer.statusCode, headers: answer.headers, body: await answer.body.text() }
  }
}

/** The rules every proxy in front must keep, whatever it is. */
async function sharedRules(t: Test, setup: Setup, limitedStatus: number, unresolvedPlaceholders = false): Promise<void> {
  const { gw, upstream, send, viewer, proxyPort } = setup
  const { cert } = await testCertificate()

  await t.test('an allowed request reaches the upstream with the identity and an assertion for the original path', async (t) => {
    const answer = await send('GET', '/items?page=2', bearer(viewer.token))
    t.equal(answer.status, 200, answer.body)
    const received = upstream.last()
    t.equal(received.url, '/items?page=2')
    t.equal(received.headers['x-auth-user-id'], viewer.user.id)
    t.equal(received.headers['x-auth-email'], viewer.user.email)
    const verifier = createVerifier({ jwksUrl: `${gw.url}/.well-known/jwks.json`, issuer: gw.config.server.public_url, audience: 'app', ca: cert, cooldownMs: 0 })
    const identity = await verifier({ method: received.method, url: received.url, headers: received.headers })
    t.equal(identity.id, viewer.user.id, 'the upstream verifies the assertion: htm and htu are what it received')
  })

  await t.test('no credential: 401 for an API client, the login page for a browser, and back after signing in', async (t) => {
    const before = upstream.received.length
    const api = await send('GET', '/items')
    t.equal(api.status, 401)
    t.match(String(api.headers['www-authenticate']), /Bearer realm="gatehouse"/)
    const navigation = await send('GET', '/items?x=1', { accept: 'text/html' })
    t.equal(navigation.status, 302)
    const original = `https://${APP_HOST}:${proxyPort}/items?x=1`
    t.equal(navigation.headers.location, `${gw.config.server.public_url}/auth/login?next=${encodeURIComponent(original)}`)
    t.equal(upstream.received.length, before, 'nothing reached the upstream')

    const signedIn = await gw.call('POST', '/auth/login', {
      body: new URLSearchParams({ email: viewer.user.email, password: PASSWORD, next: original }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: gw.config.server.public_url },
    })
    t.equal(signedIn.status, 303)
    t.equal(signedIn.headers.location, original, 'the login answers with the original URL')
    const cookie = String(signedIn.headers['set-cookie']).split(';', 1)[0] as string
    const back = await send('GET', '/items?x=1', { cookie, accept: 'text/html' })
    t.equal(back.status, 200, 'and the session cookie of the domain opens it')
    t.equal(upstream.last().headers['x-auth-user-id'], viewer.user.id)
  })

  await t.test('a missing permission is 403', async (t) => {
    const answer = await send('POST', '/write/x', bearer(viewer.token))
    t.equal(answer.status, 403)
  })

  await t.test("the route's rate limit", async (t) => {
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) statuses.push((await send('GET', '/limited', bearer(viewer.token))).status)
    t.same(statuses, [200, 200, limitedStatus])
  })

  await t.test('client-sent identity headers never reach the upstream', async (t) => {
    const answer = await send('GET', '/open/page', { 'x-auth-user-id': 'admin', 'x-auth-roles': 'admin', 'x-auth-assertion': 'forged' })
    t.equal(answer.status, 200)
    const received = upstream.last()
    t.equal(received.url, '/open/page')
    for (const name of ['x-auth-user-id', 'x-auth-roles', 'x-auth-assertion']) {
      const value = received.headers[name]
      if (unresolvedPlaceholders) {
        // Caddy 2.6 (Debian 12's) copies an unresolved `{http.reverse_proxy.header.…}` when the
        // answer has no such header (a public route); never the client's value.
        t.ok(value === undefined || value === `{http.reverse_proxy.header.${caddyCase(name)}}`, `${name}: not the client's (${String(value)})`)
      } else {
        t.equal(value, undefined, `${name} is removed`)
      }
    }
    const verifier = createVerifier({ jwksUrl: `${gw.url}/.well-known/jwks.json`, issuer: gw.config.server.public_url, audience: 'open', ca: cert, cooldownMs: 0 })
    await t.rejects(verifier({ method: received.method, url: received.url, headers: received.headers }), 'and nothing verifies as an identity')
  })

  await t.test('a path-bypass attempt is judged on the normalised original path', async (t) => {
    const before = upstream.received.length
    t.equal((await send('GET', '/open/..%2fwrite/x', bearer(viewer.token))).status, 403, 'an encoded slash')
    t.equal((await send('POST', '/open/%2e%2e/write/x', bearer(viewer.token))).status, 403, 'encoded dots: /write/x, which needs app:write')
    t.equal(upstream.received.length, before)
  })

  await t.test('a caller outside forward_auth.trusted is refused, whatever X-Forwarded-Uri it sends', async (t) => {
    const status = await new Promise<number>((resolve, reject) => {
      const call = https.request(`${gw.url}/auth/verify`, {
        ca: cert,
        servername: 'localhost',
        localAddress: '127.0.0.3',
        headers: { 'x-forwarded-method': 'GET', 'x-forwarded-host': APP_HOST, 'x-forwarded-uri': '/open/x', 'x-original-method': 'GET', 'x-original-url': `https://${APP_HOST}/open/x` },
      }, (answer) => {
        answer.resume()
        resolve(answer.statusCode ?? 0)
      })
      call.on('error', reject)
      call.end()
    })
    t.equal(status, 403)
  })
}

/** `x-auth-user-id` as written in the Caddyfile: `X-Auth-User-Id`. */
function caddyCase(name: string): string {
  return name.split('-').map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('-')
}

t.test('nginx auth_request (examples/forward-auth/nginx.conf)', { skip: !haveProxy('nginx') }, async (t) => {
  const upstream = await startUpstream(t)
  const gw = await forwardAuthGateway(t, 'original')
  const proxyPort = await startNginx(t, gw, upstream)
  const viewer = await signUp(gw, 'nginx-viewer')
  await sharedRules(t, { gw, upstream, proxyPort, viewer, send: await client(t, proxyPort) }, 403)
})

t.test('Caddy forward_auth (examples/forward-auth/Caddyfile)', { skip: !haveProxy('caddy') }, async (t) => {
  const upstream = await startUpstream(t)
  const gw = await forwardAuthGateway(t, 'forwarded')
  const proxyPort = await startCaddy(t, gw, upstream)
  const viewer = await signUp(gw, 'caddy-viewer')
  await sharedRules(t, { gw, upstream, proxyPort, viewer, send: await client(t, proxyPort) }, 429, true)
})
