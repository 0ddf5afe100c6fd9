/**
 * Debian's chromium for browser tests, driven by playwright-core (which never downloads a
 * browser: it drives the one at executablePath). Without /usr/bin/chromium a test skips, with
 * the reason; with GATEHOUSE_REQUIRE_BACKENDS=1 (CI, whose .ci/run installs chromium) it fails.
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext } from 'playwright-core'
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

/** A fresh profile (cookies included) that accepts the test's self-signed certificate. */
export async function newBrowserContext(t: Test, browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1000, height: 800 } })
  context.setDefaultTimeout(STEP_TIMEOUT_MS)
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS)
  t.teardown(() => context.close())
  return context
}
