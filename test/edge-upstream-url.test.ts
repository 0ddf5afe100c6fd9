/**
 * `gatehouse explain` and the edge share one pipeline (issue 12): for every strip_prefix /
 * upstream base path / query / encoded-character case, the URL explain prints is exactly the
 * URL a real upstream receives from a real gateway (SPEC §4: the upstream sees the normalised
 * path that was authorised, and the query as sent).
 */
import t from 'tap'
import { explain } from '../src/core/pipeline/index.js'
import { formatExplanation } from '../src/explain-format.js'
import { startTestGateway } from './helpers/gateway.js'
import { rawCall } from './helpers/raw-http.js'
import { startUpstream } from './helpers/upstream.js'

t.test('the URL explain prints is the URL the upstream receives', async (t) => {
  const upstream = await startUpstream(t)
  const up = upstream.url
  const routes: Array<{ match: string; upstream: string; strip_prefix: boolean }> = [
    { match: '/b1', upstream: `${up}/base/`, strip_prefix: true },
    { match: '/b2', upstream: `${up}/base`, strip_prefix: true },
    { match: '/b3', upstream: `${up}/base/`, strip_prefix: false },
    { match: '/b4', upstream: `${up}/base`, strip_prefix: false },
    { match: '/r1', upstream: `${up}/`, strip_prefix: true },
    { match: '/r2', upstream: up, strip_prefix: false },
    { match: '/d', upstream: `${up}/a/b/`, strip_prefix: true },
  ]
  const gw = await startTestGateway(t, {
    configure: (raw) => {
      raw.routes = routes.map((route, index) => ({ name: `r${index}`, auth: 'public', ...route }))
    },
  })
  const suffixes = [
    '', '/', '/x?q=1', '/x?', '/x/?a=1&a=2', '//x/./y/../z?a=/../b', '/%7Euser/%41%62', '/%e2%82%ac/%3b',
    "/a{b}c?q='x'&y=%2F", '/q"x<y>`z', '/x%20y?z=%20', '/a..b/c?..',
  ]
  let checked = 0
  for (const route of routes) {
    for (const suffix of suffixes) {
      const target = route.match + suffix
      const printed = formatExplanation(await explain(gw.runtime.routes, target, 'GET', null, { host: 'gatehouse.test' }))
      const said = /^answer: +proxied to (\S+)$/m.exec(printed)?.[1]
      const before = upstream.received.length
      const response = await rawCall(gw.url, 'GET', target)
      t.equal(response.status, 200, `${target} (upstream ${route.upstream}, strip_prefix ${route.strip_prefix}) is proxied`)
      if (upstream.received.length !== before + 1) {
        t.fail(`${target}: the upstream received ${upstream.received.length - before} requests`)
        continue
      }
      t.equal(said, up + upstream.last().url, `${target} (upstream ${route.upstream}, strip_prefix ${route.strip_prefix})`)
      checked++
    }
  }
  t.equal(checked, routes.length * suffixes.length, 'every case reached the upstream')
  // The disagreement of issue 12, spelled out.
  t.ok(upstream.received.some((r) => r.url === '/base/x?q=1'), 'upstream …/base/ with strip_prefix receives /base/x?q=1')
  t.equal((await explain(gw.runtime.routes, '/b1/x?q=1', 'GET', null)).answer.upstream_url, `${up}/base/x?q=1`,
    'and explain says so, never …/base//x?q=1')
})
