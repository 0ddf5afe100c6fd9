/**
 * The resolve stage: the request's host, target and method to a route and the exact URL the
 * upstream is asked for. Everything after it (the assertion's `htu`, `gatehouse explain`'s
 * answer, the proxy call) uses this one URL, so they cannot disagree.
 */
import type { RouteConfig } from '../../config/types.js'
import { GatehouseError } from '../../errors.js'
import { assertForwardable, normalizeTarget, type NormalizedTarget } from '../paths.js'
import type { RouteMatch, RouteTable } from '../route-table.js'
import type { GateRequest } from './request.js'

export interface UpstreamTarget {
  /** Scheme, host and path the upstream is asked for, without the query: what the proxy client is given. */
  base: string
  /** '' or the query from its '?', exactly as the client sent it (a lone '?' is dropped). */
  query: string
  /** The path and query the upstream receives: the assertion's `htu`. */
  htu: string
  /** `base` + `query`: the whole URL, as `gatehouse explain` prints it. */
  url: string
}

export interface Resolved {
  target: NormalizedTarget
  match: Extract<RouteMatch, { kind: 'route' }>
  route: RouteConfig
  upstream: UpstreamTarget
}

/**
 * Normalises the target (400 GH_BAD_PATH), matches a route (404 GH_NOT_FOUND for none or a
 * reserved path, 405 GH_METHOD_NOT_ALLOWED for a prefix without the method), refuses a path the
 * proxy cannot send on as it is, and works out the upstream URL. `seen` learns the target and
 * the match as soon as they are known, so that a refusal can still report them.
 */
export function resolveRequest(
  table: RouteTable,
  request: { kind?: GateRequest['kind']; host: string | null; target: string; method: string },
  seen: (step: { target: NormalizedTarget } | { match: RouteMatch }) => void,
): Resolved {
  const target = normalizeTarget(request.target)
  seen({ target })
  const match = table.match(target.path, request.method, request.host)
  seen({ match })
  if (match.kind === 'not_found') throw new GatehouseError('GH_NOT_FOUND')
  if (match.kind === 'method_not_allowed') throw new GatehouseError('GH_METHOD_NOT_ALLOWED')
  assertForwardable(match.upstreamPath)
  const { route } = match
  // Forward auth judges the original request as the proxy in front received it; what that proxy
  // then sends to its upstream is its own business, so the assertion names the original target.
  const upstream = request.kind === 'forward_auth' || route.upstream === null
    ? originalTarget(target)
    : upstreamTarget(route, route.upstream, match.upstreamPath, target.query)
  return { target, match, route, upstream }
}

/** The normalised original path and query: `htu` of a forward-auth decision. */
function originalTarget(target: NormalizedTarget): UpstreamTarget {
  const query = target.query === '?' ? '' : target.query
  return { base: target.path, query, htu: target.path + query, url: target.path + query }
}

const upstreamBases = new WeakMap<RouteConfig, string>()

/**
 * The route's upstream origin and base path (without its trailing slash, so that `http://h/base/`
 * and `/x` never yield `/base//x`) followed by the path. The path is what the URL parser makes
 * of it, which is exactly what the proxy client sends: it percent-encodes a few characters a
 * client may send raw (`{`, `}`, `"`, `<`, `>`, backquote), and the assertion must carry the
 * result. The query is kept out of the parser: it would re-encode some characters (' becomes
 * %27), and the upstream must receive the query as the client sent it.
 */
export function upstreamTarget(route: RouteConfig, upstreamUrl: string, path: string, rawQuery: string): UpstreamTarget {
  let base = upstreamBases.get(route)
  if (base === undefined) {
    const upstream = new URL(upstreamUrl)
    base = upstream.origin + upstream.pathname.replace(/\/$/, '')
    upstreamBases.set(route, base)
  }
  const url = new URL(base + path)
  // A lone '?' is not forwarded (the proxy client drops an empty query string).
  const query = rawQuery === '?' ? '' : rawQuery
  const origin = url.origin
  return { base: origin + url.pathname, query, htu: url.pathname + query, url: origin + url.pathname + query }
}
