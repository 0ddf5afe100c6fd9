/**
 * The demo upstream: answers every request with what it received (method, path, the identity
 * headers, the other headers) and whether `X-Auth-Assertion` verified, as HTML for browsers
 * and JSON otherwise. A WebSocket on any path is an echo that first reports the identity of
 * its handshake (`{"type":"hello","assertion":…}`), then sends back every message as it came;
 * the HTML page opens one (a live socket). No framework, so it shows what any upstream sees.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import { LIVE_SCRIPT } from './live-script.js'
import { createVerifier, VerificationError, type Verifier, type VerifierOptions, type VerifiedIdentity } from '../../src/verify.js'

export interface WhoamiOptions {
  /** Default 0: a free port. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** How to verify assertions; without it every request reports `not_configured`. */
  verifier?: VerifierOptions | Verifier
}

export interface Whoami {
  /** `http://host:port`. */
  url: string
  close(): Promise<void>
}

export type AssertionReport =
  | { verified: true; identity: VerifiedIdentity }
  | { verified: false; code: string; message: string }

export interface WhoamiReport {
  method: string
  /** Path and query as received. */
  path: string
  /** The `x-auth-*` headers as received. */
  identity_headers: Record<string, string>
  other_headers: Record<string, string>
  assertion: AssertionReport
}

const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy':
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
}

export async function startWhoami(options: WhoamiOptions = {}): Promise<Whoami> {
  const verify = options.verifier === undefined
    ? null
    : typeof options.verifier === 'function' ? options.verifier : createVerifier(options.verifier)

  const server = createServer((request, response) => {
    request.resume()
    if (isScriptRequest(request)) {
      response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' }).end(LIVE_SCRIPT)
      return
    }
    report(request, verify).then(
      (result) => send(request, response, result),
      () => {
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('whoami failed\n')
      },
    )
  })
  const sockets = new WebSocketServer({ noServer: true })
  server.on('upgrade', (request: IncomingMessage, socket, head) => {
    // The assertion names this very request (htm GET, htu its path): checked before accepting.
    check(request, verify).then(
      (assertion) =>
        sockets.handleUpgrade(request, socket, head, (ws) => {
          ws.on('error', () => ws.terminate())
          ws.send(JSON.stringify({ type: 'hello', assertion }))
          ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }))
        }),
      () => socket.destroy(),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { address, port } = server.address() as AddressInfo
  const host = address.includes(':') ? `[${address}]` : address
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const client of sockets.clients) client.terminate()
        sockets.close()
        server.close((error) => (error ? reject(error) : resolve()))
        server.closeAllConnections()
      }),
  }
}

async function report(request: IncomingMessage, verify: Verifier | null): Promise<WhoamiReport> {
  const identityHeaders: Record<string, string> = {}
  const otherHeaders: Record<string, string> = {}
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue
    const text = Array.isArray(value) ? value.join(', ') : value
    if (name.startsWith('x-auth-')) identityHeaders[name] = text
    else otherHeaders[name] = text
  }
  return {
    method: request.method ?? '',
    path: request.url ?? '',
    identity_headers: identityHeaders,
    other_headers: otherHeaders,
    assertion: await check(request, verify),
  }
}

async function check(request: IncomingMessage, verify: Verifier | null): Promise<AssertionReport> {
  if (verify === null) {
    return { verified: false, code: 'not_configured', message: 'Set GATEHOUSE_JWKS_URL (and GATEHOUSE_ISSUER) to verify assertions' }
  }
  try {
    return { verified: true, identity: await verify(request) }
  } catch (error) {
    if (error instanceof VerificationError) return { verified: false, code: error.code, message: error.message }
    return { verified: false, code: 'error', message: error instanceof Error ? error.message : String(error) }
  }
}

function send(request: IncomingMessage, response: ServerResponse, result: WhoamiReport): void {
  const common = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' }
  if ((request.headers.accept ?? '').includes('text/html')) {
    response.writeHead(200, { ...common, ...HTML_HEADERS }).end(html(result))
  } else {
    response.writeHead(200, { ...common, 'content-type': 'application/json; charset=utf-8' }).end(`${JSON.stringify(result, null, 2)}\n`)
  }
}

/** `?live.js` on any path: the page's script, relative to the page wherever the gateway mounts it. */
function isScriptRequest(request: IncomingMessage): boolean {
  return request.method === 'GET' && (request.url ?? '').endsWith('?live.js')
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}

function table(rows: Record<string, string>): string {
  const entries = Object.entries(rows)
  if (entries.length === 0) return '<p>(none)</p>'
  const body = entries.map(([name, value]) => `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`).join('')
  return `<table>${body}</table>`
}

function html(result: WhoamiReport): string {
  const { assertion } = result
  const verdict = assertion.verified
    ? `<p class="ok">Assertion verified: ${escapeHtml(assertion.identity.email)} (${escapeHtml(assertion.identity.id)}), roles ${escapeHtml(assertion.identity.roles.join(', ') || '(none)')}, via ${escapeHtml(assertion.identity.method)}</p>`
    : `<p class="bad">Assertion not verified: ${escapeHtml(assertion.code)} (${escapeHtml(assertion.message)})</p>`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>whoami</title>
<style>
body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { white-space: nowrap; } td { font-family: ui-monospace, monospace; word-break: break-all; }
.ok, .live-ok { color: #075e07; } .bad, .live-bad { color: #a40000; }
</style>
<script src="?live.js" defer></script>
</head>
<body>
<h1>whoami</h1>
${verdict}
${assertion.verified ? '<form method="post" action="/auth/logout"><button type="submit">Sign out</button></form>' : ''}
<p><code>${escapeHtml(result.method)} ${escapeHtml(result.path)}</code></p>
<h2>Live socket</h2>
<p id="live-status">connecting…</p>
<ul id="live-log"></ul>
<h2>Identity headers</h2>
${table(result.identity_headers)}
<h2>Other headers</h2>
${table(result.other_headers)}
</body>
</html>
`
}
