/**
 * Discovery of a provider's metadata (src/oidc/provider-client.ts) without a gateway: retried
 * with exponential back-off while the issuer is down, answering 503 GH_OIDC_UNAVAILABLE with
 * a Retry-After meanwhile, and stopped for good by close().
 */
import t from 'tap'
import type { OidcProviderConfig } from '../src/config/types.js'
import { GatehouseError } from '../src/errors.js'
import { isLoopbackHost, ProviderClient } from '../src/oidc/provider-client.js'
import { OidcProviders, redirectUriOf } from '../src/oidc/providers.js'
import { startTestProvider } from './helpers/oidc-provider.js'
import { freePort } from './helpers/ports.js'

function providerConfig(issuer: string): OidcProviderConfig {
  return {
    name: 'corp',
    issuer,
    client_id: 'gatehouse',
    client_secret: 'a client secret that is long enough for HS256 too',
    scopes: ['openid', 'email'],
    allowed_email_domains: null,
    create_users: false,
    link_existing_users: false,
    trust_unverified_email: false,
    roles_claim: null,
    role_map: {},
    allowed_groups: null,
    refresh_interval: null,
    provider_logout: false,
  }
}

const checks = { state: 's'.repeat(43), nonce: 'n'.repeat(43), codeVerifier: 'v'.repeat(43) }

t.test('loopback hosts', async (t) => {
  for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '[::1]']) t.ok(isLoopbackHost(host), host)
  for (const host of ['127.0.0.1.example.com', '10.0.0.1', 'example.com', '::1']) t.notOk(isLoopbackHost(host), host)
})

t.test('while the issuer is down: 503 with Retry-After, retries that back off, nothing after close()', async (t) => {
  const port = await freePort()
  const client = new ProviderClient(providerConfig(`http://127.0.0.1:${port}`), {
    redirectUri: 'https://gatehouse.test/auth/oidc/corp/callback',
    backoff: { initialMs: 20, maxMs: 80 },
  })
  const delays: number[] = []
  client.start({ onDiscoveryError: (_err, retryInMs) => delays.push(retryInMs) })
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.notOk(client.ready)
  t.ok(delays.length >= 3, `retried (${delays.length} attempts)`)
  t.ok(delays[0]! >= 20 && delays[0]! <= 22, 'the first delay is the initial one, with at most 10% jitter')
  t.ok(delays[1]! >= 40 && delays[1]! <= 44, 'then doubled')
  t.ok(delays.slice(3).every((d) => d >= 80 && d <= 88), 'up to the cap')
  const err = await client.authorizationUrl(checks).catch((e: unknown) => e)
  t.type(err, GatehouseError)
  t.equal((err as GatehouseError).code, 'GH_OIDC_UNAVAILABLE')
  t.ok(((err as GatehouseError).retryAfter ?? 0) >= 1, 'Retry-After of at least a second')
  client.close()
  const attempts = delays.length
  await new Promise((resolve) => setTimeout(resolve, 250))
  t.ok(delays.length <= attempts + 1, 'no retries after close() (at most the one in flight)')
})

t.test('discovered: the authorization URL carries PKCE, state, nonce and the redirect URI', async (t) => {
  const redirectUri = redirectUriOf('https://gatehouse.test', 'corp')
  const idp = await startTestProvider(t, { redirectUris: [redirectUri] })
  const providers = new OidcProviders([providerConfig(idp.issuer)], { publicUrl: 'https://gatehouse.test' })
  t.teardown(() => providers.close())
  t.equal(providers.get('corp')?.ready, false, 'building contacts nobody')
  providers.start()
  const client = providers.get('corp')!
  const deadline = Date.now() + 5_000
  while (!client.ready && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(client.ready, 'discovered')
  const url = await client.authorizationUrl(checks)
  t.equal(url.origin, idp.issuer)
  t.same(Object.fromEntries(url.searchParams), {
    client_id: 'gatehouse',
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: 'openid email',
    state: checks.state,
    nonce: checks.nonce,
    code_challenge: url.searchParams.get('code_challenge'),
    code_challenge_method: 'S256',
  })
  t.not(url.searchParams.get('code_challenge'), checks.codeVerifier, 'the challenge, never the verifier')
  t.equal(providers.get('nope'), null)
})
