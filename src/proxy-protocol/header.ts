/**
 * Reads the PROXY protocol header (v1 text or v2 binary, haproxy's proxy-protocol.txt) at the
 * start of a connection's bytes. The header's fields are parsed by proxy-protocol-js; how long
 * the header is, and whether the addresses in it are addresses at all, is checked here.
 */
import { isIP } from 'node:net'
import {
  Command, IPv4ProxyAddress, IPv6ProxyAddress, V1ProxyProtocol, V2ProxyProtocol,
} from 'proxy-protocol-js'

/** The client a proxy connected on behalf of. */
export interface ProxiedPeer {
  address: string
  port: number
  family: 'IPv4' | 'IPv6'
}

export type HeaderReading =
  | { state: 'incomplete' }
  | { state: 'invalid'; reason: string }
  /** `peer` is null for a header that names no client (v1 UNKNOWN, v2 LOCAL or UNSPEC): the TCP peer stands. */
  | { state: 'complete'; length: number; peer: ProxiedPeer | null }

const V1_PREFIX = Buffer.from('PROXY ')
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
/** The longest v1 line the specification allows, CRLF included. */
const V1_MAX_LENGTH = 107
/** Signature, version/command, family/transport and the 2-byte length. */
const V2_FIXED_LENGTH = 16
/** Larger than any header a proxy sends (addresses plus a few TLVs); a bigger one is refused, not buffered. */
export const V2_MAX_LENGTH = 1_024

/** Reads the header from the first bytes of a connection, which may not all have arrived yet. */
export function readProxyHeader(bytes: Buffer): HeaderReading {
  if (startsLike(bytes, V2_SIGNATURE)) {
    if (bytes.length < V2_FIXED_LENGTH) return { state: 'incomplete' }
    return readV2(bytes)
  }
  if (startsLike(bytes, V1_PREFIX)) {
    const end = bytes.subarray(0, V1_MAX_LENGTH).indexOf('\r\n')
    if (end === -1) return bytes.length >= V1_MAX_LENGTH ? invalid('v1 header longer than 107 bytes') : { state: 'incomplete' }
    return readV1(bytes.subarray(0, end + 2).toString('latin1'))
  }
  return invalid('the connection did not start with a PROXY protocol header')
}

function readV1(line: string): HeaderReading {
  const length = line.length
  if (/^PROXY UNKNOWN[ \r]/.test(line)) return { state: 'complete', length, peer: null }
  let parsed: V1ProxyProtocol
  try {
    parsed = V1ProxyProtocol.parse(line)
  } catch {
    return invalid('malformed v1 header')
  }
  const family = parsed.inetProtocol === 'TCP4' ? 4 : parsed.inetProtocol === 'TCP6' ? 6 : 0
  const address = parsed.source.ipAddress
  // The parser takes any word for an address; one that is not would end up in logs and headers.
  if (family === 0 || isIP(address) !== family || isIP(parsed.destination.ipAddress) !== family) {
    return invalid('v1 header with an address that is not an IP address of its family')
  }
  if (!isPort(parsed.source.port) || !isPort(parsed.destination.port)) return invalid('v1 header with a port out of range')
  return { state: 'complete', length, peer: { address: canonical(address), port: parsed.source.port, family: family === 4 ? 'IPv4' : 'IPv6' } }
}

function readV2(bytes: Buffer): HeaderReading {
  const length = V2_FIXED_LENGTH + bytes.readUInt16BE(14)
  if (length > V2_MAX_LENGTH) return invalid(`v2 header longer than ${V2_MAX_LENGTH} bytes`)
  if (bytes.length < length) return { state: 'incomplete' }
  let parsed: V2ProxyProtocol
  try {
    // Exactly the header: the parser would otherwise count what follows as TLVs.
    parsed = V2ProxyProtocol.parse(new Uint8Array(bytes.subarray(0, length)))
  } catch {
    return invalid('malformed v2 header')
  }
  // LOCAL: the proxy's own connection (a health check); the TCP peer is the client.
  if (parsed.command === Command.LOCAL) return { state: 'complete', length, peer: null }
  const { proxyAddress } = parsed
  if (proxyAddress instanceof IPv4ProxyAddress) {
    const address = proxyAddress.sourceAddress.address.join('.')
    return { state: 'complete', length, peer: { address, port: proxyAddress.sourcePort, family: 'IPv4' } }
  }
  if (proxyAddress instanceof IPv6ProxyAddress) {
    const raw = proxyAddress.sourceAddress.address
    // An IPv4 client carried in IPv6 form (::ffff:a.b.c.d) is an IPv4 client.
    if (raw.slice(0, 10).every((byte) => byte === 0) && raw[10] === 0xff && raw[11] === 0xff) {
      return { state: 'complete', length, peer: { address: raw.slice(12).join('.'), port: proxyAddress.sourcePort, family: 'IPv4' } }
    }
    const words: string[] = []
    for (let i = 0; i < 16; i += 2) words.push((((raw[i] ?? 0) << 8) | (raw[i + 1] ?? 0)).toString(16))
    return { state: 'complete', length, peer: { address: canonical(words.join(':')), port: proxyAddress.sourcePort, family: 'IPv6' } }
  }
  // UNSPEC or a unix socket: no client address to take over.
  return { state: 'complete', length, peer: null }
}

/** Whether `bytes` could be the start of `prefix` (or starts with all of it). */
function startsLike(bytes: Buffer, prefix: Buffer): boolean {
  const n = Math.min(bytes.length, prefix.length)
  return n > 0 && bytes.subarray(0, n).equals(prefix.subarray(0, n))
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 0 && port <= 65_535
}

/** The form node itself reports addresses in (lower case, IPv6 compressed). */
function canonical(address: string): string {
  if (isIP(address) !== 6) return address
  return new URL(`http://[${address}]/`).hostname.slice(1, -1)
}

function invalid(reason: string): HeaderReading {
  return { state: 'invalid', reason }
}
