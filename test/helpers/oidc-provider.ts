/**
 * A real OpenID Provider for tests: panva's oidc-provider (the certified reference
 * implementation) on a loopback port, with one registered confidential client, test
 * accounts, and its development interactions (any password; the login is the account id),
 * which `authorize()` drives like a browser.
 *
 * In front of it, a small pass-through proxy the test controls, whose address is the
 * issuer: it can play the provider being down (connections dropped), hand the gateway's
 * token request to the provider twice (so that the code the gateway redeems was used
 * already), or re-sign the ID token the provider issued with one claim changed, with the
 * provider's own key (so that only that claim is wrong).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose'
import Provider from 'oidc-provider'
import type { Test } from 'tap'
import { request } from 'undici'

export interface TestAccount {
  email?: string
  email_verified?: boolean | string
  name?: string
  /** Group names (scope `groups`); any shape, to test what the gateway accepts. */
  groups?: unknown
  /** Keycloak's shape: `{ roles: [...] }` (scope `roles`). */
  realm_access?: unknown
}

export interface TestProviderOptions {
  clientId?: string
  clientSecret?: string
  redirectUris: string[]
  accounts?: Record<string, TestAccount>
  /** Put the scope claims into the ID token too (oidc-provider's conformIdTokenClaims: false). */
  claimsInIdToken?: boolean
  /** Register the client for the refresh_token grant and issue refresh tokens at every code exchange. */
  refreshTokens?: boolean
  /** Register the client's back-channel logout URI (the provider never calls it in tests; they sign logout tokens with signAsProvider). */
  backchannelLogoutUri?: string
}

export interface TestProvider {
  issuer: string
  clientId: string
  clientSecret: string
  /** Accounts by id (the `sub`); add more at any time. */
  accounts: Map<string, TestAccount>
  /** While true, every connection to the issuer is dropped. */
  down: boolean
  /** Lifetime of the codes issued from now on, seconds. */
  codeTtlSeconds: number
  /** Applied to the ID token of the next token response, which is then re-signed with the provider's key. */
  tamperNextIdToken: ((claims: JWTPayload) => JWTPayload) | null
  /** The next token request is sent to the provider twice; the gateway gets the second answer. */
  replayNextTokenRequest: boolean
  /** Token requests the proxy forwarded, for assertions. */
  tokenRequests: number
  /** Refresh-token grants among them. */
  refreshRequests: number
  /** Signs `claims` with the provider's own key (as an ID token or a logout token is). */
  signAsProvider(claims: JWTPayload, header?: { typ?: string; kid?: string }): Promise<string>
  /**
   * Plays the browser at the provider: follows `authorizationUrl`, signs in as `account` and
   * consents in the development interactions, and resolves the URL the provider finally
   * redirects to (the gateway's callback, with `code`, `state` and `iss`).
   */
  authorize(authorizationUrl: string, account: string): Promise<URL>
}

const INTERNAL = '127.0.0.1'

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, INTERNAL, () => resolve((server.address() as AddressInfo).port)))
}

function close(server: Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}

function readBody(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => resolve(Buffer.concat(chunks)))
    stream.on('error', reject)
  })
}

interface Forwarded {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

function forward(port: number, incoming: IncomingMessage, body: Buffer): Promise<Forwarded> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      { host: INTERNAL, port, method: incoming.method, path: incoming.url, headers: incoming.headers },
      (response) => {
        readBody(response).then((buffer) => resolve({ status: response.statusCode ?? 502, headers: response.headers, body: buffer }), reject)
      },
    )
    outgoing.on('error', reject)
    outgoing.end(body)
  })
}

export async function startTestProvider(t: Test, options: TestProviderOptions): Promise<TestProvider> {
  const clientId = options.clientId ?? 'gatehouse'
  const clientSecret = options.clientSecret ?? 'a client secret that is long enough for HS256 too'
  const accounts = new Map(Object.entries(options.accounts ?? {}))

  const { privateKey } = await generateKeyPair('RS256', { extractable: true })
  const jwk = { ...(await exportJWK(privateKey)), kid: 'test-key', alg: 'RS256', use: 'sig' }

  // The issuer is the proxy's address, so its port is needed before the provider exists.
  const proxy = createServer()
  const proxyPort = await listen(proxy)
  const issuer = `http://${INTERNAL}:${proxyPort}`

  const control: Omit<TestProvider, 'issuer' | 'clientId' | 'clientSecret' | 'accounts' | 'authorize' | 'signAsProvider'> = {
    down: false,
    codeTtlSeconds: 60,
    tamperNextIdToken: null,
    replayNextTokenRequest: false,
    tokenRequests: 0,
    refreshRequests: 0,
  }

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: options.redirectUris,
        grant_types: options.refreshTokens ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        ...(options.backchannelLogoutUri ? { backchannel_logout_uri: options.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
        post_logout_redirect_uris: options.redirectUris.map((uri) => new URL('/auth/login', uri).href),
      },
    ],
    ...(options.claimsInIdToken ? { conformIdTokenClaims: false } : {}),
    ...(options.refreshTokens ? { issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) => client.grantTypeAllowed('refresh_token') } : {}),
    features: {
      rpInitiatedLogout: { enabled: true },
      ...(options.backchannelLogoutUri ? { backchannelLogout: { enabled: true } } : {}),
    },
    jwks: { keys: [jwk] },
    cookies: { keys: ['test cookie signing key'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'], roles: ['realm_access'] },
    ttl: { AuthorizationCode: () => control.codeTtlSeconds },
    findAccount: (_ctx, id) => {
      const account = accounts.get(id)
      if (account === undefined) return undefined
      return { accountId: id, claims: () => ({ sub: id, ...account }) }
    },
  })
  const providerServer = createServer(provider.callback())
  const providerPort = await listen(providerServer)

  async function resign(claims: JWTPayload): Promise<string> {
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key' }).sign(privateKey)
  }

  async function signAsProvider(claims: JWTPayload, header: { typ?: string; kid?: string } = {}): Promise<string> {
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: header.kid ?? 'test-key', ...(header.typ ? { typ: header.typ } : {}) }).sign(privateKey)
  }

  proxy.on('request', (incoming: IncomingMessage, outgoing: ServerResponse) => {
    if (control.down) {
      incoming.socket.destroy()
      return
    }
    void (async () => {
      const body = await readBody(incoming)
      const isToken = incoming.method === 'POST' && (incoming.url ?? '').startsWith('/token')
      if (isToken) control.tokenRequests++
      if (isToken && body.toString('utf8').includes('grant_type=refresh_token')) control.refreshRequests++
      if (isToken && control.replayNextTokenRequest) {
        control.replayNextTokenRequest = false
        control.tokenRequests++
        await forward(providerPort, incoming, body)
      }
      let answer = await forward(providerPort, incoming, body)
      const tamper = control.tamperNextIdToken
      if (isToken && tamper !== null && answer.status === 200) {
        control.tamperNextIdToken = null
        const tokens = JSON.parse(answer.body.toString('utf8')) as { id_token: string }
        tokens.id_token = await resign(tamper(decodeJwt(tokens.id_token)))
        answer = { ...answer, body: Buffer.from(JSON.stringify(tokens)) }
      }
      const headers: Record<string, string | string[] | undefined> = { ...answer.headers, 'content-length': String(answer.body.length) }
      delete headers['transfer-encoding']
      outgoing.writeHead(answer.status, headers)
      outgoing.end(answer.body)
    })().catch(() => outgoing.destroy())
  })

  t.teardown(async () => {
    await close(proxy)
    await close(providerServer)
  })

  async function authorize(authorizationUrl: string, account: string): Promise<URL> {
    const cookies = new Map<string, string>()
    const remember = (header: string | string[] | undefined) => {
      for (const line of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
        const pair = line.split(';')[0] ?? ''
        const eq = pair.indexOf('=')
        if (eq > 0) cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
      }
    }
    const cookieHeader = () => [...cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    let url = new URL(authorizationUrl)
    for (let hop = 0; hop < 12; hop++) {
      if (url.origin !== issuer) return url
      const response = await request(url, { method: 'GET', headers: { cookie: cookieHeader(), accept: 'text/html' } })
      remember(response.headers['set-cookie'])
      const text = await response.body.text()
      if (response.statusCode >= 300 && response.statusCode < 400) {
        url = new URL(String(response.headers.location), url)
        continue
      }
      const prompt = /name="prompt" value="(login|consent)"/.exec(text)?.[1]
      const action = /<form[^>]*action="([^"]+)"/.exec(text)?.[1]
      if (response.statusCode !== 200 || prompt === undefined || action === undefined) {
        throw new Error(`the provider answered ${response.statusCode} at ${url.pathname}: ${text.slice(0, 300)}`)
      }
      const fields: Record<string, string> = prompt === 'login' ? { prompt, login: account, password: 'any password' } : { prompt }
      const submitted = await request(new URL(action.replace(/&amp;/g, '&'), url), {
        method: 'POST',
        headers: { cookie: cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      })
      remember(submitted.headers['set-cookie'])
      const submittedText = await submitted.body.text()
      if (submitted.statusCode < 300 || submitted.statusCode >= 400) {
        throw new Error(`the provider answered ${submitted.statusCode} to the ${prompt} form: ${submittedText.slice(0, 300)}`)
      }
      url = new URL(String(submitted.headers.location), url)
    }
    throw new Error('too many redirects at the provider')
  }

  return Object.assign(control, { issuer, clientId, clientSecret, accounts, authorize, signAsProvider })
}
