/**
 * HTTP answers written straight to a socket that was handed over for an upgrade: the
 * gateway's refusals (same JSON body as the edge's, SPEC §5) and an upstream's non-101
 * answer relayed with its own status and headers. Every such answer closes the connection.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { GatehouseError } from '../../errors.js'
import { errorBody } from '../error-handler.js'
import { CONNECTION_SPECIFIC, connectionListed } from '../upstream-messages.js'

/** The largest non-101 answer body relayed from an upstream to a handshake. */
export const MAX_RELAYED_BODY = 1024 * 1024

export function writeError(socket: Duplex, err: GatehouseError, headers: Record<string, string>): void {
  const extra: Record<string, string> = { ...headers }
  if (err.retryAfter !== undefined) extra['retry-after'] = String(Math.max(1, Math.ceil(err.retryAfter)))
  if (err.statusCode === 401) extra['www-authenticate'] = 'Bearer realm="gatehouse"'
  const body = Buffer.from(JSON.stringify(errorBody(err)))
  writeAnswer(socket, err.statusCode, [...Object.entries(extra).flat(), 'content-type', 'application/json; charset=utf-8'], body)
}

/** `rawHeaders` as node gives them (name, value, …). */
export function writeAnswer(socket: Duplex, status: number, rawHeaders: readonly string[], body: Buffer): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${sanitize(rawHeaders[i + 1]!)}\r\n`
  head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]))
}

/** The 101 answer head for the client, from the upstream's. */
export function switchingProtocolsHead(response: IncomingMessage, keep: (name: string, value: string) => boolean): Buffer {
  let head = 'HTTP/1.1 101 Switching Protocols\r\n'
  const raw = response.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (keep(raw[i]!, raw[i + 1]!)) head += `${raw[i]}: ${sanitize(raw[i + 1]!)}\r\n`
  }
  return Buffer.from(`${head}\r\n`, 'latin1')
}

/** Relays an upstream's ordinary answer to a handshake (its body read whole, then sent with a length). */
export async function relayAnswer(socket: Duplex, response: IncomingMessage, keep: (name: string, value: string) => boolean, extra: Record<string, string>): Promise<void> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of response as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_RELAYED_BODY) throw new RangeError('the upstream answered the handshake with too large a body')
    chunks.push(chunk)
  }
  const headers: string[] = Object.entries(extra).flat()
  // This connection's framing is the gateway's own: the upstream's connection-specific fields,
  // those its Connection names and its Content-Length stay behind.
  const listed = connectionListed(response.headers.connection)
  const raw = response.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    const lower = name.toLowerCase()
    if (CONNECTION_SPECIFIC.has(lower) || lower === 'content-length' || listed?.has(lower) === true || lower in extra) continue
    if (keep(name, raw[i + 1]!)) headers.push(name, raw[i + 1]!)
  }
  writeAnswer(socket, response.statusCode ?? 502, headers, Buffer.concat(chunks))
}

/** Header values go out as received; a CR or LF (which node never parses in) would split the head. */
function sanitize(value: string): string {
  return value.replace(/[\r\n]/g, ' ')
}
