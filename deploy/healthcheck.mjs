// The container's HEALTHCHECK (slim images have no curl): GET a URL, exit 0 on a 2xx
// answer within the timeout, else 1. The URL is the first argument, else $HEALTHCHECK_URL,
// else the gateway's liveness endpoint on this container's loopback. The gateway's
// certificate is not verified: the probe talks to 127.0.0.1, which no certificate names,
// and liveness is all it asks about.
import http from 'node:http'
import https from 'node:https'
import { URL } from 'node:url'

const target = new URL(process.argv[2] || process.env.HEALTHCHECK_URL || 'https://127.0.0.1:8443/health/live')
const timeoutMs = Number(process.env.HEALTHCHECK_TIMEOUT_MS || 4000)
const client = target.protocol === 'https:' ? https : http

const request = client.get(target, { rejectUnauthorized: false, timeout: timeoutMs, headers: { accept: 'application/json' } }, (response) => {
  response.resume()
  const status = response.statusCode ?? 0
  if (status < 200 || status > 299) console.error(`${target.href}: HTTP ${status}`)
  process.exit(status >= 200 && status <= 299 ? 0 : 1)
})
request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)))
request.on('error', (error) => {
  console.error(`${target.href}: ${error.message}`)
  process.exit(1)
})
