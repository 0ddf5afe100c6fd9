/**
 * `server.trust_proxy`: the peers whose X-Forwarded-For is believed (SPEC §4, §6).
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net'

export interface TrustedProxies {
  trusts(peer: string): boolean
}

export function trustedProxies(cidrs: readonly string[]): TrustedProxies {
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [address = '', prefix = ''] = cidr.split('/')
    list.addSubnet(address, Number(prefix), isIPv6(address) ? 'ipv6' : 'ipv4')
  }
  return {
    trusts(peer: string): boolean {
      if (cidrs.length === 0) return false
      // node reports IPv4 peers on dual-stack sockets as ::ffff:a.b.c.d
      const mapped = peer.startsWith('::ffff:') ? peer.slice(7) : peer
      if (isIPv4(mapped)) return list.check(mapped, 'ipv4') || list.check(peer, 'ipv6')
      return isIPv6(peer) && list.check(peer, 'ipv6')
    },
  }
}
