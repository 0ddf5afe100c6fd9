/**
 * Passwords that are long but guessable at once (NIST SP 800-63B §5.1.1.2 names "repetitive
 * or sequential characters"): one character repeated (`aaaa…`), a plain sequence up or down
 * (`1234…`, `abcd…`, `9876…`, wrapping `…7890123`), and a short unit repeated (`abcabc…`).
 */

/** A unit at most this long, repeated over the whole password, is a pattern. */
const MAX_REPEATED_UNIT = 4

/** The position of a character in its alphabet (digits, Latin letters), else its code point. */
function place(char: string): { alphabet: number; index: number } {
  const code = char.codePointAt(0) ?? 0
  if (code >= 0x30 && code <= 0x39) return { alphabet: 10, index: code - 0x30 }
  if (code >= 0x61 && code <= 0x7a) return { alphabet: 26, index: code - 0x61 }
  return { alphabet: 0, index: code }
}

function isSequence(chars: readonly string[]): boolean {
  let step: number | null = null
  for (let i = 1; i < chars.length; i++) {
    const a = place(chars[i - 1] as string)
    const b = place(chars[i] as string)
    if (a.alphabet !== b.alphabet) return false
    const size = a.alphabet
    const diff = size === 0 ? b.index - a.index : (b.index - a.index + size) % size
    const up = diff === 1
    const down = size === 0 ? diff === -1 : diff === size - 1
    if (!up && !down) return false
    const direction = up ? 1 : -1
    if (step !== null && step !== direction) return false
    step = direction
  }
  return true
}

function repeatsShortUnit(chars: readonly string[]): boolean {
  for (let unit = 1; unit <= MAX_REPEATED_UNIT && unit * 2 <= chars.length; unit++) {
    let repeats = true
    for (let i = unit; i < chars.length && repeats; i++) repeats = chars[i] === chars[i - unit]
    if (repeats) return true
  }
  return false
}

/** True for one repeated character, a plain sequence or a short repeated unit (case-insensitive). */
export function isTrivialPattern(password: string): boolean {
  const chars = [...password.toLowerCase()]
  if (chars.length < 2) return false
  return repeatsShortUnit(chars) || isSequence(chars)
}
