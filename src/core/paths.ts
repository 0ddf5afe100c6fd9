/**
 * Request-target normalisation (SPEC §4): turns the target a client sent into the one path
 * that is matched, authorised and forwarded, so that the gateway and the upstream can never
 * disagree about which path was asked for.
 */
import { GatehouseError } from '../errors.js'

export interface NormalizedTarget {
  /** Origin-form path: starts with '/', no dot segments, no repeated slashes, unreserved characters decoded. */
  path: string
  /** '' or the query from its '?' on, exactly as sent. */
  query: string
}

/** Why a target was refused; sent as `reason` in the 400 body and shown by `gatehouse explain`. */
export type PathRefusal =
  | 'not_origin_form'
  | 'fragment'
  | 'invalid_character'
  | 'nul'
  | 'backslash'
  | 'malformed_escape'
  | 'encoded_slash'
  | 'encoded_backslash'
  | 'dot_segment_parameter'
  | 'above_root'
  | 'not_forwardable'

const REFUSALS: Readonly<Record<PathRefusal, string>> = {
  not_origin_form: 'The request target must be a path starting with "/"',
  fragment: 'The request target must not contain a fragment ("#")',
  invalid_character: 'The request target contains a control, space or non-ASCII character',
  nul: 'The request target contains a NUL byte',
  backslash: 'The path contains a backslash',
  malformed_escape: 'The path contains a malformed percent-escape',
  encoded_slash: 'The path contains an encoded slash (%2F)',
  encoded_backslash: 'The path contains an encoded backslash (%5C)',
  dot_segment_parameter: 'The path contains a dot segment with a parameter (";")',
  above_root: 'The path climbs above the root',
  not_forwardable: 'The path cannot be forwarded as it is (a segment starting or ending with "..", or an escape that is not UTF-8)',
}

/**
 * Refuses (GH_BAD_PATH, `not_forwardable`) a normalised path that the proxy client cannot
 * send on: it percent-decodes the URL and refuses one that is not UTF-8 or holds "/.." or
 * "../" anywhere (normalisation leaves no dot segment, but a segment like `..x` or `x..`).
 * The edge and `explain` both call it, so they agree.
 */
export function assertForwardable(path: string): void {
  let decoded = path
  if (path.includes('%')) {
    try {
      decoded = decodeURIComponent(path)
    } catch {
      refuse('not_forwardable')
    }
  }
  if (decoded.includes('/..') || decoded.includes('../')) refuse('not_forwardable')
}

function refuse(reason: PathRefusal): never {
  throw new GatehouseError('GH_BAD_PATH', REFUSALS[reason], { details: { reason } })
}

const NUL = 0x00
const SPACE = 0x20
const HASH = 0x23
const PERCENT = 0x25
const DOT = 0x2e
const SLASH = 0x2f
const QUESTION = 0x3f
const BACKSLASH = 0x5c
const DEL = 0x7f

const HEX_DIGITS = '0123456789ABCDEF'

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
const UNRESERVED = new Uint8Array(128)
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c)
  if (/[A-Za-z0-9\-._~]/.test(ch)) UNRESERVED[c] = 1
}

/**
 * Normalises a raw request target (`req.url`) per SPEC §4, or throws `GH_BAD_PATH` (400)
 * with `details.reason` (a `PathRefusal`).
 *
 * - The target must be origin-form (start with '/'); `*` and absolute-form are refused.
 * - A '#' anywhere is refused rather than dropped: no conforming client sends one (browsers
 *   and curl strip fragments), and forwarding or silently cutting it would let the gateway
 *   and the upstream's parser disagree about where the path ends.
 * - Raw characters outside printable ASCII (controls, space, DEL, non-ASCII) are refused in
 *   the path and the query: a request target is ASCII (RFC 9112) and node's own parser already
 *   rejects them, so refusing here keeps `gatehouse explain` in step with the server.
 * - In the path: escapes of unreserved characters are decoded (hex case-insensitive); every
 *   other escape is kept with upper-case hex (`%c0%ae` stays `%C0%AE`, never a dot; `%252F`
 *   stays, a literal "%2F" for the upstream). A malformed escape, `%2F`, `%5C`, a raw '\' and
 *   a NUL (raw or `%00`) are refused.
 * - Repeated slashes are merged, then dot segments are resolved (RFC 3986 §5.2.4, keeping a
 *   trailing slash: `/a/b/..` is `/a/`); a `..` above the root is refused, not clamped.
 * - A dot segment carrying a parameter (`..;x`, `.;x`, `..%3B`) is refused: servlet containers
 *   read it as `..`, which would resolve to another path behind the gateway's back.
 * - The query is only checked for the characters above, never rewritten.
 */
export function normalizeTarget(rawTarget: string): NormalizedTarget {
  if (rawTarget.charCodeAt(0) !== SLASH) refuse('not_origin_form')
  const length = rawTarget.length
  let queryStart = length
  let clean = true
  for (let i = 0; i < length; i++) {
    const c = rawTarget.charCodeAt(i)
    if (c === QUESTION) {
      queryStart = i
      break
    }
    if (c <= SPACE || c >= DEL) refuse(c === NUL ? 'nul' : 'invalid_character')
    if (c === BACKSLASH) refuse('backslash')
    if (c === HASH) refuse('fragment')
    if (c === PERCENT) clean = false
    else if (c === SLASH) {
      const next = rawTarget.charCodeAt(i + 1)
      if (next === SLASH || next === DOT) clean = false
    }
  }
  for (let i = queryStart + 1; i < length; i++) {
    const c = rawTarget.charCodeAt(i)
    if (c <= SPACE || c >= DEL) refuse(c === NUL ? 'nul' : 'invalid_character')
    if (c === HASH) refuse('fragment')
  }
  const query = queryStart === length ? '' : rawTarget.slice(queryStart)
  const rawPath = queryStart === length ? rawTarget : rawTarget.slice(0, queryStart)
  if (clean) return { path: rawPath, query }

  const decoded = rawPath.includes('%') ? decodeUnreserved(rawPath) : rawPath
  const path = decoded.includes('//') || decoded.includes('/.') ? resolveSegments(decoded) : decoded
  return { path, query }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  const lower = c | 0x20
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10
  return -1 // also for NaN, past the end of the string
}

function decodeUnreserved(path: string): string {
  let out = ''
  let copied = 0
  for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', copied)) {
    const high = hexValue(path.charCodeAt(i + 1))
    const low = hexValue(path.charCodeAt(i + 2))
    if (high < 0 || low < 0) refuse('malformed_escape')
    const byte = high * 16 + low
    if (byte === NUL) refuse('nul')
    if (byte === SLASH) refuse('encoded_slash')
    if (byte === BACKSLASH) refuse('encoded_backslash')
    const replacement =
      byte < 128 && UNRESERVED[byte] === 1
        ? String.fromCharCode(byte)
        : '%' + HEX_DIGITS.charAt(high) + HEX_DIGITS.charAt(low)
    out += path.slice(copied, i) + replacement
    copied = i + 3
  }
  return out + path.slice(copied)
}

/** Merges repeated slashes and resolves dot segments; `path` starts with '/' and has no '\' or '%2F'. */
function resolveSegments(path: string): string {
  const segments = path.split('/')
  const output: string[] = []
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] ?? ''
    if (segment === '' || segment === '.') continue
    if (segment === '..') {
      if (output.length === 0) refuse('above_root')
      output.pop()
      continue
    }
    if (segment.charCodeAt(0) === DOT && isDotSegmentWithParameter(segment)) refuse('dot_segment_parameter')
    output.push(segment)
  }
  const last = segments[segments.length - 1]
  const trailingSlash = last === '' || last === '.' || last === '..'
  if (output.length === 0) return '/'
  return '/' + output.join('/') + (trailingSlash ? '/' : '')
}

function isDotSegmentWithParameter(segment: string): boolean {
  const rest = segment.startsWith('..') ? segment.slice(2) : segment.slice(1)
  return rest.startsWith(';') || rest.startsWith('%3B')
}
