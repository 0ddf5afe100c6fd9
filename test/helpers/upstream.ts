/**
 * A real upstream for edge tests: a node:http server on 127.0.0.1:0 that records exactly
 * what it received (method, path, raw headers, body) and answers with a small JSON echo.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

export interface ReceivedRequest {
  method: string
  /** The request target exactly as the upstream saw it (path and query). */
  url: string
  headers: IncomingHttpHeaders
  /** [name, value, name, value, …] as received, in order and spelling. */
  rawHeaders: string[]
  body: string
}

export interface RecordingUpstream {
  url: string
  port: number
  received: ReceivedRequest[]
  /** The last request received; throws when there was none. */
  last(): ReceivedRequest
}

export async function startUpstream(t: Test): Promise<RecordingUpstream> {
  const received: ReceivedRequest[] = []
  const server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const entry: ReceivedRequest = {
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        rawHeaders: request.rawHeaders,
        body: Buffer.concat(chunks).toString('utf8'),
      }
      received.push(entry)
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end(JSON.stringify({ method: entry.method, url: entry.url }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    last() {
      const entry = received.at(-1)
      if (entry === undefined) throw new Error('the upstream received nothing')
      return entry
    },
  }
}
