import { availableParallelism } from 'node:os'
import argon2 from 'argon2'
import { GatehouseError } from '../errors.js'
import { randomToken } from './crypto.js'
import { MAX_PASSWORD_LENGTH, passwordLength } from './password-policy.js'
import { Semaphore } from './semaphore.js'

/** `auth.argon2` of gateway.yml. */
export interface Argon2Params {
  memory_kib: number
  time_cost: number
  parallelism: number
}

export interface PasswordHasherOptions {
  /** Hashes computed at once; default: the number of CPUs. */
  maxConcurrency?: number
  /** Hashes waiting for a slot before GH_OVERLOADED; default 64. */
  maxQueue?: number
  /** Longest wait for a slot before GH_OVERLOADED; default 10 s. */
  queueTimeoutMs?: number
}

export const DEFAULT_HASH_QUEUE = 64
export const DEFAULT_HASH_QUEUE_TIMEOUT_MS = 10_000

/**
 * Passwords are hashed in NFKC (NIST SP 800-63B §5.1.1.2), so that the same password typed
 * on keyboards that produce different code points still verifies.
 */
function prepare(password: string): string {
  return password.normalize('NFKC')
}

/**
 * argon2id hashing and verification with bounded concurrency: every hash and verify goes
 * through one semaphore, so a login flood waits in a bounded queue and then gets
 * GH_OVERLOADED instead of exhausting memory (each hash holds `memory_kib`).
 */
export class PasswordHasher {
  readonly #options: { type: 2; memoryCost: number; timeCost: number; parallelism: number }
  readonly #semaphore: Semaphore
  #dummyHash: Promise<string> | undefined

  constructor(params: Argon2Params, options: PasswordHasherOptions = {}) {
    this.#options = {
      type: argon2.argon2id,
      memoryCost: params.memory_kib,
      timeCost: params.time_cost,
      parallelism: params.parallelism,
    }
    this.#semaphore = new Semaphore({
      maxConcurrency: options.maxConcurrency ?? availableParallelism(),
      maxQueue: options.maxQueue ?? DEFAULT_HASH_QUEUE,
      queueTimeoutMs: options.queueTimeoutMs ?? DEFAULT_HASH_QUEUE_TIMEOUT_MS,
    })
  }

  /** Hashes a password; one over 128 code points is GH_VALIDATION, refused before hashing. */
  async hash(password: string): Promise<string> {
    if (passwordLength(password) > MAX_PASSWORD_LENGTH) {
      throw new GatehouseError('GH_VALIDATION', `The password must be at most ${MAX_PASSWORD_LENGTH} characters long`, {
        details: { field: 'password' },
      })
    }
    return this.#semaphore.run(() => argon2.hash(prepare(password), this.#options))
  }

  /**
   * Whether `password` matches `hash`. A stored hash that is not an argon2 hash, or is
   * malformed, is false rather than an error; a password over 128 code points is false
   * without hashing (no stored password can be that long). Rejects with GH_OVERLOADED
   * when the hashing queue is full.
   */
  async verify(hash: string, password: string): Promise<boolean> {
    if (!hash.startsWith('$argon2')) return false
    if (passwordLength(password) > MAX_PASSWORD_LENGTH) return false
    return this.#semaphore.run(async () => {
      try {
        return await argon2.verify(hash, prepare(password))
      } catch {
        return false
      }
    })
  }

  /** Whether `hash` was made with other parameters (or another algorithm) than the configured ones. */
  needsRehash(hash: string): boolean {
    if (!hash.startsWith('$argon2id$')) return true
    try {
      return argon2.needsRehash(hash, this.#options)
    } catch {
      return true
    }
  }

  /**
   * Verifies `password` against a hash of a random secret made with the configured
   * parameters, and always resolves false. Login calls it for unknown emails, disabled and
   * password-less users, so that they take as long as a wrong password. The dummy hash is
   * made on first use (or by `warmUp`).
   */
  async verifyDummy(password: string): Promise<false> {
    const hash = await this.#dummy()
    await this.verify(hash, password)
    return false
  }

  /** Computes the dummy hash now, so that the first unknown-email login is not slower. */
  async warmUp(): Promise<void> {
    await this.#dummy()
  }

  #dummy(): Promise<string> {
    if (this.#dummyHash === undefined) {
      const pending = this.#semaphore.run(() => argon2.hash(randomToken(32), this.#options))
      this.#dummyHash = pending
      // A failed attempt (e.g. GH_OVERLOADED) is not remembered: the next call tries again.
      pending.catch(() => {
        if (this.#dummyHash === pending) this.#dummyHash = undefined
      })
    }
    return this.#dummyHash
  }
}
