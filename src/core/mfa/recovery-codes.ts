/**
 * Recovery codes (SPEC §3): ten single-use codes, shown once, stored as SHA-256. A code is 16
 * characters of a 31-letter alphabet without look-alikes (79 bits: a fast hash is enough, as
 * for session tokens), grouped by four for reading aloud or typing.
 */
import { randomInt } from 'node:crypto'
import { sha256 } from '../crypto.js'

export const RECOVERY_CODE_COUNT = 10
/** Lower-case letters and digits without i, l, o, 0 and 1. */
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'
const GROUPS = 4
const GROUP_LENGTH = 4

/** Ten new codes, `xxxx-xxxx-xxxx-xxxx`. */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () =>
    Array.from({ length: GROUPS }, () => Array.from({ length: GROUP_LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)]).join('')).join('-'),
  )
}

/** What a user typed, as it was issued: lower case, without spaces or dashes; null when it cannot be a code. */
export function normaliseRecoveryCode(typed: string): string | null {
  const compact = typed.toLowerCase().replace(/[\s-]+/g, '')
  return compact.length === GROUPS * GROUP_LENGTH && [...compact].every((c) => ALPHABET.includes(c)) ? compact : null
}

/** The stored form of a code (issued or typed). */
export function hashRecoveryCode(code: string): string {
  return sha256(`recovery:${normaliseRecoveryCode(code) ?? code}`)
}
