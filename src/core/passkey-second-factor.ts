/**
 * Passkeys as a second factor: PasskeyService behind the PasskeyFactor hook of core/mfa, which
 * offers `webauthn` at a two-step login or a step-up when the user has passkeys and hands the
 * browser's assertion here with the ceremony it belongs to (the pending login's id, or the
 * session's for a step-up).
 */
import { isGatehouseError } from '../errors.js'
import type { PasskeyFactor } from './mfa/passkey-factor.js'
import type { PasskeyService } from './passkeys.js'

/** Longest assertion accepted as JSON text (a form field): a few KiB in practice. */
const MAX_ASSERTION_TEXT = 64 * 1024

export function passkeySecondFactor(passkeys: PasskeyService): PasskeyFactor {
  return {
    countPasskeys: (userId) => passkeys.count(userId),
    hasPasskeys: (userId) => passkeys.hasPasskeys(userId),
    removeAll: (userId) => passkeys.removeAll(userId),
    async verifyAssertion(userId, response, ceremony) {
      try {
        const assertion = await passkeys.verifySecondFactor({ userId, binding: ceremony }, asCredential(response))
        return { userVerified: assertion.userVerified }
      } catch (err) {
        // A refused assertion is a wrong second factor (counted toward the lockout by the caller).
        if (isGatehouseError(err) && err.code === 'GH_INVALID_CREDENTIALS') return null
        throw err
      }
    },
  }
}

/** A form posts the assertion as JSON text in a field; JSON clients send the object. */
function asCredential(response: unknown): unknown {
  if (typeof response !== 'string') return response
  if (response.length > MAX_ASSERTION_TEXT) return null
  try {
    return JSON.parse(response) as unknown
  } catch {
    return null
  }
}
