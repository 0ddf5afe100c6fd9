/**
 * What `npm start` runs: the gateway from gateway.yml (as `gatehouse serve` would) with the
 * whoami demo app behind it, verifying the gateway's assertions against its JWKS.
 */
import { readFile } from 'node:fs/promises'
import { loadConfig, resolveConfigPath } from '../src/config/index.js'
import { main } from '../src/cli.js'
import { startWhoami } from './whoami/server.js'

const configPath = resolveConfigPath(undefined)
const { code } = await main(['serve', '--config', configPath])
if (code !== 0) process.exit(code)

const config = await loadConfig(configPath)
const scheme = config.server.tls ? 'https' : 'http'
const whoami = await startWhoami({
  port: Number(process.env.WHOAMI_PORT || 9001),
  verifier: {
    jwksUrl: `${scheme}://localhost:${config.server.port}/.well-known/jwks.json`,
    issuer: config.server.public_url,
    audience: 'whoami',
    // The development certificate is self-signed: trust exactly it, nothing more.
    ...(config.server.tls ? { ca: await readFile(config.server.tls.cert) } : {}),
  },
})
process.stdout.write(`whoami demo app on ${whoami.url}; open ${config.server.public_url}/whoami\n`)
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void whoami.close())
