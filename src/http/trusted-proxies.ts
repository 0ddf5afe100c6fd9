/**
 * `server.trust_proxy`: the peers whose X-Forwarded-For is believed (SPEC §4, §6).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { BlockList, isIP, isIPv4, isIPv6 } from 'node:net'

export interface TrustedProxies {
  trusts(peer: string): boolean
}

/** Peers whose answer is remembered; all are forgotten when there are more. */
const REMEMBERED_PEERS = 1024

export function trustedProxies(cidrs: readonly string[]): TrustedProxies {
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [address = '', prefix = ''] = cidr.split('/')
    list.addSubnet(address, Number(prefix), isIPv6(address) ? 'ipv6' : 'ipv4')
  }
  const check = (peer: string): boolean => {
    // node reports IPv4 peers on dual-stack sockets as ::ffff:a.b.c.d
    const mapped = peer.startsWith('::ffff:') ? peer.slice(7) : peer
    if (isIPv4(mapped)) return list.check(mapped, 'ipv4') || list.check(peer, 'ipv6')
    return isIPv6(peer) && list.check(peer, 'ipv6')
  }
  // BlockList.check makes a SocketAddress on every call; the peers asking are mostly the
  // same few proxies, so their answers are kept.
  const answers = new Map<string, boolean>()
  return {
    trusts(peer: string): boolean {
      if (cidrs.length === 0) return false
      let answer = answers.get(peer)
      if (answer === undefined) {
        answer = check(peer)
        if (answers.size >= REMEMBERED_PEERS) answers.clear()
        answers.set(peer, answer)
      }
      return answer
    },
  }
}

/**
 * SPEC §4a: an X-Forwarded-For entry that is not an IP address (`garbage1`, `unknown`,
 * `[::1]:80`) is ignored when the client address is worked out. Dropped from the header
 * itself before anything reads it, so that fastify's `request.ip` (rate limits, lockout,
 * logs), the edge's X-Forwarded-For and the audit trail all see the same addresses.
 */
export function dropNonAddressForwardedFor(headers: IncomingHttpHeaders): void {
  const value = headers['x-forwarded-for']
  if (value === undefined) return
  const entries = (Array.isArray(value) ? value.join(',') : value).split(',').map((entry) => entry.trim())
  const addresses = entries.filter((entry) => isIP(entry) !== 0)
  if (addresses.length === entries.length && !Array.isArray(value)) return
  if (addresses.length === 0) delete headers['x-forwarded-for']
  else headers['x-forwarded-for'] = addresses.join(', ')
}
