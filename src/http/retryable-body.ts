/**
 * A request body that can be offered to a second upstream server as long as the first took
 * none of it: each attempt gets its own stream that reads the client's request only when the
 * proxy client asks for data. A server that could not be connected to asked for nothing, so
 * the body is still whole for the next one; once a byte was taken, the request is never resent.
 */
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'

export class RetryableBody {
  readonly #source: IncomingMessage
  #taken = false

  constructor(source: IncomingMessage) {
    this.#source = source
  }

  /** Whether some of the body has gone to an attempt. */
  get taken(): boolean {
    return this.#taken
  }

  /** A stream of the body for one attempt; destroying it (a failed attempt) leaves the rest unread. */
  attempt(): Readable {
    const source = this.#source
    let attached = false
    const onData = (chunk: Buffer) => {
      this.#taken = true
      if (!stream.push(chunk)) source.pause()
    }
    const onEnd = () => stream.push(null)
    const onError = (err: Error) => stream.destroy(err)
    const detach = () => {
      source.off('data', onData).off('end', onEnd).off('error', onError)
      source.pause()
    }
    const stream = new Readable({
      read() {
        if (!attached) {
          attached = true
          source.on('data', onData).on('end', onEnd).on('error', onError)
        }
        source.resume()
      },
      destroy(err, callback) {
        detach()
        callback(err)
      },
    })
    return stream
  }
}
