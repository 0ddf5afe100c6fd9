/**
 * HTTP/1.1 over a raw TLS socket, for requests no well-behaved client sends: odd request
 * targets (`/a/%2e%2e/b`, `//x`, backslashes, NUL), duplicate or oddly spelled headers, a
 * client `Connection` header. The bytes go out exactly as given; the answer is parsed just
 * enough to read its status, headers and body (Content-Length, chunked, or until close).
 */
import { connect } from 'node:tls'
import { testCertificate } from './gateway.js'

export interface RawResponse {
  status: number
  /** Header names lower-cased; repeated headers as arrays. */
  headers: Record<string, string | string[]>
  /** [name, value, name, value, …] as received. */
  rawHeaders: string[]
  body: string
}

export interface RawRequestOptions {
  /** Give up after this long. Default 10 s. */
  timeoutMs?: number
  /** The request is a HEAD: the answer has no body whatever its headers say. */
  head?: boolean
}

/** Sends `bytes` to the gateway at `url` (https://host:port) and reads one answer. */
export async function rawRequest(url: string, bytes: string | Buffer, options: RawRequestOptions = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(url)
  const { cert } = await testCertificate()
  return new Promise<RawResponse>((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca: cert, servername: 'localhost' })
    let buffer = Buffer.alloc(0)
    let settled = false
    const finish = (error: Error | null, response?: RawResponse): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      if (error !== null) reject(error)
      else if (response !== undefined) resolve(response)
    }
    const timer = setTimeout(() => finish(new Error(`no complete answer within ${options.timeoutMs ?? 10_000} ms`)), options.timeoutMs ?? 10_000)
    const tryParse = (ended: boolean): void => {
      const parsed = parseResponse(buffer, ended, options.head === true)
      if (parsed !== null) finish(null, parsed)
      else if (ended) finish(new Error(`connection closed before a complete answer: ${JSON.stringify(buffer.toString('latin1').slice(0, 200))}`))
    }
    socket.once('secureConnect', () => socket.write(bytes))
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      tryParse(false)
    })
    socket.on('end', () => tryParse(true))
    socket.on('error', (error) => {
      // A server that answers and resets at once still gave a complete answer.
      const parsed = parseResponse(buffer, true, options.head === true)
      if (parsed !== null) finish(null, parsed)
      else finish(error)
    })
  })
}

/** A request text: `method target HTTP/1.1`, Host, the headers in order and spelling, then the body. */
export function requestText(method: string, target: string, headers: ReadonlyArray<readonly [string, string]> = [], body = ''): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: localhost']
  for (const [name, value] of headers) lines.push(`${name}: ${value}`)
  if (body !== '') lines.push(`Content-Length: ${Buffer.byteLength(body)}`)
  return `${lines.join('\r\n')}\r\n\r\n${body}`
}

/** Sends one request built by `requestText` and reads its answer. */
export function rawCall(
  url: string,
  method: string,
  target: string,
  headers: ReadonlyArray<readonly [string, string]> = [],
  body = '',
): Promise<RawResponse> {
  return rawRequest(url, requestText(method, target, headers, body), { head: method === 'HEAD' })
}

/** The final answer in `buffer`, after any interim 1xx answers (`100 Continue`); null while incomplete. */
function parseResponse(buffer: Buffer, ended: boolean, head: boolean): RawResponse | null {
  const end = buffer.indexOf('\r\n\r\n')
  if (end === -1) return null
  const [statusLine = '', ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN)
  if (Number.isNaN(status)) throw new Error(`not an HTTP answer: ${statusLine}`)
  if (status >= 100 && status < 200 && status !== 101) return parseResponse(buffer.subarray(end + 4), ended, head)
  const rawHeaders: string[] = []
  const headers: Record<string, string | string[]> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon)
    const value = line.slice(colon + 1).trim()
    rawHeaders.push(name, value)
    const key = name.toLowerCase()
    const previous = headers[key]
    headers[key] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value]
  }
  const rest = buffer.subarray(end + 4)
  if (head || status === 204 || status === 304 || status === 101) {
    return { status, headers, rawHeaders, body: '' }
  }
  const length = headers['content-length']
  if (typeof length === 'string') {
    const size = Number(length)
    return rest.length >= size ? { status, headers, rawHeaders, body: rest.subarray(0, size).toString('utf8') } : null
  }
  if (String(headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) {
    const body = dechunk(rest)
    return body === null ? null : { status, headers, rawHeaders, body: body.toString('utf8') }
  }
  return ended ? { status, headers, rawHeaders, body: rest.toString('utf8') } : null
}

/** The body of a complete chunked message, or null when more bytes are needed. */
function dechunk(data: Buffer): Buffer | null {
  const parts: Buffer[] = []
  let at = 0
  for (;;) {
    const lineEnd = data.indexOf('\r\n', at)
    if (lineEnd === -1) return null
    const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16)
    if (Number.isNaN(size)) throw new Error('malformed chunk size')
    if (size === 0) return Buffer.concat(parts)
    const start = lineEnd + 2
    if (data.length < start + size + 2) return null
    parts.push(data.subarray(start, start + size))
    at = start + size + 2
  }
}
