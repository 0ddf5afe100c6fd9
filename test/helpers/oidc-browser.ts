/**
 * A browser for OpenID Connect tests: cookies kept per site, redirects followed by hand, and
 * the whole sign-in (gateway start → provider login and consent → gateway callback) in one
 * call. The provider side is test/helpers/oidc-provider.ts.
 */
import type { Dispatcher } from 'undici'
import { isCleared, setCookies } from './auth-client.js'
import { PUBLIC_URL, type Response, type TestGateway } from './gateway.js'
import type { TestProvider } from './oidc-provider.js'

export const SESSION_COOKIE = '__Host-gh_session'

/** Cookies a browser keeps for the gateway's origin. */
export class CookieJar {
  readonly cookies = new Map<string, string>()

  store(response: Response): void {
    for (const cookie of setCookies(response)) {
      if (isCleared(cookie) || cookie.value === '') this.cookies.delete(cookie.name)
      else this.cookies.set(cookie.name, cookie.value)
    }
  }

  header(): Record<string, string> {
    return this.cookies.size === 0 ? {} : { cookie: [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ') }
  }
}

export interface Browser {
  jar: CookieJar
  /** The gateway it talks to. */
  gw: TestGateway
  request(method: Dispatcher.HttpMethod, path: string, headers?: Record<string, string>): Promise<Response>
  /** The session token of its cookie, if signed in. */
  readonly sessionToken: string | undefined
}

export function browserFor(gw: TestGateway, jar = new CookieJar()): Browser {
  return {
    jar,
    gw,
    async request(method, path, headers = {}) {
      const response = await gw.call(method, path, { headers: { accept: 'text/html,application/xhtml+xml', ...jar.header(), ...headers } })
      jar.store(response)
      return response
    },
    get sessionToken() {
      return jar.cookies.get(SESSION_COOKIE)
    },
  }
}

/** A gateway URL as the path (and query) to request on the test listener; anything off-site throws. */
export function gatewayPath(location: string | URL): string {
  const origin = new URL(PUBLIC_URL).origin
  const url = new URL(location, `${origin}/`)
  if (url.origin !== origin) throw new Error(`not the gateway: ${url.href}`)
  return url.pathname + url.search
}

export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Waits until the gateway has discovered each named provider. */
export function discovered(gw: TestGateway, ...names: string[]): Promise<void> {
  return waitUntil(`${names.join(', ')} discovered`, () => names.every((name) => gw.runtime.oidc.get(name)?.ready === true))
}

/**
 * The whole sign-in as `account` with provider `name`: resolves the callback's answer (303
 * and a session cookie when it succeeded, a refusal page otherwise).
 */
export async function signInWith(browser: Browser, idp: TestProvider, name: string, account: string): Promise<Response> {
  const start = await browser.request('GET', `/auth/oidc/${name}/start`)
  if (start.status !== 302) throw new Error(`start ${name}: ${start.status} ${start.text.slice(0, 200)}`)
  const callback = await idp.authorize(String(start.headers.location), account)
  return browser.request('GET', gatewayPath(callback))
}
