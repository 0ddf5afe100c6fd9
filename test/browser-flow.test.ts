/**
 * The browser sign-in flow through a real server, driven like a browser: redirects followed
 * by hand, cookies kept in a small jar (SPEC §3, §5). A protected page sends the browser to
 * the login form, which keeps `next`; a wrong password shows the form again, the right one
 * sets the `__Host-` cookie and answers 303 to `next`; logout ends it. Around it: the
 * open-redirect matrix of the form's `next`, cross-origin form posts, and HTML escaping.
 */
import t, { type Test } from 'tap'
import type { Dispatcher } from 'undici'
import { safeNext } from '../src/core/redirects.js'
import { PASSKEY_SCRIPTS } from '../src/http/login-page.js'
import { isCleared, PASSWORD, register, setCookies, uniqueEmail } from './helpers/auth-client.js'
import { PUBLIC_URL, startTestGateway, type Response, type TestGateway } from './helpers/gateway.js'
import { startUpstream } from './helpers/upstream.js'

const ORIGIN = new URL(PUBLIC_URL).origin
const FORM = 'application/x-www-form-urlencoded'

/** Cookies as a browser keeps them for the gateway's origin: set, replaced and cleared by Set-Cookie. */
class CookieJar {
  readonly #cookies = new Map<string, string>()

  store(response: Response): void {
    for (const cookie of setCookies(response)) {
      if (isCleared(cookie) || cookie.value === '') this.#cookies.delete(cookie.name)
      else this.#cookies.set(cookie.name, cookie.value)
    }
  }

  get(name: string): string | undefined {
    return this.#cookies.get(name)
  }

  header(): Record<string, string> {
    if (this.#cookies.size === 0) return {}
    return { cookie: [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ') }
  }
}

interface Browser {
  jar: CookieJar
  /** One request with the jar's cookies; the jar takes the answer's Set-Cookie. */
  request(method: Dispatcher.HttpMethod, path: string, options?: { body?: string; headers?: Record<string, string> }): Promise<Response>
  /** A navigation: GET, then every redirect followed with GET (at most 5). */
  navigate(path: string): Promise<{ response: Response; path: string; hops: string[] }>
  /** Submits the login form as a browser on the gateway's page would. */
  submitLogin(fields: Record<string, string>, headers?: Record<string, string>): Promise<Response>
}

function browserFor(gw: TestGateway): Browser {
  const jar = new CookieJar()
  const request: Browser['request'] = async (method, path, options = {}) => {
    const response = await gw.call(method, path, {
      body: options.body,
      headers: { accept: 'text/html,application/xhtml+xml', ...jar.header(), ...options.headers },
    })
    jar.store(response)
    return response
  }
  return {
    jar,
    request,
    async navigate(start) {
      let path = start
      const hops: string[] = []
      for (let hop = 0; hop <= 5; hop++) {
        const response = await request('GET', path)
        if (response.status < 300 || response.status >= 400) return { response, path, hops }
        path = localTarget(String(response.headers.location))
        hops.push(path)
      }
      throw new Error(`too many redirects from ${start}`)
    },
    submitLogin(fields, headers = { origin: ORIGIN }) {
      return request('POST', '/auth/login', {
        body: new URLSearchParams(fields).toString(),
        headers: { 'content-type': FORM, ...headers },
      })
    },
  }
}

/** Where a Location sends the browser, as a path of the gateway; anything off-site throws. */
function localTarget(location: string): string {
  const url = new URL(location, `${ORIGIN}/`)
  if (url.origin !== ORIGIN) throw new Error(`redirected off-site to ${location}`)
  return url.pathname + url.search + url.hash
}

const ENTITIES: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" }
const unescapeHtml = (text: string): string => text.replace(/&(amp|lt|gt|quot|#39);/g, (entity) => ENTITIES[entity] ?? entity)

/** The `<input …>` tags of a page, each as its attributes. */
function inputs(html: string): Record<string, string>[] {
  return [...html.matchAll(/<input\b([^>]*)>/g)].map((match) =>
    Object.fromEntries([...(match[1] ?? '').matchAll(/([a-z-]+)(?:="([^"]*)")?/g)].map((a) => [a[1] ?? '', unescapeHtml(a[2] ?? '')])),
  )
}

/** The value of the form's hidden `next` field. */
function hiddenNext(t: Test, html: string): string | undefined {
  const fields = inputs(html).filter((input) => input.name === 'next')
  t.equal(fields.length, 1, 'one next field')
  t.equal(fields[0]?.type, 'hidden', 'the next field is hidden')
  return fields[0]?.value
}

/**
 * The page without the gateway's own script files (auth.mfa.passkey_login, on by default,
 * adds the passkey button's two): what is left must hold no script at all.
 */
function withoutOwnScripts(html: string): string {
  return html.replace(PASSKEY_SCRIPTS, '')
}

function assertLoginPage(t: Test, response: Response, status: number): void {
  t.equal(response.status, status, `the login page, ${status}`, { body: response.text.slice(0, 300) })
  t.match(String(response.headers['content-type']), /^text\/html/, 'HTML')
  const csp = String(response.headers['content-security-policy'] ?? '')
  t.ok(csp, 'a Content-Security-Policy')
  const directives = new Map(
    csp
      .split(';')
      .map((part) => part.trim().split(/\s+/))
      .filter((words) => words[0])
      .map((words) => [words[0]?.toLowerCase() ?? '', words.slice(1)]),
  )
  const scripts = directives.get('script-src') ?? directives.get('default-src')
  t.ok(scripts, 'scripts are governed by script-src or default-src')
  t.notOk(scripts?.some((source) => /unsafe-inline|unsafe-eval|unsafe-hashes|\*|data:/i.test(source)), `no inline or foreign scripts (${scripts?.join(' ')})`)
  t.ok(directives.has('frame-ancestors') || /deny|sameorigin/i.test(String(response.headers['x-frame-options'])), 'not framable')
  t.notOk(/<script/i.test(withoutOwnScripts(response.text)), 'no <script in the page but the passkey button’s files')
  t.notOk(/\son[a-z]+\s*=/i.test(response.text), 'no inline event handlers')
  t.match(response.text, /<form[^>]*method="post"[^>]*action="\/auth\/login"/, 'a form posting to /auth/login')
  const labels = [...response.text.matchAll(/<label\b[^>]*\bfor="([^"]+)"/g)].map((m) => m[1])
  const ids = new Set(inputs(response.text).map((input) => input.id))
  t.same(labels.sort(), ['email', 'password'], 'a label for the email and the password')
  for (const label of labels) t.ok(label !== undefined && ids.has(label), `label for="${label}" names an input`)
  const named = new Map(inputs(response.text).map((input) => [input.name, input]))
  t.equal(named.get('password')?.type, 'password', 'the password input is a password field')
  t.equal(response.headers['cache-control'], 'no-store')
}

t.test('the browser sign-in flow', async (t) => {
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = [
        { name: 'app', match: '/app', upstream: upstream.url, auth: 'required', permissions: ['app:read'] },
        { name: 'whoami', match: '/whoami', upstream: upstream.url, auth: 'required' },
      ]
    },
  })
  const email = uniqueEmail('browser')
  const user = await register(gw, email)

  await t.test('protected page → login form → wrong password → right password → the page → logout', async (t) => {
    const browser = browserFor(gw)
    const first = await browser.request('GET', '/app/x?y=1')
    t.equal(first.status, 302, 'a protected page sends a browser to the login page')
    t.equal(first.headers.location, `/auth/login?next=${encodeURIComponent('/app/x?y=1')}`)

    const page = await browser.request('GET', localTarget(String(first.headers.location)))
    assertLoginPage(t, page, 200)
    t.equal(hiddenNext(t, page.text), '/app/x?y=1', 'the form carries next')
    t.notOk(page.headers['set-cookie'], 'showing the form sets no cookie')

    const wrong = await browser.submitLogin({ email, password: 'not the right passphrase', next: '/app/x?y=1' })
    assertLoginPage(t, wrong, 401)
    t.match(wrong.text, /role="alert"/, 'an error announced to assistive technology')
    t.notOk(wrong.headers['set-cookie'], 'no Set-Cookie on failure')
    t.equal(hiddenNext(t, wrong.text), '/app/x?y=1', 'next survives a failed attempt')
    t.equal(inputs(wrong.text).find((input) => input.name === 'email')?.value, email, 'the email is kept')
    t.notOk(inputs(wrong.text).find((input) => input.name === 'password')?.value, 'the password is not')
    t.equal(browser.jar.get('__Host-gh_session'), undefined)

    const right = await browser.submitLogin({ email, password: PASSWORD, next: '/app/x?y=1' })
    t.equal(right.status, 303, 'the right password: 303')
    t.equal(right.headers.location, '/app/x?y=1', 'to next')
    const cookies = setCookies(right)
    t.equal(cookies.length, 1, 'one cookie')
    const [cookie] = cookies
    t.equal(cookie?.name, '__Host-gh_session')
    t.match(cookie?.value, /^[A-Za-z0-9_-]{43}$/)
    t.equal(cookie?.attributes.httponly, true, 'HttpOnly')
    t.equal(cookie?.attributes.secure, true, 'Secure')
    t.equal(String(cookie?.attributes.samesite).toLowerCase(), 'lax', 'SameSite=Lax')
    t.equal(cookie?.attributes.path, '/', 'Path=/')
    t.notOk('domain' in (cookie?.attributes ?? {}), 'no Domain')

    const landed = await browser.navigate(localTarget(String(right.headers.location)))
    t.equal(landed.response.status, 200, 'the page itself')
    t.same(landed.hops, [], 'no further redirect')
    const got = upstream.last()
    t.equal(got.url, '/app/x?y=1')
    t.equal(got.headers['x-auth-user-id'], user.id)
    t.equal(got.headers['x-auth-email'], email)
    t.equal(got.headers['x-auth-method'], 'session')
    t.ok(got.headers['x-auth-assertion'], 'a signed assertion')
    t.notOk(String(got.headers.cookie ?? '').includes('gh_session'), 'the session cookie never reaches the upstream')

    const whoami = await browser.navigate('/whoami')
    t.equal(whoami.response.status, 200, 'the cookie works on every route')

    const forged = await browser.request('POST', '/auth/logout', { headers: { origin: 'https://evil.example' } })
    t.equal(forged.status, 403, 'a cross-origin logout is refused')
    const noOrigin = await browser.request('POST', '/auth/logout')
    t.equal(noOrigin.status, 403, 'a logout without Origin or Referer is refused')
    t.equal((await browser.navigate('/whoami')).response.status, 200, 'still signed in')

    const stolen = browser.jar.get('__Host-gh_session')
    const logout = await browser.request('POST', '/auth/logout', { headers: { origin: ORIGIN } })
    t.equal(logout.status, 204, 'logout: 204')
    t.ok(setCookies(logout).some((c) => c.name === '__Host-gh_session' && isCleared(c)), 'the cookie is cleared')
    t.equal(browser.jar.get('__Host-gh_session'), undefined)

    const after = await browser.navigate('/app/x?y=1')
    t.same(after.hops, [`/auth/login?next=${encodeURIComponent('/app/x?y=1')}`], 'the next protected page redirects to login again')
    t.equal(after.response.status, 200)
    const replayed = await gw.call('GET', '/app/x', { headers: { accept: 'text/html', cookie: `__Host-gh_session=${stolen ?? ''}` } })
    t.equal(replayed.status, 302, 'the old cookie value is dead on the server too')
  })

  await t.test('the form answers 303 to / for every unsafe next', async (t) => {
    const unsafe = [
      'https://evil.example',
      'http://evil.example/x',
      '//evil.example',
      '///evil.example',
      '/\\evil.example',
      '\\/evil.example',
      '\\\\evil.example',
      // Decoded once by a later hop, these are `//evil.example` and `/\evil.example`: refused.
      '/%2Fevil.example',
      '/%2F%2Fevil.example',
      '/%2fevil.example',
      '%2F%2Fevil.example',
      '/%5Cevil.example',
      '/%5cevil.example',
      '/%252F%252Fevil.example',
      'javascript:alert(1)',
      'JaVaScRiPt:alert(1)',
      'data:text/html,x',
      '/\t/evil.example',
      '/\n/evil.example',
      '/\r\n/evil.example',
      ' //evil.example',
      '\u0000//evil.example',
      'https:evil.example',
      'evil.example',
      '',
    ]
    const browser = browserFor(gw)
    for (const next of [...unsafe, undefined]) {
      const label = next === undefined ? 'missing' : JSON.stringify(next)
      const fields: Record<string, string> = { email, password: PASSWORD }
      if (next !== undefined) fields.next = next
      const response = await browser.submitLogin(fields)
      t.equal(response.status, 303, `${label}: 303`, { body: response.text.slice(0, 200) })
      t.equal(response.headers.location, '/', `${label}: to / exactly`)
      const page = await gw.call('GET', `/auth/login${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`)
      t.equal(page.status, 200)
      t.equal(hiddenNext(t, page.text), '/', `${label}: the form's hidden next is /`)
    }
  })

  await t.test('the form keeps a safe next', async (t) => {
    const safe = ['/whoami', '/app/x?y=1&z=2', '/a#frag', '/app/%E4%B8%AD', '/app/x?next=//evil.example', '/', '/app/..;/x']
    const browser = browserFor(gw)
    for (const next of safe) {
      const response = await browser.submitLogin({ email, password: PASSWORD, next })
      t.equal(response.status, 303, `${next}: 303`)
      t.equal(response.headers.location, next, `${next}: kept`)
      const target = new URL(String(response.headers.location), `${ORIGIN}/`)
      t.equal(target.origin, ORIGIN, `${next}: stays on the gateway`)
    }
    // A non-ASCII next (`/auth/login?next=/app/中文` as typed, decoded by the query parser)
    // cannot go into a Location header as is: it is sent percent-encoded, never as a 500.
    const page = await gw.call('GET', `/auth/login?next=${encodeURIComponent('/app/中文?q=é')}`)
    t.equal(hiddenNext(t, page.text), '/app/中文?q=é', 'the form keeps it as typed')
    const unicode = await browser.submitLogin({ email, password: PASSWORD, next: '/app/中文?q=é' })
    t.equal(unicode.status, 303, 'a non-ASCII next: 303', { body: unicode.text.slice(0, 200) })
    t.equal(unicode.headers.location, '/app/%E4%B8%AD%E6%96%87?q=%C3%A9', 'percent-encoded UTF-8, on the gateway')
  })

  await t.test('what safeNext keeps is a local path that no decoding turns into another host', async (t) => {
    // The decision table above, checked against the function the form uses.
    for (const candidate of ['/%2Fevil.example', '/%2F%2Fevil.example', '/%5Cevil.example', '/%252F%252Fevil.example']) {
      const kept = safeNext(candidate)
      t.ok(kept === '/' || (kept.startsWith('/') && !kept.startsWith('//') && !decodeURIComponent(kept).startsWith('//')), candidate)
    }
  })

  await t.test('a cross-origin form post is refused and sets no cookie', async (t) => {
    const browser = browserFor(gw)
    const fields = { email, password: PASSWORD, next: '/whoami' }
    const evil = await browser.submitLogin(fields, { origin: 'https://evil.example' })
    t.equal(evil.status, 403, 'Origin evil: 403')
    t.notOk(evil.headers['set-cookie'], 'no cookie')
    const crossSite = await browser.submitLogin(fields, { 'sec-fetch-site': 'cross-site' })
    t.equal(crossSite.status, 403, 'Sec-Fetch-Site: cross-site without Origin: 403')
    t.notOk(crossSite.headers['set-cookie'], 'no cookie')
    const nullOrigin = await browser.submitLogin(fields, { origin: 'null' })
    t.equal(nullOrigin.status, 403, 'Origin null (a sandboxed frame): 403')
    t.equal(browser.jar.get('__Host-gh_session'), undefined, 'never signed in')
  })

  await t.test('a second sign-in replaces the browser’s session', async (t) => {
    const browser = browserFor(gw)
    t.equal((await browser.submitLogin({ email, password: PASSWORD, next: '/whoami' })).status, 303)
    const first = browser.jar.get('__Host-gh_session')
    const other = uniqueEmail('other')
    await register(gw, other)
    t.equal((await browser.submitLogin({ email: other, password: PASSWORD, next: '/whoami' })).status, 303)
    const second = browser.jar.get('__Host-gh_session')
    t.ok(first && second && first !== second, 'a new session token')
    t.equal((await browser.navigate('/whoami')).response.status, 200)
    t.equal(upstream.last().headers['x-auth-email'], other, 'signed in as the second user')
    const old = await gw.call('GET', '/whoami', { headers: { accept: 'text/html', cookie: `__Host-gh_session=${first ?? ''}` } })
    t.equal(old.status, 302, 'the session the browser had before is ended')
  })

  await t.test('a malformed form post shows the form again, never a 500', async (t) => {
    const browser = browserFor(gw)
    const bodies = [
      'password=x&next=%2Fwhoami',
      `email=${encodeURIComponent(email)}&email=b%40example.com&password=x`,
      `email=${encodeURIComponent(email)}&password=a&password=b`,
      `email=${encodeURIComponent(email)}&password=${encodeURIComponent(PASSWORD)}&next=%2Fa&next=%2F%2Fevil.example`,
      `email=${encodeURIComponent(email)}&password=${encodeURIComponent(PASSWORD)}&extra=1`,
      '',
    ]
    for (const body of bodies) {
      const response = await browser.request('POST', '/auth/login', { body, headers: { 'content-type': FORM, origin: ORIGIN } })
      t.ok(response.status >= 400 && response.status < 500, `${JSON.stringify(body)}: a 4xx (${response.status})`, { body: response.text.slice(0, 200) })
      t.notOk(response.headers['set-cookie'], 'no cookie')
      t.notOk(String(response.headers.location ?? '').includes('evil'), 'no redirect off-site')
    }
    t.equal(browser.jar.get('__Host-gh_session'), undefined)
  })

  await t.test('next, email and errors are escaped in the page', async (t) => {
    const hostile = ['/x"><script>alert(1)</script>', "/x'autofocus='", '/x"onfocus="alert(1)', '/x</textarea><img/src=x>']
    for (const next of hostile) {
      const page = await gw.call('GET', `/auth/login?next=${encodeURIComponent(next)}`)
      t.equal(page.status, 200)
      t.notOk(/<script|<img|onfocus="|autofocus='/i.test(withoutOwnScripts(page.text)), `${JSON.stringify(next)} is not reflected raw`)
      const value = hiddenNext(t, page.text)
      t.ok(value === next || value === '/', `the field holds the value itself or / (${value})`)
    }
    const browser = browserFor(gw)
    const reflected = await browser.submitLogin({ email: '"><script>alert(1)</script>@example.com', password: 'x', next: '/x"><script>' })
    t.ok(reflected.status >= 400 && reflected.status < 500, `a refused attempt (${reflected.status})`)
    t.notOk(/<script/i.test(withoutOwnScripts(reflected.text)), 'the email and next are escaped in the error page')
  })
})
