/**
 * TOTP (RFC 6238) as SPEC §3 fixes it: SHA-1, 6 digits, 30 s steps, one step of drift either
 * way. Pure functions of a secret and a time; remembering which step was used last (a code is
 * accepted once) is the factor store's job.
 */
import * as OTPAuth from 'otpauth'

export const TOTP_DIGITS = 6
export const TOTP_PERIOD_SECONDS = 30
/** Steps of clock drift accepted either way. */
export const TOTP_WINDOW = 1
/** 160 bits, the size RFC 4226 recommends for SHA-1. */
const SECRET_BYTES = 20

const CODE_SHAPE = /^\d{6}$/

/** A new random secret, base32 (what authenticator apps are given). */
export function newTotpSecret(): string {
  return new OTPAuth.Secret({ size: SECRET_BYTES }).base32
}

function totp(secret: string, issuer = '', label = ''): OTPAuth.TOTP {
  return new OTPAuth.TOTP({
    issuer,
    label,
    algorithm: 'SHA1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    secret: OTPAuth.Secret.fromBase32(secret),
  })
}

/** The `otpauth://totp/…` URI an authenticator app scans. */
export function otpauthUrl(secret: string, issuer: string, account: string): string {
  return totp(secret, issuer, account).toString()
}

/** The 30 s step `nowMs` falls in. */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_SECONDS)
}

/**
 * The step whose code `code` is, within one step of `nowMs`; null when it is none of them (or
 * not six digits). Spaces a user typed between the digits are ignored.
 */
export function matchTotpStep(secret: string, code: string, nowMs: number): number | null {
  const digits = code.replace(/\s+/g, '')
  if (!CODE_SHAPE.test(digits)) return null
  const delta = totp(secret).validate({ token: digits, timestamp: nowMs, window: TOTP_WINDOW })
  return delta === null ? null : totpStep(nowMs) + delta
}

/** The code of `nowMs`'s step (tests, and nothing else: the gateway never needs to show one). */
export function totpCode(secret: string, nowMs: number): string {
  return totp(secret).generate({ timestamp: nowMs })
}
