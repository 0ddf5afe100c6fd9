/**
 * Debian's chromium for browser tests, driven by playwright-core (which never downloads a
 * browser: it drives the one at executablePath). Without /usr/bin/chromium a test skips, with
 * the reason; with GATEHOUSE_REQUIRE_BACKENDS=1 (CI, whose .ci/run installs chromium) it fails.
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core'
import type { Test } from 'tap'
import { requireBackends } from './backends.js'

export const CHROMIUM = '/usr/bin/chromium'
/** Where browser tests keep their screenshots (gitignored). */
export const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url))
export const STEP_TIMEOUT_MS = 20_000

/** Flags for a throw-away headless browser in a container: no sandbox, GPU, QUIC or background traffic. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** False when chromium is there, else the reason to skip (throws under GATEHOUSE_REQUIRE_BACKENDS=1). */
export function chromiumMissing(): string | false {
  if (existsSync(CHROMIUM)) return false
  const reason = `${CHROMIUM} is missing (apt-get install -y chromium)`
  if (requireBackends()) throw new Error(`GATEHOUSE_REQUIRE_BACKENDS=1 but ${reason}: the browser test cannot run`)
  return reason
}

/** A browser closed at teardown; `args` are added to the container flags. */
export async function launchChromium(t: Test, args: readonly string[] = []): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, chromiumSandbox: false, args: [...CHROMIUM_ARGS, ...args] })
  t.teardown(() => browser.close())
  await mkdir(ARTIFACTS, { recursive: true })
  return browser
}

/** What a test may change in a fresh profile: scripts off (pages that must work without), another viewport. */
export type BrowserContextVariant = Pick<BrowserContextOptions, 'javaScriptEnabled' | 'viewport'>

/** A fresh profile (cookies included) that accepts the test's self-signed certificate; closed at teardown. */
export async function newBrowserContext(t: Test, browser: Browser, variant: BrowserContextVariant = {}): Promise<BrowserContext> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1000, height: 800 }, ...variant })
  context.setDefaultTimeout(STEP_TIMEOUT_MS)
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS)
  t.teardown(() => context.close())
  return context
}

/**
 * Collects into `problems` what should never happen on the gateway's pages: console errors
 * (CSP violations, script errors; not the 4xx answers refused forms get on purpose), uncaught
 * page errors, and a stylesheet or script that does not load with 200.
 */
export function watchPageProblems(page: Page, problems: string[]): void {
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource: the server responded')) problems.push(message.text())
  })
  page.on('pageerror', (error) => problems.push(error.message))
  page.on('response', (response) => {
    const type = response.request().resourceType()
    if ((type === 'stylesheet' || type === 'script') && response.status() !== 200) problems.push(`${response.url()}: ${response.status()}`)
  })
}
