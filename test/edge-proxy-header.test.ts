/**
 * The PROXY protocol header reader (src/proxy-protocol/header.ts), table-tested on bytes:
 * v1 and v2, IPv4 and IPv6, the headers that name no client, headers that have not all
 * arrived, and the malformed or oversized ones that must close the connection.
 */
import t from 'tap'
import { readProxyHeader, V2_MAX_LENGTH } from '../src/proxy-protocol/header.js'

const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]

function v2(command: number, family: number, addresses: number[], extra: number[] = []): Buffer {
  const body = [...addresses, ...extra]
  return Buffer.from([...SIGNATURE, 0x20 | command, family, body.length >> 8, body.length & 0xff, ...body])
}

const ipv4 = (source: number[], port: number) => [...source, 10, 0, 0, 1, port >> 8, port & 0xff, 0x01, 0xbb]
const ipv6 = (source: number[], port: number) => [...source, ...new Array<number>(15).fill(0), 1, port >> 8, port & 0xff, 0x01, 0xbb]
const request = Buffer.from('GET / HTTP/1.1\r\n\r\n')

t.test('v1: the client of a TCP4 or TCP6 line, and how long the line is', async (t) => {
  const line = 'PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n'
  t.same(readProxyHeader(Buffer.concat([Buffer.from(line), request])),
    { state: 'complete', length: line.length, peer: { address: '203.0.113.7', port: 5555, family: 'IPv4' } })
  const six = 'PROXY TCP6 2001:DB8:0:0::7 2001:db8::1 5555 443\r\n'
  t.same(readProxyHeader(Buffer.from(six)),
    { state: 'complete', length: six.length, peer: { address: '2001:db8::7', port: 5555, family: 'IPv6' } }, 'IPv6 in the form node reports')
  t.same(readProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { state: 'complete', length: 15, peer: null }, 'UNKNOWN: the TCP peer stands')
  t.same(readProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n')), { state: 'complete', length: 35, peer: null })
})

t.test('v2: PROXY over IPv4 and IPv6, LOCAL, TLVs after the addresses', async (t) => {
  const four = v2(1, 0x11, ipv4([198, 51, 100, 4], 5555))
  t.same(readProxyHeader(Buffer.concat([four, request])), { state: 'complete', length: 28, peer: { address: '198.51.100.4', port: 5555, family: 'IPv4' } })
  const six = v2(1, 0x21, ipv6([0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 9], 80))
  t.same(readProxyHeader(six), { state: 'complete', length: 52, peer: { address: '2001:db8::9', port: 80, family: 'IPv6' } })
  const mapped = v2(1, 0x21, ipv6([...new Array<number>(10).fill(0), 0xff, 0xff, 192, 0, 2, 1], 80))
  t.same(readProxyHeader(mapped), { state: 'complete', length: 52, peer: { address: '192.0.2.1', port: 80, family: 'IPv4' } },
    'an IPv4 client in ::ffff: form is an IPv4 client')
  t.same(readProxyHeader(v2(0, 0x00, [])), { state: 'complete', length: 16, peer: null }, 'LOCAL (a health check): the TCP peer stands')
  const withTlv = v2(1, 0x11, ipv4([198, 51, 100, 4], 5555), [0x04, 0x00, 0x01, 0x00])
  t.same(readProxyHeader(Buffer.concat([withTlv, request])), { state: 'complete', length: 32, peer: { address: '198.51.100.4', port: 5555, family: 'IPv4' } },
    'the TLVs belong to the header; what follows them does not')
})

t.test('a header that has not all arrived is incomplete', async (t) => {
  const line = Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n')
  for (const cut of [1, 5, 6, 20, line.length - 1]) t.same(readProxyHeader(line.subarray(0, cut)), { state: 'incomplete' }, `v1, ${cut} bytes`)
  const four = v2(1, 0x11, ipv4([198, 51, 100, 4], 5555))
  for (const cut of [1, 12, 15, 16, four.length - 1]) t.same(readProxyHeader(four.subarray(0, cut)), { state: 'incomplete' }, `v2, ${cut} bytes`)
})

t.test('anything else is invalid', async (t) => {
  const cases: Array<[string, Buffer]> = [
    ['plain HTTP', request],
    ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00])],
    ['v1 with a word for an address', Buffer.from('PROXY TCP4 evil 10.0.0.1 1 2\r\n')],
    ['v1 TCP4 with an IPv6 address', Buffer.from('PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n')],
    ['v1 with a port out of range', Buffer.from('PROXY TCP4 192.0.2.1 10.0.0.1 70000 2\r\n')],
    ['v1 with a header injected in the address', Buffer.from('PROXY TCP4 1.2.3.4,5.6.7.8 10.0.0.1 1 2\r\n')],
    ['v1 without CRLF within 107 bytes', Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`)],
    ['v2 with version 1', Buffer.from([...SIGNATURE, 0x11, 0x11, 0, 12, ...ipv4([1, 2, 3, 4], 1)])],
    ['v2 shorter than its addresses', Buffer.from([...SIGNATURE, 0x21, 0x11, 0, 4, 1, 2, 3, 4])],
    ['v2 longer than the limit', Buffer.from([...SIGNATURE, 0x21, 0x11, (V2_MAX_LENGTH + 1) >> 8, (V2_MAX_LENGTH + 1) & 0xff])],
  ]
  for (const [what, bytes] of cases) t.equal(readProxyHeader(bytes).state, 'invalid', what)
})
