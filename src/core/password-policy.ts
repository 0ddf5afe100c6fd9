import { dictionary } from '@zxcvbn-ts/language-common'
import { isTrivialPattern } from './password-patterns.js'

/** SPEC §5: longer passwords are refused before any hashing. */
export const MAX_PASSWORD_LENGTH = 128

export interface PasswordPolicy {
  /** In Unicode code points. */
  min_length: number
  /** Upper case, lower case and a digit, all required. */
  require_classes: boolean
}

let commonPasswords: ReadonlySet<string> | undefined

function isCommon(password: string): boolean {
  commonPasswords ??= new Set(dictionary.passwords.map((entry) => entry.toLowerCase()))
  return commonPasswords.has(password.toLowerCase())
}

/**
 * Length in Unicode code points, as NIST SP 800-63B counts it (an emoji is one character,
 * not two UTF-16 units). Anything longer than twice the maximum in UTF-16 units is reported
 * as that, without walking the string.
 */
export function passwordLength(password: string): number {
  if (password.length > MAX_PASSWORD_LENGTH * 2) return password.length
  let count = 0
  for (const _ of password) count++
  return count
}

/**
 * The problems with a new password, as sentences for the user; empty when it is acceptable.
 * Follows NIST SP 800-63B: length limits, a blocklist of common passwords, of trivial patterns
 * and of the account's own email, and no composition rules except the opt-in `require_classes`.
 */
export function checkPassword(
  password: string,
  policy: PasswordPolicy,
  context: { email?: string } = {},
): string[] {
  const length = passwordLength(password)
  if (length > MAX_PASSWORD_LENGTH) return [`must be at most ${MAX_PASSWORD_LENGTH} characters long`]

  const problems: string[] = []
  if (length < policy.min_length) problems.push(`must be at least ${policy.min_length} characters long`)
  if (policy.require_classes) {
    const missing: string[] = []
    if (!/\p{Lu}/u.test(password)) missing.push('an upper-case letter')
    if (!/\p{Ll}/u.test(password)) missing.push('a lower-case letter')
    if (!/\p{Nd}/u.test(password)) missing.push('a digit')
    if (missing.length > 0) problems.push(`must contain ${missing.join(', ')}`)
  }
  if (isCommon(password)) problems.push('is too common')
  else if (isTrivialPattern(password)) problems.push('must not be one repeated character, a plain sequence or a short repeated pattern')
  const email = context.email?.trim().toLowerCase()
  if (email) {
    const lower = password.toLowerCase()
    const at = email.lastIndexOf('@')
    const local = at > 0 ? email.slice(0, at) : ''
    if (lower === email || lower === local) {
      problems.push('must not be your email address')
    }
  }
  return problems
}
