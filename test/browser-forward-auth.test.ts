/**
 * The browser journey of forward auth (SPEC §4b) through the real nginx of Debian's package,
 * configured from examples/forward-auth/nginx.conf as edge-forward-auth-proxies does: Debian's
 * chromium, driven by playwright-core, with every *.gatehouse.test host mapped to 127.0.0.1
 * (--host-resolver-rules; the ports are the tests' own, so the URLs carry them), opens a page
 * of app.gatehouse.test without a credential; nginx's auth_request gets Gatehouse's 401 with a
 * Location and turns it into a redirect to the login page on auth.gatehouse.test; the browser
 * signs in with the form and lands back on exactly the URL it first asked for, which now
 * reaches the upstream with the identity headers and an assertion bound to that URL. The
 * session cookie is one of the whole domain (Domain=gatehouse.test). A screenshot of the final
 * page (the upstream's echo of the original path) is kept as
 * test-artifacts/browser-forward-auth.png, one of the login page it was sent to as
 * browser-forward-auth-login.png.
 */
import { existsSync } from 'node:fs'
import { decodeJwt } from 'jose'
import type { Response as PageResponse } from 'playwright-core'
import t from 'tap'
import { createVerifier } from '../src/verify.js'
import { PASSWORD, register, uniqueEmail } from './helpers/auth-client.js'
import { ARTIFACTS, chromiumMissing, launchChromium, newBrowserContext } from './helpers/chromium.js'
import { APP_HOST, COOKIE_DOMAIN, forwardAuthGateway, haveProxy, startNginx } from './helpers/forward-auth-proxy.js'
import { testCertificate } from './helpers/gateway.js'
import { startUpstream } from './helpers/upstream.js'

const SCREENSHOT = `${ARTIFACTS}browser-forward-auth.png`
const LOGIN_SCREENSHOT = `${ARTIFACTS}browser-forward-auth-login.png`
/** The browser's resolver: the app's and the gateway's host are both this machine. */
const HOST_RULES = `--host-resolver-rules=MAP *.${COOKIE_DOMAIN} 127.0.0.1`

const skip = chromiumMissing() || (haveProxy('nginx') ? false : 'nginx is not installed (apt-get install -y nginx)')

t.test('a browser without a session is sent to the login page by nginx and back to the original URL', { skip }, async (t) => {
  const upstream = await startUpstream(t)
  const gw = await forwardAuthGateway(t, 'original')
  const nginxPort = await startNginx(t, gw, upstream)
  const email = uniqueEmail('forward-auth-browser')
  const user = await register(gw, email)
  const publicUrl = gw.config.server.public_url
  const original = `https://${APP_HOST}:${nginxPort}/some/path?q=1`

  const browser = await launchChromium(t, [HOST_RULES])
  const context = await newBrowserContext(t, browser)
  const page = await context.newPage()
  // CSP refusals and script errors show up in the console (the 404 is a favicon's).
  const problems: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource: the server responded with a status of 404')) problems.push(message.text())
  })
  page.on('pageerror', (error) => problems.push(error.message))
  const loginAnswers: PageResponse[] = []
  page.on('response', (response) => {
    if (response.request().method() === 'POST' && new URL(response.url()).pathname === '/auth/login') loginAnswers.push(response)
  })

  // 1. No credential: nginx asks Gatehouse, gets a 401 with a Location, and redirects there.
  const first = await page.goto(original)
  t.equal(first?.status(), 200, 'the login page answers 200 after the redirect')
  const loginUrl = new URL(page.url())
  t.equal(loginUrl.origin + loginUrl.pathname, `${publicUrl}/auth/login`, "sent to the login page on the gateway's host")
  t.equal(loginUrl.searchParams.get('next'), original, 'with next = the original absolute URL')
  const redirect = first?.request().redirectedFrom()
  t.equal(redirect?.url(), original, 'the redirect came from the app URL')
  t.equal((await redirect?.response())?.status(), 302, 'nginx answered it with a 302')
  t.equal(await page.title(), 'Sign in · Gatehouse', "the gateway's sign-in form")
  t.equal(await page.locator('input[name="next"]').inputValue(), original, 'next is in the form')
  t.equal(upstream.received.length, 0, 'nothing reached the upstream')
  await page.screenshot({ path: LOGIN_SCREENSHOT, fullPage: true })

  // 2. Sign in with the form: back on exactly the original URL.
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(PASSWORD)
  await Promise.all([page.waitForURL(original), page.getByRole('button', { name: 'Sign in', exact: true }).click()]).catch((err: Error) => {
    throw new Error(`${err.message}\nbrowser console: ${problems.join(' | ')}`)
  })
  const back = page.url()
  t.equal(back, original, 'landed back on the original URL, query included')

  // 3. The session cookie is the domain's, set by the login on auth.gatehouse.test.
  t.equal(loginAnswers.length, 1, 'one sign-in')
  const setCookie = (await loginAnswers[0]?.headersArray())?.filter((header) => header.name.toLowerCase() === 'set-cookie').map((header) => header.value) ?? []
  const session = setCookie.find((value) => value.startsWith('__Secure-gh_session='))
  t.ok(session, `the login set __Secure-gh_session (cookies set: ${setCookie.map((value) => value.split('=', 1)[0]).join(', ')})`)
  t.match(session, new RegExp(`; Domain=${COOKIE_DOMAIN.replace('.', '\\.')}(;|$)`, 'i'), `with Domain=${COOKIE_DOMAIN}`)
  t.match(await context.cookies(original), [{ name: '__Secure-gh_session', domain: `.${COOKIE_DOMAIN}`, secure: true, httpOnly: true }], 'and the browser sends it to the app host')

  // 4. The upstream received the original request with the identity and a verifiable assertion.
  // Chromium also asks the app host for /favicon.ico once signed in; that one is not the page.
  const pages = upstream.received.filter((request) => request.url !== '/favicon.ico')
  t.equal(pages.length, 1, 'the upstream was reached once for the page, after signing in')
  const received = pages[0] ?? upstream.last()
  t.equal(received.method, 'GET')
  t.equal(received.url, '/some/path?q=1', 'the original path and query')
  t.equal(received.headers['x-auth-user-id'], user.id, 'X-Auth-User-Id')
  t.equal(received.headers['x-auth-email'], email, 'X-Auth-Email')
  t.equal(received.headers['x-auth-method'], 'session', 'X-Auth-Method: the cookie signed it in')
  t.equal(received.headers['x-auth-roles'], 'viewer', 'X-Auth-Roles')
  const assertion = String(received.headers['x-auth-assertion'])
  t.match(decodeJwt(assertion), { sub: user.id, aud: 'app', htm: 'GET', htu: '/some/path?q=1' }, 'bound to the original method and path')
  const verifier = createVerifier({ jwksUrl: `${gw.url}/.well-known/jwks.json`, issuer: publicUrl, audience: 'app', ca: (await testCertificate()).cert, cooldownMs: 0 })
  const identity = await verifier({ method: received.method, url: received.url, headers: received.headers })
  t.equal(identity.id, user.id, "the assertion verifies with the gateway's JWKS")
  t.match(await page.locator('body').textContent(), '/some/path?q=1', "the page is the upstream's answer")

  t.same(problems, [], 'no CSP refusal or script error on the way')
  await page.screenshot({ path: SCREENSHOT, fullPage: true })
  t.ok(existsSync(SCREENSHOT) && existsSync(LOGIN_SCREENSHOT), `screenshots kept: ${SCREENSHOT}, ${LOGIN_SCREENSHOT}`)
})
