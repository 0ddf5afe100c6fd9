/**
 * Reads WebSocket frame headers (RFC 6455 §5.2) off a byte stream without touching the bytes:
 * the tunnel passes every chunk on as it came, and this only learns where frames begin and
 * end, so that the gateway can refuse an oversized frame and can tell when a close frame of
 * its own may be written without cutting a frame of the peer's in two.
 */

/** Frames larger than this close the socket with 1009 (SPEC §4a). */
export const MAX_FRAME_BYTES = 1024 * 1024

export type FrameVerdict = 'ok' | 'too_big'

export class FrameReader {
  readonly #maxPayload: number
  /** Bytes of the current header read so far (at most 14). */
  #header: number[] = []
  /** Payload bytes of the current frame still to come. */
  #remaining = 0
  /** Whether a close frame (opcode 8) has gone by. */
  sawClose = false
  /**
   * After a 'too_big': where in the chunk the oversized frame's header began (the bytes before
   * it are whole frames, or the end of one), or -1 when it began in an earlier chunk.
   */
  oversizedAt = -1

  constructor(maxPayload = MAX_FRAME_BYTES) {
    this.#maxPayload = maxPayload
  }

  /** True between frames: a frame written now would not land inside one of the peer's. */
  get atBoundary(): boolean {
    return this.#header.length === 0 && this.#remaining === 0
  }

  /** Follows `chunk`; 'too_big' as soon as a header announces a payload over the limit. */
  read(chunk: Uint8Array): FrameVerdict {
    let offset = 0
    let headerStart = this.#header.length === 0 ? 0 : -1
    while (offset < chunk.length) {
      if (this.#remaining > 0) {
        const take = Math.min(this.#remaining, chunk.length - offset)
        this.#remaining -= take
        offset += take
        continue
      }
      if (this.#header.length === 0) headerStart = offset
      this.#header.push(chunk[offset]!)
      offset++
      const length = headerPayloadLength(this.#header)
      if (length === null) continue
      if ((this.#header[0]! & 0x0f) === 0x8) this.sawClose = true
      this.#header = []
      if (length > this.#maxPayload) {
        this.oversizedAt = headerStart
        return 'too_big'
      }
      this.#remaining = length
    }
    return 'ok'
  }
}

/** The payload length once `header` is complete, else null. */
function headerPayloadLength(header: readonly number[]): number | null {
  if (header.length < 2) return null
  const masked = (header[1]! & 0x80) !== 0
  const short = header[1]! & 0x7f
  const extended = short === 126 ? 2 : short === 127 ? 8 : 0
  const total = 2 + extended + (masked ? 4 : 0)
  if (header.length < total) return null
  if (extended === 0) return short
  let length = 0
  for (let i = 2; i < 2 + extended; i++) length = length * 256 + header[i]!
  return length
}

/** Close codes the gateway sends (RFC 6455 §7.4.1). */
export const CloseCode = {
  goingAway: 1001,
  policyViolation: 1008,
  tooBig: 1009,
} as const

/**
 * A close frame. `masked` for frames the gateway sends as a client (towards the upstream),
 * which RFC 6455 §5.3 requires to be masked with a fresh random key.
 */
export function closeFrame(code: number, reason: string, masked: boolean): Uint8Array {
  const text = new TextEncoder().encode(reason.slice(0, 120))
  const payload = new Uint8Array(2 + text.length)
  payload[0] = code >> 8
  payload[1] = code & 0xff
  payload.set(text, 2)
  const key = masked ? crypto.getRandomValues(new Uint8Array(4)) : null
  if (key !== null) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i % 4]!
  const head = key === null ? [0x88, payload.length] : [0x88, 0x80 | payload.length, ...key]
  const frame = new Uint8Array(head.length + payload.length)
  frame.set(head, 0)
  frame.set(payload, head.length)
  return frame
}
