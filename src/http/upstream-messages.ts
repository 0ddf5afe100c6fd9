/**
 * The headers of a proxied exchange at the gateway's two ends, as HTTP/1.1 and HTTP/2 require
 * of a proxy (RFC 9110 §7.6.1): where the upstream is addressed, and the client's answer made
 * from the upstream's without its connection-specific fields. The request side is
 * upstream-headers.ts.
 */
import type { FastifyReply } from 'fastify'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { UpstreamServer } from '../core/upstream-pool.js'

/** Fields that describe one connection, never forwarded in either direction (RFC 9110 §7.6.1, RFC 9113 §8.2.2). */
export const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te', 'trailer'])

export interface ServerAddress {
  /** scheme://host:port, what the proxy client connects to. */
  origin: string
  /** The `Host` the server receives. */
  host: string
}

const addresses = new WeakMap<UpstreamServer, ServerAddress>()

export function serverAddress(server: UpstreamServer): ServerAddress {
  let address = addresses.get(server)
  if (address === undefined) {
    const url = new URL(server.url)
    address = { origin: url.origin, host: url.host }
    addresses.set(server, address)
  }
  return address
}

/**
 * The answer's headers: what the gateway has set on the reply (request id, rate limits, CORS,
 * HSTS), overridden by the upstream's own, without the upstream's connection-specific fields.
 * An HTTP/1.1 client whose request body is still coming closes its connection afterwards: it
 * could not be reused until that body was read.
 */
export function answerHeaders(reply: FastifyReply, upstream: IncomingHttpHeaders, request: IncomingMessage): Record<string, string | number | string[] | undefined> {
  const listed = connectionListed(upstream.connection)
  const out: Record<string, string | number | string[] | undefined> = reply.getHeaders()
  for (const name in upstream) {
    const value = upstream[name]
    if (value === undefined || CONNECTION_SPECIFIC.has(name) || (listed !== null && listed.has(name))) continue
    out[name] = value
  }
  if (!request.complete && request.httpVersionMajor < 2) out.connection = 'close'
  return out
}

/** The field names a message's `Connection` lists (lower-case), or null for none. */
export function connectionListed(value: string | string[] | undefined): Set<string> | null {
  // Every HTTP/1.1 client sends one of these two: fields that are dropped anyway.
  if (value === undefined || value === 'keep-alive' || value === 'close') return null
  const names = (Array.isArray(value) ? value.join(',') : value).toLowerCase().split(',').map((name) => name.trim()).filter(Boolean)
  return names.length === 0 ? null : new Set(names)
}
