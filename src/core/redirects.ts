/**
 * Where a browser may be sent after login: only a local path of this gateway. Anything
 * else — absolute URLs, scheme-relative `//host`, `/\host` (which browsers read as
 * `//host`), their percent-encoded and mixed forms, `javascript:` — becomes `/`.
 */

const MAX_NEXT_LENGTH = 2048

export function safeNext(candidate: unknown): string {
  if (typeof candidate !== 'string' || candidate.length === 0 || candidate.length > MAX_NEXT_LENGTH) return '/'
  // Browsers drop tabs and newlines inside URLs, so `/\t/evil` would become `//evil`.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f\u2028\u2029]/.test(candidate)) return '/'
  if (!isLocalPath(candidate)) return '/'
  let decoded = candidate
  // Decode repeatedly: a server or browser further on may decode again.
  for (let i = 0; i < 3; i++) {
    let next: string
    try {
      next = decodeURIComponent(decoded)
    } catch {
      return '/'
    }
    if (next === decoded) break
    // eslint-disable-next-line no-control-regex
    if (!isLocalPath(next) || /[\u0000-\u0020\u007f-\u009f]/.test(next)) return '/'
    decoded = next
  }
  return candidate
}

function isLocalPath(path: string): boolean {
  return path.startsWith('/') && path[1] !== '/' && path[1] !== '\\'
}
