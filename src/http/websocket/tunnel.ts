/**
 * Carries an accepted WebSocket's bytes both ways untouched, watching only frame boundaries:
 * a frame over 1 MiB closes the socket with 1009, an hour without a frame either way with 1001
 * (SPEC §4a). When the gateway itself closes a socket it writes a close frame to each side
 * that is between frames, and otherwise just ends that connection.
 */
import type { Duplex } from 'node:stream'
import { CloseCode, FrameReader, MAX_FRAME_BYTES, closeFrame, type CloseReason } from '../../core/websockets/index.js'

/** No frame either way for this long closes the socket (SPEC §4a). */
export const IDLE_TIMEOUT_MS = 60 * 60 * 1000
/** After the gateway's close frame, how long the peers get to answer before the connections are cut. */
const CLOSE_GRACE_MS = 1_000

export interface TunnelOptions {
  idleTimeoutMs?: number
  maxFrameBytes?: number
  /** Once, when both connections are done with; `reason` says who or what ended the socket. */
  onClosed: (reason: CloseReason) => void
}

const CLOSE_TEXT: Record<number, string> = {
  [CloseCode.goingAway]: 'going away',
  [CloseCode.policyViolation]: 'credential ended',
  [CloseCode.tooBig]: 'frame too big',
}

export class Tunnel {
  readonly #client: Duplex
  readonly #upstream: Duplex
  readonly #fromClient: FrameReader
  readonly #fromUpstream: FrameReader
  readonly #options: TunnelOptions
  readonly #idleMs: number
  #lastFrameAt = Date.now()
  #idleTimer: ReturnType<typeof setTimeout>
  #reason: CloseReason | null = null
  /** Who sent the first close frame: the side that ended the socket normally. */
  #initiator: 'client' | 'upstream' | null = null
  #reported = false
  /** A side whose last frame towards the other was cut short: no close frame can follow it. */
  readonly #cutMidFrame = { client: false, upstream: false }

  constructor(client: Duplex, upstream: Duplex, options: TunnelOptions) {
    this.#client = client
    this.#upstream = upstream
    this.#options = options
    this.#idleMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS
    const max = options.maxFrameBytes ?? MAX_FRAME_BYTES
    this.#fromClient = new FrameReader(max)
    this.#fromUpstream = new FrameReader(max)
    this.#idleTimer = this.#armIdle(this.#idleMs)
    this.#wire(client, upstream, this.#fromClient, 'client')
    this.#wire(upstream, client, this.#fromUpstream, 'upstream')
  }

  /** Bytes that arrived with the handshakes: they are the first frames. */
  start(clientHead: Buffer, upstreamHead: Buffer): void {
    if (upstreamHead.length > 0) this.#pass(upstreamHead, this.#client, this.#fromUpstream, 'upstream')
    if (clientHead.length > 0) this.#pass(clientHead, this.#upstream, this.#fromClient, 'client')
  }

  get open(): boolean {
    return this.#reason === null
  }

  /** Ends the socket with `code` (1001, 1008, 1009), counted under `reason`. */
  close(code: number, reason: CloseReason): void {
    if (this.#reason !== null) return
    this.#reason = reason
    clearTimeout(this.#idleTimer)
    const text = CLOSE_TEXT[code] ?? ''
    const toClient = this.#fromUpstream.atBoundary && !this.#cutMidFrame.upstream
    const toUpstream = this.#fromClient.atBoundary && !this.#cutMidFrame.client
    endWith(this.#client, toClient ? closeFrame(code, text, false) : null)
    endWith(this.#upstream, toUpstream ? closeFrame(code, text, true) : null)
    const cut = setTimeout(() => {
      this.#client.destroy()
      this.#upstream.destroy()
    }, CLOSE_GRACE_MS)
    cut.unref()
  }

  #wire(from: Duplex, to: Duplex, reader: FrameReader, side: 'client' | 'upstream'): void {
    from.on('data', (chunk: Buffer) => this.#pass(chunk, to, reader, side))
    to.on('drain', () => from.resume())
    const ended = () => this.#ended(side)
    from.on('end', ended)
    from.on('close', ended)
    // A reset is an end like any other; the listener keeps it from being an uncaught error.
    from.on('error', ended)
  }

  #pass(chunk: Buffer, to: Duplex, reader: FrameReader, side: 'client' | 'upstream'): void {
    if (this.#reason !== null) return
    this.#lastFrameAt = Date.now()
    const verdict = reader.read(chunk)
    if (reader.sawClose && this.#initiator === null) this.#initiator = side
    if (verdict === 'too_big') {
      // The whole frames before the oversized one go through; then the receiving side is
      // between frames and can take a close frame (unless the header began in an earlier chunk).
      if (reader.oversizedAt > 0) to.write(chunk.subarray(0, reader.oversizedAt))
      this.#cutMidFrame[side] = reader.oversizedAt < 0
      this.close(CloseCode.tooBig, side)
      return
    }
    if (!to.write(chunk)) (side === 'client' ? this.#client : this.#upstream).pause()
  }

  /** One side's connection ended: the other is ended too, and the socket is reported once both are done. */
  #ended(side: 'client' | 'upstream'): void {
    if (this.#reason === null) {
      this.#reason = this.#initiator ?? side
      clearTimeout(this.#idleTimer)
      const other = side === 'client' ? this.#upstream : this.#client
      other.end()
      const cut = setTimeout(() => other.destroy(), CLOSE_GRACE_MS)
      cut.unref()
    }
    if (!this.#reported && isDone(this.#client) && isDone(this.#upstream)) {
      this.#reported = true
      this.#options.onClosed(this.#reason)
    }
  }

  #armIdle(delay: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      const quiet = Date.now() - this.#lastFrameAt
      if (quiet >= this.#idleMs) this.close(CloseCode.goingAway, 'expired')
      else this.#idleTimer = this.#armIdle(this.#idleMs - quiet)
    }, delay)
    timer.unref()
    return timer
  }
}

function endWith(socket: Duplex, frame: Uint8Array | null): void {
  if (frame === null || !socket.writable) socket.destroy()
  else socket.end(frame)
}

function isDone(socket: Duplex): boolean {
  return socket.destroyed || (socket.readableEnded && socket.writableFinished) || socket.closed
}
