/**
 * Authentication method references (SPEC §3, §4): how a session's user proved who they are.
 * A session keeps the list of its factors; the assertion's `amr` carries it.
 */

/** The values a session's `amr` may hold. */
export type SessionAmr = 'pwd' | 'oidc' | 'otp' | 'hwk' | 'rcv' | 'user'

/** What an identity's `amr` may hold: a session's values, or a PAT's or a JWT's. */
export type AmrValue = SessionAmr | 'pat' | 'jwt'

export const SESSION_AMR_VALUES: readonly SessionAmr[] = ['pwd', 'oidc', 'otp', 'hwk', 'rcv', 'user']

/** The values that are a second factor: a TOTP code, a passkey, a recovery code. */
const SECOND_FACTORS: ReadonlySet<string> = new Set(['otp', 'hwk', 'rcv'])

export function hasSecondFactor(amr: readonly string[]): boolean {
  return amr.some((value) => SECOND_FACTORS.has(value))
}

/** `amr` with `added` appended, without duplicates, in the order the factors were used. */
export function withFactors(amr: readonly SessionAmr[], added: readonly SessionAmr[]): SessionAmr[] {
  return [...new Set([...amr, ...added])]
}

/**
 * A stored `amr`: sessions written before second factors held one string (`"pwd"`), newer ones
 * a list; null for anything else.
 */
export function readSessionAmr(value: unknown): SessionAmr[] | null {
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list) || list.length === 0) return null
  return list.every((item): item is SessionAmr => SESSION_AMR_VALUES.includes(item as SessionAmr)) ? [...list] : null
}
