/**
 * Small steps the /auth HTTP tests share: registering and logging in through the API,
 * credentials as headers, the error-shape assertion, Set-Cookie parsing and row counts.
 * Everything goes through a TestGateway's real TLS listener.
 */
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { sessionCookieName } from '../../src/http/credentials.js'
import type { Response, TestGateway } from './gateway.js'
import { assertCode } from './assert-code.js'

/** Long enough for the default policy (15), not in the common-password list. */
export const PASSWORD = 'correct horse battery staple'
export const OTHER_PASSWORD = 'a different, equally long passphrase'

/** A fresh address, so that tests sharing one gateway never collide. */
export function uniqueEmail(tag: string): string {
  return `${tag}-${randomBytes(4).toString('hex')}@example.com`
}

export interface RegisteredUser {
  id: string
  email: string
  name: string | null
  roles: string[]
  email_verified: boolean
  created_at: string
}

export interface LoggedIn {
  token: string
  expires_at: string
  user: RegisteredUser
  response: Response
}

function expectStatus(response: Response, status: number, what: string): void {
  if (response.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${response.status}: ${response.text}`)
  }
}

export async function register(gw: TestGateway, email: string, password = PASSWORD, name?: string): Promise<RegisteredUser> {
  const response = await gw.call('POST', '/auth/register', { json: name === undefined ? { email, password } : { email, password, name } })
  expectStatus(response, 201, `register ${email}`)
  return response.json<RegisteredUser>()
}

export async function login(gw: TestGateway, email: string, password = PASSWORD, headers: Record<string, string> = {}): Promise<LoggedIn> {
  const response = await gw.call('POST', '/auth/login', { json: { email, password }, headers })
  expectStatus(response, 200, `login ${email}`)
  return { ...response.json<Omit<LoggedIn, 'response'>>(), response }
}

/** Registers a fresh user and logs them in. */
export async function signUp(gw: TestGateway, tag: string, password = PASSWORD): Promise<LoggedIn> {
  const email = uniqueEmail(tag)
  await register(gw, email, password)
  return login(gw, email, password)
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

export function cookieName(gw: TestGateway): string {
  return sessionCookieName(gw.config.server.public_url, gw.config.sessions.cookie_domain)
}

/** The Cookie header a browser would send back after a login. */
export function sessionCookie(gw: TestGateway, token: string): Record<string, string> {
  return { cookie: `${cookieName(gw)}=${token}` }
}

/** A cookie-authenticated request from the gateway's own origin, as a browser on it would send. */
export function browser(gw: TestGateway, token: string): Record<string, string> {
  return { ...sessionCookie(gw, token), origin: new URL(gw.config.server.public_url).origin }
}

/** GET /auth/me with a bearer token: the quickest "does this token still work". */
export async function meStatus(gw: TestGateway, token: string): Promise<number> {
  return (await gw.call('GET', '/auth/me', { headers: bearer(token) })).status
}

export interface RowCounts {
  users: number
  audit: number
}

export async function countRows(gw: TestGateway): Promise<RowCounts> {
  const result = await gw.runtime.db.query<{ users: number; audit: number }>(
    'SELECT (SELECT count(*)::int FROM users) AS users, (SELECT count(*)::int FROM audit_events) AS audit',
  )
  const row = result.rows[0]
  if (row === undefined) throw new Error('no counts')
  return { users: Number(row.users), audit: Number(row.audit) }
}

const ERROR_KEYS = ['statusCode', 'code', 'error', 'message']
/** Extra fields an error may carry, by code (SPEC §5 allows documented extras). */
const DOCUMENTED_EXTRAS: Record<string, string[]> = {
  GH_VALIDATION: ['problems', 'field', 'unknown', 'missing', 'limit'],
  GH_FORBIDDEN: ['reason', 'route', 'missing_permission', 'missing_permissions'],
  GH_BAD_PATH: ['reason'],
  GH_MFA_REQUIRED: ['route'],
  GH_MFA_ENROLMENT_REQUIRED: ['enrol_at'],
}

/**
 * Asserts a JSON error answer of SPEC §5: the status, the code, and a body of exactly
 * `{statusCode, code, error, message}` plus only the extras documented for that code.
 */
export function assertError(t: Test, response: Response, status: number, code: string, what = ''): void {
  const body = assertCode(t, response, status, code, what)
  const allowed = new Set([...ERROR_KEYS, ...(DOCUMENTED_EXTRAS[code] ?? [])])
  const unexpected = Object.keys(body).filter((key) => !allowed.has(key))
  t.same(unexpected, [], `${what ? `${what}: ` : ''}${status} ${code}: no undocumented keys`)
}

export interface SetCookie {
  name: string
  value: string
  /** Attribute names lowercased; flags map to true. */
  attributes: Record<string, string | true>
}

export function parseSetCookie(header: string): SetCookie {
  const [pair = '', ...rest] = header.split(';')
  const eq = pair.indexOf('=')
  const attributes: Record<string, string | true> = {}
  for (const part of rest) {
    const trimmed = part.trim()
    if (trimmed === '') continue
    const at = trimmed.indexOf('=')
    if (at === -1) attributes[trimmed.toLowerCase()] = true
    else attributes[trimmed.slice(0, at).trim().toLowerCase()] = trimmed.slice(at + 1).trim()
  }
  return { name: pair.slice(0, eq).trim(), value: pair.slice(eq + 1).trim(), attributes }
}

export function setCookies(response: Response): SetCookie[] {
  const header = response.headers['set-cookie']
  const list = header === undefined ? [] : Array.isArray(header) ? header : [header]
  return list.map(parseSetCookie)
}

/** True when a Set-Cookie tells the browser to drop the cookie now. */
export function isCleared(cookie: SetCookie): boolean {
  const maxAge = cookie.attributes['max-age']
  if (typeof maxAge === 'string' && Number(maxAge) <= 0) return true
  const expires = cookie.attributes.expires
  return typeof expires === 'string' && Date.parse(expires) <= Date.now()
}
