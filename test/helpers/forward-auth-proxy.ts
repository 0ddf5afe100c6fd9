/**
 * Forward auth behind the real nginx and Caddy of Debian's packages (SPEC §4b), configured from
 * the very files under examples/forward-auth/ that the README shows: only host names, ports and
 * certificate paths are replaced, and each replacement must find its text (so the examples
 * cannot drift from what is tested). Used by edge-forward-auth-proxies (the rules, with an HTTP
 * client) and browser-forward-auth (the sign-in journey, in Chromium).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { requireBackends } from './backends.js'
import { startTestGateway, testCertificate, type TestGateway } from './gateway.js'
import { freePort } from './ports.js'
import type { RecordingUpstream } from './upstream.js'

const EXAMPLES = path.resolve(import.meta.dirname, '..', '..', '..', 'examples', 'forward-auth')
/** The app's host behind the proxy, and the gateway's: both under the cookie domain. */
export const APP_HOST = 'app.gatehouse.test'
export const AUTH_HOST = 'auth.gatehouse.test'
export const COOKIE_DOMAIN = 'gatehouse.test'

/** True when `command` runs; throws when it is missing and GATEHOUSE_REQUIRE_BACKENDS=1. */
export function haveProxy(command: 'nginx' | 'caddy'): boolean {
  const found = spawnSync(command, [command === 'nginx' ? '-v' : 'version']).status === 0
  if (!found && requireBackends()) throw new Error(`GATEHOUSE_REQUIRE_BACKENDS=1 but ${command} is not installed: .ci/run installs it`)
  return found
}

/** The example with its stand-ins replaced; each must be there. */
async function render(file: string, replacements: [string, string][]): Promise<string> {
  let text = await readFile(path.join(EXAMPLES, file), 'utf8')
  for (const [from, to] of replacements) {
    if (!text.includes(from)) throw new Error(`examples/forward-auth/${file} no longer contains ${from}`)
    text = text.split(from).join(to)
  }
  return text
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${output()}`)
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy()
        resolve(true)
      })
      socket.on('error', () => resolve(false))
    })
    if (open) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`port ${port} never opened: ${output()}`)
}

/** Starts `command` in the foreground, stopped at teardown; resolves once `port` accepts connections. */
async function startProcess(t: Test, port: number, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ChildProcess> {
  let output = ''
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  t.teardown(async () => {
    if (child.exitCode !== null) return
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
  })
  await waitForPort(port, child, () => output)
  return child
}

/** The test certificate (it names localhost) as files, for the proxy to serve and to trust the gateway by. */
async function certificateFiles(dir: string): Promise<{ cert: string; key: string }> {
  const { cert, key } = await testCertificate()
  const files = { cert: path.join(dir, 'tls.crt'), key: path.join(dir, 'tls.key') }
  await writeFile(files.cert, cert)
  await writeFile(files.key, key, { mode: 0o600 })
  return files
}

/**
 * A gateway for one proxy at https://auth.gatehouse.test:<port> (its public_url; it listens on
 * 127.0.0.1), sessions shared with every host under gatehouse.test, every route
 * forward-auth-only on app.gatehouse.test.
 */
export async function forwardAuthGateway(t: Test, headers: 'forwarded' | 'original'): Promise<TestGateway> {
  const port = await freePort()
  return startTestGateway(t, {
    port,
    configure: (raw) => {
      raw.server.public_url = `https://${AUTH_HOST}:${port}`
      raw.server.trust_proxy = ['127.0.0.1/32']
      raw.sessions = { cookie_domain: COOKIE_DOMAIN }
      raw.forward_auth = { trusted: ['127.0.0.1/32'], headers }
      raw.rate_limits = { tight: { max: 2, window: '1m', key: 'user' } }
      raw.routes = [
        { name: 'app', host: APP_HOST, match: '/', auth: 'required', permissions: ['app:read'] },
        { name: 'writes', host: APP_HOST, match: '/write', auth: 'required', permissions: ['app:write'] },
        { name: 'open', host: APP_HOST, match: '/open', auth: 'public' },
        { name: 'limited', host: APP_HOST, match: '/limited', auth: 'required', rate_limit: 'tight' },
      ]
    },
  })
}

/**
 * nginx from examples/forward-auth/nginx.conf, serving app.gatehouse.test on a free port of
 * 127.0.0.1 (TLS, the test certificate), asking `gw`, passing to `upstream`. Resolves its port.
 */
export async function startNginx(t: Test, gw: TestGateway, upstream: RecordingUpstream): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-nginx-'))
  const files = await certificateFiles(dir)
  const port = await freePort()
  const conf = await render('nginx.conf', [
    ['listen 443 ssl;', `listen 127.0.0.1:${port} ssl;`],
    ['/etc/nginx/tls/app.example.com.crt', files.cert],
    ['/etc/nginx/tls/app.example.com.key', files.key],
    ['/etc/nginx/tls/gatehouse-ca.crt', files.cert],
    ['server_name app.example.com;', `server_name ${APP_HOST};`],
    ['https://127.0.0.1:8443', gw.url],
    ['http://127.0.0.1:9001', upstream.url],
  ])
  const confFile = path.join(dir, 'nginx.conf')
  await writeFile(confFile, conf)
  const main = `daemon off; pid ${dir}/nginx.pid; error_log stderr warn;${process.getuid?.() === 0 ? ' user root;' : ''}`
  await startProcess(t, port, 'nginx', ['-p', dir, '-c', confFile, '-g', main])
  return port
}

/** Caddy from examples/forward-auth/Caddyfile, as startNginx. Resolves its port. */
export async function startCaddy(t: Test, gw: TestGateway, upstream: RecordingUpstream): Promise<number> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-caddy-'))
  const files = await certificateFiles(dir)
  const port = await freePort()
  const caddyfile = await render('Caddyfile', [
    ['app.example.com:443 {', `${APP_HOST}:${port} {`],
    ['/etc/caddy/tls/app.example.com.crt', files.cert],
    ['/etc/caddy/tls/app.example.com.key', files.key],
    ['/etc/caddy/tls/gatehouse-ca.crt', files.cert],
    ['https://127.0.0.1:8443', gw.url],
    ['127.0.0.1:9001', upstream.url.replace('http://', '')],
  ])
  const file = path.join(dir, 'Caddyfile')
  await writeFile(file, caddyfile)
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir }
  await startProcess(t, port, 'caddy', ['run', '--config', file, '--adapter', 'caddyfile'], env)
  return port
}
