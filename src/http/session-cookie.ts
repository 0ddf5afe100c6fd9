/**
 * The session cookie of SPEC §3: `__Host-gh_session; HttpOnly; Secure; SameSite=Lax; Path=/`
 * when public_url is https, `gh_session; HttpOnly; SameSite=Lax; Path=/` when it is plain http.
 */
import type {} from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { sessionCookieName, sessionCookieValues } from './credentials.js'

/** A cookie the gateway sets for itself: the session cookie, the OIDC flow handle. */
export interface GatewayCookie {
  readonly name: string
  /** The one session cookie the request carries, or null (none, or several). */
  read(request: FastifyRequest): string | null
  set(reply: FastifyReply, value: string): void
  clear(reply: FastifyReply): void
}

/** With a `cookieDomain`, the cookie names it (`Domain=`), so that every host under it receives it. */
export function createSessionCookie(publicUrl: string, maxAgeMs: number, cookieDomain: string | null = null): GatewayCookie {
  return createGatewayCookie(sessionCookieName(publicUrl, cookieDomain), publicUrl, maxAgeMs, cookieDomain)
}

/**
 * A cookie of the gateway's own (the session, the OIDC flow handle): HttpOnly, SameSite=Lax,
 * Path=/, Secure when public_url is https; read only when the request carries exactly one.
 */
export function createGatewayCookie(name: string, publicUrl: string, maxAgeMs: number, domain: string | null = null): GatewayCookie {
  const attributes = {
    httpOnly: true,
    secure: publicUrl.startsWith('https:'),
    sameSite: 'lax',
    path: '/',
    ...(domain === null ? {} : { domain }),
  } as const
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
