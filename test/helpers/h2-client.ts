/**
 * HTTP/2 over TLS with node:http2, for running the edge matrices over h2 (SPEC §4a): one
 * session per gateway URL, requests with any `:path` node lets through and headers as given.
 * `host` is sent as `:authority` (the h2 way); other names go as written (lower-cased by node).
 */
import { connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2'
import { testCertificate } from './gateway.js'

export interface H2Response {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** [name, value, …] as received (names lower-case, h2 has no other spelling). */
  rawHeaders: string[]
  body: string
}

const sessions = new Map<string, Promise<ClientHttp2Session>>()

async function sessionFor(url: string): Promise<ClientHttp2Session> {
  let session = sessions.get(url)
  if (session === undefined) {
    session = testCertificate().then(({ cert }) => {
      const made = connect(url, { ca: cert, servername: 'localhost' })
      made.on('error', () => sessions.delete(url))
      made.once('close', () => sessions.delete(url))
      made.unref()
      return made
    })
    sessions.set(url, session)
  }
  return session
}

/** Closes the session to `url`, if any (a test's teardown). */
export async function closeH2(url: string): Promise<void> {
  const session = await sessions.get(url)
  sessions.delete(url)
  if (session !== undefined) await new Promise<void>((resolve) => session.close(() => resolve()))
}

export async function h2Request(
  url: string,
  method: string,
  path: string,
  headers: Array<[string, string]> | Record<string, string | string[]> = [],
  body?: string | Buffer,
): Promise<H2Response> {
  const session = await sessionFor(url)
  const outgoing: OutgoingHttpHeaders = { ':method': method, ':path': path }
  const entries = Array.isArray(headers) ? headers : Object.entries(headers)
  // With an explicit :authority, a `host` goes as an ordinary header (to test that they must agree).
  const explicitAuthority = entries.some(([name]) => name === ':authority')
  for (const [name, value] of entries) {
    const lower = name.toLowerCase()
    if (lower === 'host' && !explicitAuthority) {
      outgoing[':authority'] = Array.isArray(value) ? value[0] : value
      continue
    }
    const previous = outgoing[lower]
    outgoing[lower] = previous === undefined ? value : [previous, value].flat().map(String)
  }
  return new Promise<H2Response>((resolve, reject) => {
    const stream = session.request(outgoing, { endStream: body === undefined })
    const chunks: Buffer[] = []
    let head: Record<string, string | string[] | undefined> = {}
    stream.on('response', (received) => {
      head = received as Record<string, string | string[] | undefined>
    })
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('end', () => {
      const { ':status': status, ...rest } = head
      const rawHeaders = Object.entries(rest).flatMap(([name, value]) => [value ?? []].flat().flatMap((v) => [name, String(v)]))
      resolve({ status: Number(status), headers: rest, rawHeaders, body: Buffer.concat(chunks).toString('utf8') })
    })
    stream.on('error', reject)
    if (body !== undefined) stream.end(body)
  })
}
