import t from 'tap'
import { trustedProxies } from '../src/http/trusted-proxies.js'

t.test('trusts the peers inside the ranges, IPv4 on a dual-stack socket included', async (t) => {
  const proxies = trustedProxies(['10.0.0.0/8', '192.168.1.7/32', 'fd00::/8'])
  for (let asked = 1; asked <= 2; asked++) {
    for (const peer of ['10.1.2.3', '::ffff:10.1.2.3', '192.168.1.7', 'fd00::1', 'fdab:1::9']) t.ok(proxies.trusts(peer), `${peer}, asked ${asked}×`)
    for (const peer of ['11.1.2.3', '::ffff:11.1.2.3', '192.168.1.8', 'fe80::1', '', 'garbage', '10.1.2']) {
      t.notOk(proxies.trusts(peer), `${peer || '(empty)'}, asked ${asked}×`)
    }
  }
  t.notOk(trustedProxies([]).trusts('10.1.2.3'), 'an empty list trusts nobody')
})

t.test('answers stay right however many peers ask, each asked again', async (t) => {
  const proxies = trustedProxies(['10.0.0.0/16'])
  const wrong: string[] = []
  // More distinct peers than are remembered, in and out of the range, each asked again at
  // once and after a thousand others.
  for (let i = 0; i < 3000; i++) {
    for (const j of [i, i, i - 1000].filter((n) => n >= 0)) {
      const inside = j % 3 === 0
      const peer = `${inside ? '10.0' : '10.1'}.${Math.floor(j / 256) % 256}.${j % 256}`
      if (proxies.trusts(peer) !== inside) wrong.push(peer)
    }
  }
  t.same(wrong, [])
})
