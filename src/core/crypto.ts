import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** `bytes` random bytes, base64url without padding (32 bytes → 43 characters). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url')
}

/** SHA-256 of the UTF-8 text, base64url without padding (43 characters). */
export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url')
}

/**
 * Compares two secrets in time independent of where they differ. Both sides are hashed
 * first so that neither their contents nor their lengths show in the timing.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const digestA = createHash('sha256').update(a, 'utf8').digest()
  const digestB = createHash('sha256').update(b, 'utf8').digest()
  return timingSafeEqual(digestA, digestB) && a === b
}
