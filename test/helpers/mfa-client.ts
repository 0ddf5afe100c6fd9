/** Enrolling TOTP and signing in with two steps, through a real gateway. */
import { totpCode } from '../../src/core/mfa/index.js'
import { bearer, login, PASSWORD, register, uniqueEmail } from './auth-client.js'
import type { Response, TestGateway } from './gateway.js'

export interface EnrolledUser {
  id: string
  email: string
  /** The session that enrolled. */
  token: string
  secret: string
  recoveryCodes: string[]
}

function expectStatus(response: Response, status: number, what: string): void {
  if (response.status !== status) throw new Error(`${what}: expected ${status}, got ${response.status}: ${response.text}`)
}

/** Registers a user, signs in, and enrols TOTP with a code of `nowMs` (the gateway's clock). */
export async function enrolledUser(gw: TestGateway, tag: string, nowMs: number): Promise<EnrolledUser> {
  const email = uniqueEmail(tag)
  const user = await register(gw, email)
  const { token } = await login(gw, email)
  const started = await gw.call('POST', '/auth/mfa/totp', { headers: bearer(token) })
  expectStatus(started, 200, 'start TOTP')
  const { secret } = started.json<{ secret: string }>()
  const confirmed = await gw.call('POST', '/auth/mfa/totp/confirm', { headers: bearer(token), json: { code: totpCode(secret, nowMs) } })
  expectStatus(confirmed, 200, 'confirm TOTP')
  return { id: user.id, email, token, secret, recoveryCodes: confirmed.json<{ recovery_codes: string[] }>().recovery_codes }
}

/** The first step: resolves the mfa_token (throws when the answer is not a second-factor request). */
export async function passwordStep(gw: TestGateway, email: string, password = PASSWORD): Promise<{ mfa_token: string; methods: string[]; response: Response }> {
  const response = await gw.call('POST', '/auth/login', { json: { email, password } })
  expectStatus(response, 200, 'password step')
  const body = response.json<{ mfa_required?: boolean; mfa_token?: string; methods?: string[] }>()
  if (body.mfa_required !== true || typeof body.mfa_token !== 'string') throw new Error(`no second-factor request: ${response.text}`)
  return { mfa_token: body.mfa_token, methods: body.methods ?? [], response }
}

export function secondStep(gw: TestGateway, mfaToken: string, proof: Record<string, unknown>): Promise<Response> {
  return gw.call('POST', '/auth/login/mfa', { json: { mfa_token: mfaToken, ...proof } })
}

/** Both steps with a TOTP code of `nowMs`; resolves the session token. */
export async function mfaLogin(gw: TestGateway, email: string, secret: string, nowMs: number): Promise<string> {
  const { mfa_token } = await passwordStep(gw, email)
  const answer = await secondStep(gw, mfa_token, { code: totpCode(secret, nowMs) })
  expectStatus(answer, 200, 'second step')
  return answer.json<{ token: string }>().token
}

export { PASSWORD }
