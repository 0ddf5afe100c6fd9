/**
 * The session cookie of SPEC §3: `__Host-gh_session; HttpOnly; Secure; SameSite=Lax; Path=/`
 * when public_url is https, `gh_session; HttpOnly; SameSite=Lax; Path=/` when it is plain http.
 */
import type {} from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { sessionCookieName, sessionCookieValues } from './credentials.js'

export interface SessionCookie {
  readonly name: string
  /** The one session cookie the request carries, or null (none, or several). */
  read(request: FastifyRequest): string | null
  set(reply: FastifyReply, value: string): void
  clear(reply: FastifyReply): void
}

export function createSessionCookie(publicUrl: string, maxAgeMs: number): SessionCookie {
  return createGatewayCookie(sessionCookieName(publicUrl), publicUrl, maxAgeMs)
}

/**
 * A cookie of the gateway's own (the session, the OIDC flow handle): HttpOnly, SameSite=Lax,
 * Path=/, Secure when public_url is https; read only when the request carries exactly one.
 */
export function createGatewayCookie(name: string, publicUrl: string, maxAgeMs: number): SessionCookie {
  const attributes = { httpOnly: true, secure: publicUrl.startsWith('https:'), sameSite: 'lax', path: '/' } as const
  return {
    name,
    read(request) {
      const header = request.headers.cookie
      const values = header === undefined ? [] : sessionCookieValues(header, name)
      return values.length === 1 ? (values[0] as string) : null
    },
    set(reply, value) {
      reply.setCookie(name, value, { ...attributes, maxAge: Math.floor(maxAgeMs / 1000) })
    },
    clear(reply) {
      reply.clearCookie(name, attributes)
    },
  }
}
