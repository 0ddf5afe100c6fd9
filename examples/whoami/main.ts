/**
 * Runs the whoami demo upstream from the environment:
 * - WHOAMI_PORT (default 9001), WHOAMI_HOST (default 127.0.0.1)
 * - GATEHOUSE_JWKS_URL: the gateway's `<public_url>/.well-known/jwks.json`
 * - GATEHOUSE_ISSUER: the gateway's public_url (default: the origin of GATEHOUSE_JWKS_URL)
 * - WHOAMI_AUDIENCE: route name(s), comma-separated (default `whoami`)
 * - GATEHOUSE_CA_FILE: PEM certificate to trust for the JWKS request, e.g. the gateway's
 *   self-signed development certificate `certs/tls.crt`
 */
import { readFileSync } from 'node:fs'
import type { VerifierOptions } from '../../src/verify.js'
import { startWhoami } from './server.js'

const env = process.env
const issuer = env.GATEHOUSE_ISSUER || (env.GATEHOUSE_JWKS_URL ? new URL(env.GATEHOUSE_JWKS_URL).origin : undefined)
const jwksUrl = env.GATEHOUSE_JWKS_URL || (issuer ? `${issuer}/.well-known/jwks.json` : undefined)
let verifier: VerifierOptions | undefined
if (jwksUrl !== undefined && issuer !== undefined) {
  verifier = {
    jwksUrl,
    issuer,
    audience: (env.WHOAMI_AUDIENCE || 'whoami').split(',').map((name) => name.trim()).filter((name) => name !== ''),
    ...(env.GATEHOUSE_CA_FILE ? { ca: readFileSync(env.GATEHOUSE_CA_FILE) } : {}),
  }
}

const whoami = await startWhoami({ port: Number(env.WHOAMI_PORT || 9001), host: env.WHOAMI_HOST || '127.0.0.1', ...(verifier ? { verifier } : {}) })
console.log(`whoami listening on ${whoami.url}${verifier ? `, verifying assertions from ${verifier.issuer}` : ' (assertions not verified: set GATEHOUSE_JWKS_URL)'}`)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void whoami.close().then(() => process.exit(0))
  })
}
