/**
 * SPEC §4a: every /auth answer carries `Cache-Control: no-store`, however its path was
 * spelled (`/%61uth/me` is routed to /auth/me). Decided from the route the router matched,
 * and for the catch-all and not-found answers from the path as the edge normalises it; never
 * from the raw target.
 */
import type { FastifyRequest } from 'fastify'
import { normalizeTarget } from '../core/paths.js'

const CATCH_ALL = new Set(['/', '/*'])

function isAuthPath(path: string): boolean {
  return path === '/auth' || path.startsWith('/auth/')
}

/** The path a target names, for a target the edge would refuse: decoded as far as it decodes. */
function loosePath(target: string): string {
  const path = target.split('?', 1)[0] ?? ''
  try {
    return decodeURIComponent(path).replace(/\/{2,}/g, '/')
  } catch {
    return path
  }
}

export function isAuthAnswer(request: FastifyRequest): boolean {
  const route = request.routeOptions.url
  if (route !== undefined && !CATCH_ALL.has(route)) return isAuthPath(route)
  const target = request.raw.url ?? ''
  try {
    return isAuthPath(normalizeTarget(target).path)
  } catch {
    return isAuthPath(loosePath(target))
  }
}
