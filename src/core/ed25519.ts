/**
 * Ed25519 signing for the per-request assertion, by one of two implementations that give the
 * same bytes (Ed25519 signatures are deterministic, RFC 8032 §5.1.6):
 *
 * - libsodium, through the `sodium-native` addon: about half the time of OpenSSL on the
 *   bench machine (18 against 35 µs a signature), and the signature was a third of the CPU
 *   of a request-bound PAT request (bench/results/profiles).
 * - node:crypto (OpenSSL): the fallback where the addon has no prebuilt binary for the
 *   platform, fails to load, or signs differently from node:crypto in the check at load.
 */
import { createRequire } from 'node:module'
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto'

/** Signs a message with one private key: the 64-byte signature. */
export type Ed25519Sign = (message: Buffer) => Buffer

export interface Ed25519 {
  /** For logs and metrics: `libsodium` or `node:crypto`. */
  readonly name: string
  signerFor(privateKey: KeyObject): Ed25519Sign
}

export const nodeEd25519: Ed25519 = {
  name: 'node:crypto',
  signerFor: (privateKey) => (message) => sign(null, message, privateKey),
}

/** The part of sodium-native this file uses. */
export interface LibsodiumSigning {
  crypto_sign_BYTES: number
  crypto_sign_SECRETKEYBYTES: number
  crypto_sign_detached(signature: Buffer, message: Buffer, secretKey: Buffer): void
  sodium_malloc(size: number): Buffer
  sodium_mprotect_readonly(buffer: Buffer): void
}

const loadSodium = (): LibsodiumSigning => createRequire(import.meta.url)('sodium-native') as LibsodiumSigning

/**
 * libsodium's Ed25519, or null when the addon does not load or does not sign exactly as
 * node:crypto does (checked once, on a fresh key). `load` is for tests.
 */
export function libsodiumEd25519(load: () => LibsodiumSigning = loadSodium): Ed25519 | null {
  try {
    const implementation = libsodiumWith(load())
    const { privateKey } = generateKeyPairSync('ed25519')
    const probe = Buffer.from('gatehouse ed25519 probe')
    return implementation.signerFor(privateKey)(probe).equals(nodeEd25519.signerFor(privateKey)(probe)) ? implementation : null
  } catch {
    return null
  }
}

function libsodiumWith(sodium: LibsodiumSigning): Ed25519 {
  return {
    name: 'libsodium',
    signerFor(privateKey) {
      const jwk = privateKey.export({ format: 'jwk' })
      if (jwk.crv !== 'Ed25519' || jwk.d === undefined || jwk.x === undefined) throw new TypeError('not an Ed25519 private key')
      // libsodium's secret key is the seed followed by the public key, kept in guarded memory.
      const secretKey = sodium.sodium_malloc(sodium.crypto_sign_SECRETKEYBYTES)
      const seed = Buffer.from(jwk.d, 'base64url')
      seed.copy(secretKey, 0)
      Buffer.from(jwk.x, 'base64url').copy(secretKey, seed.length)
      seed.fill(0)
      sodium.sodium_mprotect_readonly(secretKey)
      return (message) => {
        const signature = Buffer.allocUnsafe(sodium.crypto_sign_BYTES)
        sodium.crypto_sign_detached(signature, message, secretKey)
        return signature
      }
    },
  }
}

let fastest: Ed25519 | undefined
/** libsodium where it works, else node:crypto (chosen on the first call). */
export function fastestEd25519(): Ed25519 {
  fastest ??= libsodiumEd25519() ?? nodeEd25519
  return fastest
}
