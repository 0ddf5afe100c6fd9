/**
 * Passkeys in a real browser (SPEC §3, §5): Debian's chromium, driven by playwright-core,
 * with a CDP virtual authenticator (WebAuthn.addVirtualAuthenticator: CTAP2, internal,
 * resident keys, user verification) standing in for the device. Through a real gateway:
 * sign in with a password → register a passkey on the account page → step up to a route with
 * `mfa: required` with it → sign out → sign in with password + passkey (the second step) →
 * sign out → sign in with the passkey alone → remove it.
 * The pages load only the gateway's own scripts under their strict CSP. Screenshots of each
 * step are kept in test-artifacts/passkeys-*.png (gitignored).
 *
 * The origin is https://localhost:<port>: WebAuthn refuses an IP address as RP ID.
 * Without /usr/bin/chromium the test skips, with the reason; with GATEHOUSE_REQUIRE_BACKENDS=1
 * it fails instead.
 */
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { PASSWORD, uniqueEmail } from './helpers/auth-client.js'
import { ARTIFACTS, chromiumMissing, launchChromium, newBrowserContext, watchPageProblems } from './helpers/chromium.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'
import { freePort } from './helpers/private-redis.js'
import { startUpstream } from './helpers/upstream.js'

interface Stack {
  gw: TestGateway
  origin: string
  browser: Browser
  problems: string[]
}

async function startStack(t: Test): Promise<Stack> {
  const port = await freePort()
  const origin = `https://localhost:${port}`
  const upstream = await startUpstream(t)
  const gw = await startTestGateway(t, {
    port,
    configure: (raw) => {
      raw.server.public_url = origin
      raw.routes = [
        { name: 'app', match: '/app/', upstream: upstream.url, auth: 'required', permissions: ['app:read'] },
        { name: 'secure', match: '/secure/', upstream: upstream.url, auth: 'required', mfa: 'required' },
      ]
    },
  })
  const browser = await launchChromium(t)
  return { gw, origin, browser, problems: [] }
}

interface Device {
  context: BrowserContext
  page: Page
  cdp: CDPSession
  authenticatorId: string
}

/** A browser context and page with a virtual platform authenticator that verifies its user. */
async function newDevice(t: Test, stack: Stack): Promise<Device> {
  const context = await newBrowserContext(t, stack.browser)
  const page = await context.newPage()
  watchPageProblems(page, stack.problems)
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable', { enableUI: false })
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  })
  return { context, page, cdp, authenticatorId }
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}passkeys-${name}.png`, fullPage: true })
}

/** Clicks a button and waits for the page it leads to. */
async function click(page: Page, button: string, url: RegExp | string): Promise<void> {
  await Promise.all([page.waitForURL(url), page.getByRole('button', { name: button, exact: true }).click()])
}

async function signUp(stack: Stack, email: string): Promise<void> {
  const response = await stack.gw.call('POST', '/auth/register', { json: { email, password: PASSWORD } })
  if (response.status !== 201) throw new Error(`register: ${response.status} ${response.text}`)
}

const missing = chromiumMissing()

t.test('register a passkey, then sign in with password + passkey and with the passkey alone', { skip: missing }, async (t) => {
  const stack = await startStack(t)
  const { gw, origin } = stack
  const email = uniqueEmail('passkey')
  await signUp(stack, email)
  const { page, cdp, authenticatorId } = await newDevice(t, stack)

  // 1. Sign in with the password, on the way to the account page.
  await page.goto(`${origin}/auth/login?next=%2Fauth%2Faccount`)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(PASSWORD)
  await click(page, 'Sign in', `${origin}/auth/account`)
  t.equal(await page.locator('#passkeys-empty').textContent(), 'You have no passkeys.')
  await shot(page, '01-account-without-passkeys')

  // 2. Register a passkey: the script asks the gateway for options, the virtual authenticator
  // creates the credential, the gateway verifies and stores it.
  await page.getByLabel('Name of the new passkey').fill('Virtual laptop')
  await click(page, 'Add a passkey', `${origin}/auth/account?done=passkey_added`)
  t.match(await page.getByRole('status').textContent(), 'Your passkey is added')
  t.equal(await page.locator('#passkeys-list tbody tr').count(), 1, 'the passkey is listed')
  t.match(await page.locator('#passkeys-list').textContent(), 'Virtual laptop')
  await shot(page, '02-passkey-added')
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
  t.equal(credentials.length, 1, 'the authenticator holds one credential')
  t.equal(credentials[0]?.isResidentCredential, true, 'a discoverable credential (a passkey)')
  t.equal(credentials[0]?.rpId, 'localhost')
  const { rows } = await gw.runtime.db.query<{ credential_id: string }>(
    'SELECT credential_id FROM webauthn_credentials c JOIN users u ON u.id = c.user_id WHERE u.email = $1',
    [email],
  )
  t.same(rows.map((r) => r.credential_id), [Buffer.from(credentials[0]?.credentialId ?? '', 'base64').toString('base64url')], 'the gateway stored that credential')

  // 3. The session that registered it was started with the password alone: a route with
  // mfa: required sends the browser to step-up, where the passkey upgrades the session.
  await page.goto(`${origin}/secure/page`)
  await page.waitForURL(/\/auth\/login\/step-up\?next=/)
  await page.getByRole('button', { name: 'Use a passkey' }).waitFor({ state: 'visible' })
  await shot(page, '03-step-up')
  await click(page, 'Use a passkey', `${origin}/secure/page`)
  t.same(await amrOf(page, origin), ['pwd', 'hwk', 'user'], 'the step-up added the passkey to the session')
  await shot(page, '04-stepped-up')

  // 4. Sign out; the password step now asks for the second factor, which the passkey gives.
  await page.goto(`${origin}/auth/account`)
  await click(page, 'Sign out', /\/auth\/login$/)
  await page.goto(`${origin}/app/hello`)
  await page.waitForURL(/\/auth\/login\?next=/)
  await shot(page, '05-signed-out-login-page')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(PASSWORD)
  await click(page, 'Sign in', `${origin}/auth/login`)
  t.equal(await page.title(), 'Two-step sign-in · Gatehouse', 'the second page')
  await page.getByRole('button', { name: 'Use a passkey' }).waitFor({ state: 'visible' })
  await shot(page, '06-second-step')
  await click(page, 'Use a passkey', `${origin}/app/hello`)
  t.match(await page.locator('body').textContent(), /hello/i, 'the app answered')
  const twoStep = await amrOf(page, origin)
  t.same(twoStep, ['pwd', 'hwk', 'user'], 'password, then the passkey with user verification')
  await shot(page, '07-signed-in-with-password-and-passkey')

  // 5. Sign out again; the passkey alone signs in (a discoverable credential, user verified).
  await page.goto(`${origin}/auth/account`)
  await click(page, 'Sign out', /\/auth\/login$/)
  await page.goto(`${origin}/auth/login?next=%2Fauth%2Faccount`)
  await page.getByRole('button', { name: 'Sign in with a passkey' }).waitFor({ state: 'visible' })
  await shot(page, '08-login-page-with-passkey-button')
  await click(page, 'Sign in with a passkey', `${origin}/auth/account`)
  t.same(await amrOf(page, origin), ['hwk', 'user'], 'a passkey-only sign-in')
  await shot(page, '09-signed-in-with-passkey-alone')

  // 6. Remove the passkey (a plain form); the password alone signs in again.
  await click(page, 'Remove the passkey Virtual laptop', `${origin}/auth/account?done=passkey_removed`)
  t.equal(await page.locator('#passkeys-empty').textContent(), 'You have no passkeys.')
  await shot(page, '10-passkey-removed')
  await click(page, 'Sign out', /\/auth\/login$/)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(PASSWORD)
  await click(page, 'Sign in', `${origin}/`)
  t.same(await amrOf(page, origin), ['pwd'])

  t.same(stack.problems, [], 'no CSP violation or script error on any page')
})

/** The `amr` of the browser's current session, from GET /auth/me with its cookie. */
async function amrOf(page: Page, origin: string): Promise<unknown> {
  const response = await page.request.get(`${origin}/auth/me`)
  return ((await response.json()) as { auth: { amr: string[] } }).auth.amr
}
