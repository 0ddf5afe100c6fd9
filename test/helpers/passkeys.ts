/**
 * Passkey steps the HTTP tests share: registration options and registering a software
 * authenticator (test/helpers/soft-authenticator.ts) through the real API, and the row count.
 */
import type { LoggedIn } from './auth-client.js'
import { bearer } from './auth-client.js'
import { PUBLIC_URL, type TestGateway } from './gateway.js'
import { SoftAuthenticator } from './soft-authenticator.js'

export interface Passkey {
  id: string
  name: string
  created_at: string
  last_used_at: string | null
  transports: string[]
  backed_up: boolean
}

export interface CreationOptions {
  challenge: string
  rp: { id: string; name: string }
  user: { id: string; name: string }
  excludeCredentials: { id: string }[]
}

export async function registrationOptions(gw: TestGateway, session: Pick<LoggedIn, 'token'>): Promise<CreationOptions> {
  const response = await gw.call('POST', '/auth/mfa/webauthn/options', { headers: bearer(session.token), json: {} })
  if (response.status !== 200) throw new Error(`options: ${response.status} ${response.text}`)
  return response.json<CreationOptions>()
}

/** Registers `authenticator` (a new one by default) for the session's user; resolves the answer as it came. */
export async function addPasskey(gw: TestGateway, session: Pick<LoggedIn, 'token'>, name = 'Laptop', authenticator = new SoftAuthenticator(PUBLIC_URL)) {
  const response = await gw.call('POST', '/auth/mfa/webauthn', {
    headers: bearer(session.token),
    json: { name, response: authenticator.register(await registrationOptions(gw, session)) },
  })
  return { response, authenticator }
}

/** Registers a passkey and fails loudly unless it was stored. */
export async function enrolPasskey(gw: TestGateway, session: Pick<LoggedIn, 'token'>, name = 'Laptop'): Promise<SoftAuthenticator> {
  const { response, authenticator } = await addPasskey(gw, session, name)
  if (response.status !== 201) throw new Error(`add passkey: ${response.status} ${response.text}`)
  return authenticator
}

export async function passkeyRows(gw: TestGateway): Promise<number> {
  return (await gw.runtime.db.query<{ n: number }>('SELECT count(*)::int AS n FROM webauthn_credentials')).rows[0]!.n
}
