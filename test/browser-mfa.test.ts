/**
 * Two-step sign-in in a real browser (SPEC §3, §5), without JavaScript on the gateway's pages:
 * Debian's chromium sets up an authenticator app from the account page (the QR code is shown,
 * the first code turns it on, the recovery codes are shown once), is sent to the step-up page
 * by a route with `mfa: required` and comes back with a verified assertion, then signs in
 * again with two steps, finishing with a recovery code. TOTP codes come from the secret the
 * page shows, on the real clock: the set-up uses the current step, step-up the next one (one
 * step of drift is accepted), so that no code is used twice.
 *
 * Without /usr/bin/chromium the test skips; with GATEHOUSE_REQUIRE_BACKENDS=1 it fails instead.
 */
import t from 'tap'
import { startWhoami } from '../examples/whoami/server.js'
import { totpCode } from '../src/core/mfa/index.js'
import { PASSWORD, register, uniqueEmail } from './helpers/auth-client.js'
import { chromiumMissing, launchChromium, newBrowserContext } from './helpers/chromium.js'
import { startTestGateway, testCertificate } from './helpers/gateway.js'
import { freePort } from './helpers/private-redis.js'

t.test('a browser sets up an authenticator app, steps up, and signs in with two steps', { skip: chromiumMissing() }, async (t) => {
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
      raw.routes = [{ name: 'whoami', match: '/whoami/', upstream: whoami.url, mfa: 'required' }]
    },
  })
  const email = uniqueEmail('chromium-mfa')
  await register(gw, email)
  const browser = await launchChromium(t)
  const context = await newBrowserContext(t, browser, { javaScriptEnabled: false })
  const page = await context.newPage()

  // 1. Sign in with the password (no second factor yet) and open the account page.
  await page.goto(`${origin}/auth/login?next=%2Fauth%2Faccount`)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(PASSWORD)
  await Promise.all([page.waitForURL(`${origin}/auth/account`), page.getByRole('button', { name: 'Sign in' }).click()])

  // 2. Set up the app: the QR code and the key, then the first code turns it on.
  await Promise.all([page.waitForURL(`${origin}/auth/account/mfa/totp`), page.getByRole('button', { name: 'Set up an authenticator app' }).click()])
  t.ok(await page.locator('.qr svg').isVisible(), 'the QR code is shown')
  const secret = (await page.locator('.token-box .hint code').textContent())?.trim() ?? ''
  t.match(secret, /^[A-Z2-7]{32}$/, 'the key, for typing in')
  await page.getByLabel('Code from the app').fill(totpCode(secret, Date.now()))
  await Promise.all([page.waitForURL(`${origin}/auth/account/mfa/totp/confirm`), page.getByRole('button', { name: 'Turn on' }).click()])
  const codes = (await page.locator('.recovery-codes code').allTextContents()).map((code) => code.trim())
  t.equal(codes.length, 10, 'the ten recovery codes, shown once')

  // 3. A route with mfa: required sends this password-only session to step-up, and back.
  await page.goto(`${origin}/whoami/?from=browser`)
  t.equal(new URL(page.url()).pathname, '/auth/login/step-up', 'sent to the step-up page')
  await page.getByLabel('Code from your authenticator app').fill(totpCode(secret, Date.now() + 30_000))
  await Promise.all([page.waitForURL(`${origin}/whoami/?from=browser`), page.getByRole('button', { name: 'Verify' }).click()])
  t.match(await page.locator('p.ok').textContent(), `Assertion verified: ${email}`, 'whoami verified the assertion')

  // 4. Signed out, the login takes two steps; a recovery code finishes it.
  await context.clearCookies()
  await page.goto(`${origin}/whoami/`)
  t.equal(new URL(page.url()).pathname, '/auth/login')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(PASSWORD)
  await Promise.all([page.waitForURL(`${origin}/auth/login`), page.getByRole('button', { name: 'Sign in' }).click()])
  t.equal(await page.title(), 'Two-step sign-in · Gatehouse', 'the second page')
  t.same((await context.cookies()).map((c) => c.name), [], 'no session yet')
  await page.getByText('Use a recovery code').click()
  await page.getByLabel('Recovery code').fill(codes[0] as string)
  await Promise.all([page.waitForURL(`${origin}/whoami/`), page.getByRole('button', { name: 'Use recovery code' }).click()])
  t.match(await page.locator('p.ok').textContent(), `Assertion verified: ${email}`, 'signed in, and the route with mfa: required lets the session through')
})
