import { randomBytes } from 'node:crypto'
import zlib from 'node:zlib'

/**
 * The shape of a personal access token: `pat_`, 43 base62 characters holding 32 random bytes
 * (left-padded with `0`), and 6 base62 characters holding the CRC32 of those 43.
 * The checksum lets anyone refuse a mistyped or made-up token without a store lookup; it is
 * no secret and adds no strength (the 256 random bits do that).
 */

export const PAT_PREFIX = 'pat_'
/** 62^43 > 2^256, so 43 characters hold any 32 bytes. */
export const PAT_BODY_LENGTH = 43
/** 62^6 > 2^32, so 6 characters hold any CRC32. */
export const PAT_CHECKSUM_LENGTH = 6
export const PAT_LENGTH = PAT_PREFIX.length + PAT_BODY_LENGTH + PAT_CHECKSUM_LENGTH

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const SHAPE = /^pat_[0-9A-Za-z]{49}$/
const RANDOM_BYTES = 32

/** A new token, shown once to its owner; store only its SHA-256. */
export function generatePat(): string {
  const body = toBase62(BigInt(`0x${randomBytes(RANDOM_BYTES).toString('hex')}`), PAT_BODY_LENGTH)
  return `${PAT_PREFIX}${body}${checksum(body)}`
}

/**
 * Whether `token` has the shape of a PAT (prefix, length, alphabet) and its checksum matches.
 * Any single changed character fails: CRC32 catches every change within the body, and the
 * prefix and checksum are compared exactly.
 */
export function isWellFormedPat(token: string): boolean {
  if (typeof token !== 'string' || token.length !== PAT_LENGTH || !SHAPE.test(token)) return false
  const body = token.slice(PAT_PREFIX.length, PAT_PREFIX.length + PAT_BODY_LENGTH)
  return token.slice(PAT_PREFIX.length + PAT_BODY_LENGTH) === checksum(body)
}

/** How a token is shown after its creation: `pat_` + its next 4 characters + `…` + its last 4. */
export function maskPat(token: string): string {
  return `${PAT_PREFIX}${token.slice(PAT_PREFIX.length, PAT_PREFIX.length + 4)}…${token.slice(-4)}`
}

function checksum(body: string): string {
  return toBase62(BigInt(crc32(body)), PAT_CHECKSUM_LENGTH)
}

function toBase62(value: bigint, width: number): string {
  let text = ''
  for (let rest = value; rest > 0n; rest /= 62n) text = ALPHABET[Number(rest % 62n)] + text
  return text.padStart(width, ALPHABET[0])
}

/** zlib.crc32 exists from Node 20.15 on; the engines field allows 20.12, hence the fallback. */
const crc32: (text: string) => number =
  typeof zlib.crc32 === 'function' ? (text) => zlib.crc32(text) : (text) => tableCrc32(text)

let crcTable: Uint32Array | undefined

/** CRC-32 (IEEE 802.3, as zlib) of the text's UTF-8 bytes. Exported for the test that compares it with zlib's. */
export function tableCrc32(text: string): number {
  crcTable ??= buildCrcTable()
  let crc = 0xffffffff
  for (const byte of Buffer.from(text, 'utf8')) crc = (crc >>> 8) ^ (crcTable[(crc ^ byte) & 0xff] ?? 0)
  return (crc ^ 0xffffffff) >>> 0
}

function buildCrcTable(): Uint32Array {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
}
