/**
 * CORS per route (SPEC §4a): a preflight from one of the route's origins is answered by the
 * gateway (204, before any authentication, never forwarded), one from another origin is 403
 * without CORS headers; every answer to a listed origin, the gateway's own errors included,
 * carries the exact origin, credentials and `Vary: Origin`, in place of the upstream's own
 * Access-Control-* headers. Without a route `cors`, OPTIONS is an ordinary request.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { RouteConfig } from '../config/types.js'
import { normalizeTarget } from '../core/paths.js'
import type { RouteTable } from '../core/route-table.js'
import { GatehouseError } from '../errors.js'

export interface Preflight {
  method: string
  target: string
  host: string | null
  origin: string | undefined
  requestMethod: string | undefined
}

/**
 * The answer's headers to a preflight for a route with `cors` (chosen by the method it asks
 * for); null when it is not one, and the request goes on as an ordinary OPTIONS. Throws 403
 * for an origin the route does not list.
 */
export function preflightAnswer(table: RouteTable, request: Preflight): Record<string, string> | null {
  if (request.method !== 'OPTIONS' || request.requestMethod === undefined || request.origin === undefined) return null
  let path: string
  try {
    path = normalizeTarget(request.target).path
  } catch {
    return null // the ordinary path answers 400
  }
  const match = table.match(path, request.requestMethod.toUpperCase(), request.host)
  if (match.kind !== 'route' || match.route.cors === null) return null
  const { cors } = match.route
  if (!cors.origins.includes(request.origin)) {
    throw new GatehouseError('GH_FORBIDDEN', 'This origin may not call this route', { details: { route: match.route.name } })
  }
  return {
    ...corsHeaders(request.origin),
    'access-control-allow-methods': cors.methods.join(', '),
    'access-control-allow-headers': cors.headers.join(', '),
    'access-control-max-age': String(Math.floor(cors.max_age / 1000)),
  }
}

/** The CORS headers of any answer on `route` to `origin`; null when the route does not list it. */
export function routeCorsHeaders(route: RouteConfig | null, origin: string | undefined): Record<string, string> | null {
  if (route?.cors == null || origin === undefined || !route.cors.origins.includes(origin)) return null
  return corsHeaders(origin)
}

function corsHeaders(origin: string): Record<string, string> {
  return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' }
}

/** The upstream's answer headers with its Access-Control-* replaced by the gateway's and Origin added to Vary. */
export function withRouteCors(headers: IncomingHttpHeaders, cors: Record<string, string>): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) {
    if (!name.toLowerCase().startsWith('access-control-')) out[name] = value
  }
  const vary = [out.vary].flat().filter((v): v is string => typeof v === 'string' && v !== '')
  const varies = vary.join(', ').split(',').map((v) => v.trim().toLowerCase())
  return { ...out, ...cors, vary: varies.includes('origin') || varies.includes('*') ? vary.join(', ') : [...vary, 'Origin'].join(', ') }
}
