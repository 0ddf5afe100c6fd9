/**
 * The account journey in a real browser (SPEC §5): Debian's chromium, driven by
 * playwright-core, through a real gateway and a real SMTP server. Sign up → the confirmation
 * email → confirm → sign in → create a token on the account page (copied with the button,
 * then used with undici against a protected route) → revoke it → change the password (the
 * other browser is signed out) → forgot password → reset from the emailed link → the old
 * session is dead. Screenshots of each page are kept in test-artifacts/accounts-*.png.
 *
 * Without /usr/bin/chromium the test skips, with the reason; with GATEHOUSE_REQUIRE_BACKENDS=1
 * it fails instead.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core'
import t, { type Test } from 'tap'
import { OTHER_PASSWORD, PASSWORD, uniqueEmail } from './helpers/auth-client.js'
import { ARTIFACTS, chromiumMissing, launchChromium, newBrowserContext, watchPageProblems } from './helpers/chromium.js'
import { startTestGateway, type TestGateway } from './helpers/gateway.js'
import { freePort } from './helpers/private-redis.js'
import { startSmtpServer, type TestSmtpServer } from './helpers/smtp.js'
import { startUpstream } from './helpers/upstream.js'

const THIRD_PASSWORD = 'a third passphrase, from the reset link'

interface Stack {
  gw: TestGateway
  smtp: TestSmtpServer
  origin: string
  browser: Browser
  problems: string[]
}

async function startStack(t: Test): Promise<Stack> {
  const port = await freePort()
  const origin = `https://127.0.0.1:${port}`
  const upstream = await startUpstream(t)
  const smtp = await startSmtpServer(t)
  const gw = await startTestGateway(t, {
    port,
    configure: (raw) => {
      raw.server.public_url = origin
      raw.auth.email_verification = 'required'
      raw.email = { smtp: smtp.url, from: 'Gatehouse <gatehouse@example.test>' }
      raw.routes = [{ name: 'app', match: '/app/', upstream: upstream.url, auth: 'required', permissions: ['app:read'] }]
    },
  })
  const browser = await launchChromium(t)
  return { gw, smtp, origin, browser, problems: [] }
}

async function newPage(t: Test, stack: Stack): Promise<{ context: BrowserContext; page: Page }> {
  const context = await newBrowserContext(t, stack.browser)
  const page = await context.newPage()
  watchPageProblems(page, stack.problems)
  return { context, page }
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}accounts-${name}.png`, fullPage: true })
}

/** Clicks a submit button and waits for the page it leads to. */
async function submit(page: Page, button: string, url: RegExp | string): Promise<void> {
  await Promise.all([page.waitForURL(url), page.getByRole('button', { name: button, exact: true }).click()])
}

const missing = chromiumMissing()

t.test('sign up, confirm, tokens, password change and reset in a browser', { skip: missing }, async (t) => {
  const stack = await startStack(t)
  const { gw, smtp, origin } = stack
  const email = uniqueEmail('journey')
  const { context, page } = await newPage(t, stack)

  // 1. Sign up from the login page's link.
  await page.goto(`${origin}/auth/login`)
  await Promise.all([page.waitForURL(`${origin}/auth/register`), page.getByRole('link', { name: 'Create an account' }).click()])
  t.equal(await page.title(), 'Create an account · Gatehouse')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Name (optional)').fill('Journey Tester')
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD)
  await page.getByLabel('Password again').fill('not the same passphrase at all')
  await submit(page, 'Create account', `${origin}/auth/register/form`)
  t.equal(await page.getByRole('alert').textContent(), 'The two passwords are not the same.', 'a mismatch is explained')
  t.equal(await page.getByLabel('Email').inputValue(), email, 'the email is kept')
  await shot(page, '01-signup-refused')
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD)
  await page.getByLabel('Password again').fill(PASSWORD)
  const confirmation = smtp.next(email)
  await submit(page, 'Create account', /\/auth\/login\?notice=verify_required$/)
  t.match(await page.getByRole('status').textContent(), 'We sent a link to your email address')
  await shot(page, '02-signup-done')

  // 2. Signing in before confirming: refused, with a way to ask for a new link.
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(PASSWORD)
  await submit(page, 'Sign in', `${origin}/auth/login`)
  t.match(await page.getByRole('alert').textContent(), 'Confirm your email address first')
  t.equal(await page.getByRole('button', { name: 'Send a new confirmation link' }).count(), 1, 'a resend button')
  await shot(page, '03-unverified')
  t.same((await context.cookies()).map((c) => c.name), [], 'no session yet')

  // 3. The emailed link confirms the address.
  const link = (await confirmation).links[0] ?? ''
  t.ok(link.startsWith(`${origin}/auth/email/verify?token=`), 'the link is absolute, on public_url')
  await page.goto(link)
  t.equal(page.url(), `${origin}/auth/login?notice=email_verified`)
  t.match(await page.getByRole('status').textContent(), 'Your email address is confirmed')
  await shot(page, '04-verified')

  // 4. Sign in, on the way to the account page.
  await page.goto(`${origin}/auth/account`)
  t.equal(new URL(page.url()).pathname, '/auth/login', 'the account page needs a session')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(PASSWORD)
  await submit(page, 'Sign in', `${origin}/auth/account`)
  t.equal(await page.title(), 'Your account · Gatehouse')
  t.equal(await page.locator('tr[aria-current="true"]').count(), 1, 'this session is marked')
  await shot(page, '05-account')

  // 5. A token, limited to app:read, shown once and copied with the button.
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin })
  await page.getByLabel('Name', { exact: true }).nth(1).fill('deploy script')
  await page.getByLabel('Expires after').selectOption('30')
  await page.getByLabel('app:read').check()
  await submit(page, 'Create token', `${origin}/auth/account/tokens`)
  const token = await page.getByLabel('Token', { exact: true }).inputValue()
  t.match(token, /^pat_/, 'the token is shown')
  const copy = page.getByRole('button', { name: 'Copy' })
  t.ok(await copy.isVisible(), 'the copy button appears (the script ran under the CSP)')
  await copy.click()
  await page.getByRole('button', { name: 'Copied' }).waitFor()
  t.equal(await page.evaluate<string>('navigator.clipboard.readText()'), token, 'the clipboard holds the token')
  await shot(page, '06-token-created')

  const upstreamCall = await gw.call('GET', '/app/report', { headers: { authorization: `Bearer ${token}` } })
  t.equal(upstreamCall.status, 200, 'the token reaches the protected route (undici)')

  // 6. Revoke it.
  await page.goto(`${origin}/auth/account`)
  t.equal(await page.getByLabel('Token', { exact: true }).count(), 0, 'never shown again')
  await submit(page, 'Revoke the token deploy script', `${origin}/auth/account?done=token_revoked`)
  t.match(await page.getByRole('status').textContent(), 'The token is revoked')
  t.equal((await gw.call('GET', '/app/report', { headers: { authorization: `Bearer ${token}` } })).status, 401, 'and no longer works')
  await shot(page, '07-token-revoked')

  // 7. Another browser signs in; changing the password here signs it out.
  const other = await newPage(t, stack)
  await other.page.goto(`${origin}/auth/account`)
  await other.page.getByLabel('Email').fill(email)
  await other.page.getByLabel('Password').fill(PASSWORD)
  await submit(other.page, 'Sign in', `${origin}/auth/account`)
  await page.getByLabel('Current password').fill('not my password')
  await page.getByLabel('New password', { exact: true }).fill(OTHER_PASSWORD)
  await page.getByLabel('New password again').fill(OTHER_PASSWORD)
  await submit(page, 'Change password', `${origin}/auth/account/password`)
  t.equal(await page.getByRole('alert').textContent(), 'The current password is not right. Nothing was changed.')
  await shot(page, '08-password-refused')
  await page.getByLabel('Current password').fill(PASSWORD)
  await page.getByLabel('New password', { exact: true }).fill(OTHER_PASSWORD)
  await page.getByLabel('New password again').fill(OTHER_PASSWORD)
  await submit(page, 'Change password', `${origin}/auth/account?done=password_changed`)
  t.match(await page.getByRole('status').textContent(), 'Your password is changed')
  await shot(page, '09-password-changed')
  await other.page.reload()
  t.equal(new URL(other.page.url()).pathname, '/auth/login', 'the other browser is signed out')

  // 8. Forgot password, in a third browser; the first one stays signed in until the reset.
  const third = await newPage(t, stack)
  await third.page.goto(`${origin}/auth/login`)
  await Promise.all([third.page.waitForURL(`${origin}/auth/password/forgot`), third.page.getByRole('link', { name: 'Forgot your password?' }).click()])
  await third.page.getByLabel('Email').fill(email)
  const resetMail = smtp.next(email)
  await submit(third.page, 'Send the link', /notice=reset_sent$/)
  t.match(await third.page.getByRole('status').textContent(), 'we sent it a link')
  await shot(third.page, '10-reset-sent')
  const resetLink = (await resetMail).links[0] ?? ''
  t.ok(resetLink.startsWith(`${origin}/auth/password/reset?token=`), 'an absolute reset link')
  await third.page.goto(resetLink)
  await third.page.getByLabel('New password', { exact: true }).fill(THIRD_PASSWORD)
  await third.page.getByLabel('New password again').fill(THIRD_PASSWORD)
  await shot(third.page, '11-reset-form')
  const changedMail = smtp.next(email)
  await submit(third.page, 'Set the new password', /notice=password_reset$/)
  t.match(await third.page.getByRole('status').textContent(), 'Your password is changed')
  await shot(third.page, '12-reset-done')
  t.match((await changedMail).subject, /changed/i, 'a "password changed" email')

  // 9. The old session is dead; the new password works; the link was single-use.
  await page.goto(`${origin}/auth/account`)
  t.equal(new URL(page.url()).pathname, '/auth/login', 'the first browser is signed out by the reset')
  await third.page.goto(resetLink)
  t.match(await third.page.getByRole('alert').textContent(), 'invalid, expired or already used', 'the link works once')
  await shot(third.page, '13-link-spent')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(THIRD_PASSWORD)
  await submit(page, 'Sign in', `${origin}/auth/account`)
  t.equal(await page.title(), 'Your account · Gatehouse', 'signed in with the new password')

  t.same(stack.problems, [], 'no CSP violation or script error on any page')
})
