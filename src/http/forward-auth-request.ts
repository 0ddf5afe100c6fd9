/**
 * The original request of a forward-auth call (SPEC §4b), read from the one header set that
 * `forward_auth.headers` names: `forwarded` (X-Forwarded-Method, -Proto, -Host, -Uri: Traefik,
 * Caddy, nginx when configured so) or `original` (X-Original-Method and an absolute
 * X-Original-URL: nginx). The other set is ignored; a chosen header sent twice, or a missing or
 * malformed one, is 400, never a guess.
 */
import { GatehouseError } from '../errors.js'

export interface OriginalRequest {
  /** Upper-case. */
  method: string
  /** http or https: how the client reached the proxy in front. */
  proto: 'http' | 'https'
  /** As the client sent it (port included). */
  host: string
  /** Origin-form path and query, as the client sent them. */
  target: string
}

const HEADER_SETS = {
  forwarded: ['x-forwarded-method', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-uri'],
  original: ['x-original-method', 'x-original-url'],
} as const

const METHOD = /^[A-Za-z]{1,20}$/
const HOST = /^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$/
const ABSOLUTE_URL = /^(https?):\/\/([^/?#]+)([^#]*)$/i

export function readOriginalRequest(rawHeaders: readonly string[], set: keyof typeof HEADER_SETS, defaultProto: 'http' | 'https'): OriginalRequest {
  const values = collect(rawHeaders, HEADER_SETS[set])
  const method = values.get(set === 'forwarded' ? 'x-forwarded-method' : 'x-original-method')
  if (method === undefined || !METHOD.test(method)) throw invalid(`${set === 'forwarded' ? 'X-Forwarded-Method' : 'X-Original-Method'} must name the original method`)
  if (set === 'original') return { method: method.toUpperCase(), ...fromUrl(values.get('x-original-url')) }

  const host = values.get('x-forwarded-host')
  if (host === undefined || !HOST.test(host)) throw invalid('X-Forwarded-Host must name the original host')
  const target = values.get('x-forwarded-uri')
  if (target === undefined || !target.startsWith('/')) throw invalid('X-Forwarded-Uri must be the original path and query, starting with /')
  const proto = values.get('x-forwarded-proto')?.toLowerCase() ?? defaultProto
  if (proto !== 'http' && proto !== 'https') throw invalid('X-Forwarded-Proto must be http or https')
  return { method: method.toUpperCase(), proto, host, target }
}

/** The absolute URL the original request reached: the `next` of a login it is sent to. */
export function originalUrl(original: OriginalRequest): string {
  return `${original.proto}://${original.host}${original.target}`
}

function fromUrl(url: string | undefined): Omit<OriginalRequest, 'method'> {
  const parts = url === undefined ? null : ABSOLUTE_URL.exec(url)
  if (parts === null || !HOST.test(parts[2] as string)) throw invalid('X-Original-URL must be the absolute URL of the original request')
  const rest = parts[3] as string
  return {
    proto: (parts[1] as string).toLowerCase() as 'http' | 'https',
    host: parts[2] as string,
    target: rest === '' ? '/' : rest.startsWith('/') ? rest : `/${rest}`,
  }
}

/** The chosen headers, each at most once (node would join or drop repeats in `headers`). */
function collect(rawHeaders: readonly string[], names: readonly string[]): Map<string, string> {
  const values = new Map<string, string>()
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase()
    if (!names.includes(name)) continue
    if (values.has(name)) throw invalid(`${rawHeaders[i]} was sent twice`)
    values.set(name, (rawHeaders[i + 1] as string).trim())
  }
  return values
}

function invalid(message: string): GatehouseError {
  return new GatehouseError('GH_VALIDATION', message)
}
