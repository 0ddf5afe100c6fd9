/**
 * A real browser through a real gateway (SPEC §3, §5): Debian's chromium, driven by
 * playwright-core, opens a protected page of the whoami demo upstream, is sent to the login
 * page, signs in with the form, lands back on whoami showing the identity it received and
 * that its signed assertion verified against the gateway's JWKS and a live WebSocket (cookie
 * auth) open through the gateway, signs out in a second tab, which closes that socket (1008),
 * and is sent to the login page again. Screenshots of the signed-in page and of the page once
 * its socket was closed are kept as test-artifacts/browser-login.png and
 * browser-websocket-closed.png. Also: the API docs (/docs) render under their CSP.
 *
 * Without /usr/bin/chromium the test skips, with the reason; with GATEHOUSE_REQUIRE_BACKENDS=1
 * (CI, whose .ci/run installs chromium) it fails instead.
 */
import { existsSync } from 'node:fs'
import t, { type Test } from 'tap'
import { startWhoami } from '../examples/whoami/server.js'
import { PASSWORD, register, uniqueEmail } from './helpers/auth-client.js'
import { ARTIFACTS, chromiumMissing, launchChromium, newBrowserContext } from './helpers/chromium.js'
import { startTestGateway, testCertificate, type TestGateway } from './helpers/gateway.js'
import { freePort } from './helpers/private-redis.js'

const SCREENSHOT = `${ARTIFACTS}browser-login.png`
const SOCKET_SCREENSHOT = `${ARTIFACTS}browser-websocket-closed.png`

/**
 * The gateway on a port chosen first, so that public_url is the very origin the browser uses
 * (cookies, the CSRF origin check and the assertions' `iss` depend on it), with whoami behind
 * `/whoami/`, auth required, verifying assertions with the gateway's JWKS.
 */
async function startStack(t: Test): Promise<{ gw: TestGateway; origin: string }> {
  const port = await freePort()
  const origin = `https://127.0.0.1:${port}`
  const whoami = await startWhoami({
    verifier: { jwksUrl: `${origin}/.well-known/jwks.json`, issuer: origin, audience: 'whoami', ca: (await testCertificate()).cert },
  })
  t.teardown(() => whoami.close())
  const gw = await startTestGateway(t, {
    port,
    configure: (raw) => {
      raw.server.public_url = origin
      raw.routes = [{ name: 'whoami', match: '/whoami/', upstream: whoami.url, auth: 'required', websocket: true }]
    },
  })
  t.equal(gw.url, origin, 'the gateway listens at its public_url')
  return { gw, origin }
}

const missing = chromiumMissing()

t.test('a browser signs in through the gateway and out again', { skip: missing }, async (t) => {
  const { gw, origin } = await startStack(t)
  const email = uniqueEmail('chromium')
  await register(gw, email)
  const browser = await launchChromium(t)
  const context = await newBrowserContext(t, browser)
  const page = await context.newPage()
  const protectedPage = `${origin}/whoami/?from=browser`

  // 1. A protected page, signed out: the gateway sends the browser to its login page.
  const first = await page.goto(protectedPage)
  t.equal(first?.status(), 200, 'the login page answers 200 after the redirect')
  const loginUrl = new URL(page.url())
  t.equal(loginUrl.origin + loginUrl.pathname, `${origin}/auth/login`, 'sent to the login page')
  t.equal(loginUrl.searchParams.get('next'), '/whoami/?from=browser', 'which keeps where the browser was going')
  t.equal(await page.locator('input[name="next"]').inputValue(), '/whoami/?from=browser', 'next is in the form')
  t.equal(await page.title(), 'Sign in · Gatehouse')

  // 2. A wrong password: the form again, with the reason, and no session.
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill('not the password at all, sorry')
  await Promise.all([page.waitForURL(`${origin}/auth/login`), page.getByRole('button', { name: 'Sign in', exact: true }).click()])
  t.equal(await page.getByRole('alert').textContent(), 'The email or password is not right.', 'the reason is shown')
  t.equal(await page.getByLabel('Email').inputValue(), email, 'the email is kept')
  t.same((await context.cookies()).map((c) => c.name), [], 'no cookie after a failed sign-in')

  // 3. The right password: back on the protected page, signed in.
  await page.getByLabel('Password').fill(PASSWORD)
  await Promise.all([page.waitForURL(protectedPage), page.getByRole('button', { name: 'Sign in', exact: true }).click()])
  t.equal(page.url(), protectedPage, 'landed back where the browser was going')
  const cookies = await context.cookies()
  t.match(cookies, [{ name: '__Host-gh_session', httpOnly: true, secure: true, sameSite: 'Lax', path: '/' }], 'the session cookie')

  // 4. whoami shows the identity it received, and that its signature verified.
  const verdict = page.locator('p.ok')
  t.equal(await verdict.count(), 1, 'whoami reports a verified assertion')
  t.match(await verdict.textContent(), `Assertion verified: ${email}`)
  t.match(await verdict.textContent(), 'via session')
  t.equal(await page.locator('p.bad').count(), 0, 'and nothing unverified')
  const identityRow = (name: string) => page.locator('tr', { has: page.locator('th', { hasText: new RegExp(`^${name}$`) }) }).locator('td')
  t.equal(await identityRow('x-auth-email').textContent(), email, 'X-Auth-Email')
  t.equal(await identityRow('x-auth-method').textContent(), 'session', 'X-Auth-Method')
  t.equal(await identityRow('x-auth-roles').textContent(), 'viewer', 'X-Auth-Roles')
  t.notOk(await page.locator('td', { hasText: cookies[0]?.value ?? '-' }).count(), 'the session cookie never reaches the upstream')
  await page.screenshot({ path: SCREENSHOT, fullPage: true })
  t.ok(existsSync(SCREENSHOT), `screenshot kept: ${SCREENSHOT}`)

  // 5. whoami's page has opened a WebSocket through the gateway with the cookie (and the page's
  // Origin), and the echo reports the same verified identity for the handshake.
  const live = page.locator('#live-status')
  await page.locator('#live-status', { hasText: /^open as / }).waitFor()
  t.match(await live.textContent(), `open as ${email} (assertion verified, via session)`, 'the live socket is open as the signed-in user')
  await page.locator('#live-log li').first().waitFor()
  t.match(await page.locator('#live-log li').first().textContent(), /echo: ping \d+/, 'and echoes')

  // 6. Sign out in a second tab with whoami's own button (a form post to /auth/logout with the
  // cookie and Origin): the first tab's socket is closed by the gateway with 1008.
  const second = await context.newPage()
  await second.goto(protectedPage)
  await Promise.all([second.waitForURL(/\/auth\/login/), second.getByRole('button', { name: 'Sign out' }).click()])
  t.equal(new URL(second.url()).pathname, '/auth/login', 'the sign-out button lands on the login page')
  t.same((await context.cookies()).map((c) => c.name), [], 'the cookie is cleared')
  await page.locator('#live-status', { hasText: /^closed/ }).waitFor()
  t.equal(await live.textContent(), 'closed (1008: credential ended)', "the first tab's socket was closed with 1008")
  await page.screenshot({ path: SOCKET_SCREENSHOT, fullPage: true })
  t.ok(existsSync(SOCKET_SCREENSHOT), `screenshot kept: ${SOCKET_SCREENSHOT}`)

  // 6. The protected page sends the browser to the login page again.
  await page.goto(protectedPage)
  t.equal(new URL(page.url()).pathname, '/auth/login', 'signed out: the protected page sends to login again')
  t.equal(await page.locator('p.ok').count(), 0, 'whoami is not shown')
})

t.test('the API docs render in a browser under their CSP', { skip: missing }, async (t) => {
  const { origin } = await startStack(t)
  const browser = await launchChromium(t)
  const context = await newBrowserContext(t, browser)
  const page = await context.newPage()
  const problems: string[] = []
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text())
  })
  page.on('pageerror', (error) => problems.push(error.message))

  const response = await page.goto(`${origin}/docs`)
  t.equal(response?.status(), 200)
  t.match(response?.headers()['content-security-policy'], /script-src 'self'/, 'served with a CSP')
  await page.locator('.swagger-ui .info .title').waitFor()
  t.match(await page.locator('.swagger-ui .info .title').textContent(), /Gatehouse/, 'Swagger UI shows the document')
  await page.locator('.opblock-summary-path[data-path="/auth/login"]').first().waitFor()
  t.ok(await page.locator('.opblock-summary-path[data-path="/auth/me"]').count(), 'the operations are listed')
  t.same(problems, [], 'no script or CSP errors in the console')
})
