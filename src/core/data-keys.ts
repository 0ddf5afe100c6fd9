/**
 * The data key ring (SPEC §2 `identity.data_key_file`): AES-256-GCM keys for secrets kept at
 * rest (provider refresh tokens, TOTP secrets, user secrets). The newest key encrypts; every
 * key in the file decrypts, so a rotation (`gatehouse keys rotate --data`) keeps what was
 * stored before readable.
 *
 * File format: `{ "keys": [ { "kid", "k" (32 bytes, base64url), "created_at" } ] }`, the last
 * key current. A sealed value is `gh1.<kid>.<iv>.<ciphertext and tag>` (base64url parts); the
 * caller's `context` (what the value is and whose: `oidc-refresh:<session id>`) is bound as
 * additional data, so a value copied to another record does not decrypt there.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { writeKeyFileAtomically } from './key-file.js'

export interface DataKey {
  kid: string
  k: string
  created_at: string
}

/** Decryption failed: an unknown key id, a value that was tampered with, or the wrong context. */
export class DataKeyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DataKeyError'
  }
}

const VERSION = 'gh1'
const EPHEMERAL = '(memory)'
const KEY_BYTES = 32
const IV_BYTES = 12
const TAG_BYTES = 16
const BASE64URL_32_BYTES = /^[A-Za-z0-9_-]{43}$/
const KID = /^[A-Za-z0-9_-]{1,64}$/

export class DataKeyRing {
  readonly #file: string
  #keys: Map<string, Buffer>
  #current: string

  private constructor(file: string, keys: readonly DataKey[]) {
    this.#file = file
    const { map, current } = toState(file, keys)
    this.#keys = map
    this.#current = current
  }

  /**
   * Reads the key file; when it does not exist, creates it with one key if `create` (embedded
   * storage: one process, nothing to share), else fails naming the key: replicas on shared
   * storage must all get the same file, made once with `gatehouse keys rotate --data`.
   */
  static async open(file: string, options: { create: boolean }): Promise<DataKeyRing> {
    let text = await readIfExists(file)
    if (text === null) {
      if (!options.create) {
        throw new Error(`identity.data_key_file: ${file} does not exist; create it once with \`gatehouse keys rotate --data\` and give every replica the same file`)
      }
      const keys = [newKey()]
      if (await writeKeyFile(file, keys, 'create')) return new DataKeyRing(file, keys)
      text = await readFile(file, 'utf8')
    }
    return new DataKeyRing(file, parseKeyFile(file, text))
  }

  /** A ring held in memory only (tests, and tools that never persist). */
  static ephemeral(): DataKeyRing {
    return new DataKeyRing(EPHEMERAL, [newKey()])
  }

  /** Whether the ring is kept in a key file; false for one in memory only, whose values die with the process. */
  get persistent(): boolean {
    return this.#file !== EPHEMERAL
  }

  /** The key id new values are sealed with. */
  get currentKid(): string {
    return this.#current
  }

  /** Re-reads the file after a rotation (SIGHUP); the old keys stay if it cannot be read. */
  async reload(): Promise<void> {
    const { map, current } = toState(this.#file, parseKeyFile(this.#file, await readFile(this.#file, 'utf8')))
    this.#keys = map
    this.#current = current
  }

  encrypt(plaintext: string, context: string): string {
    const key = this.#keys.get(this.#current) as Buffer
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', key, iv)
    cipher.setAAD(aad(this.#current, context))
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()])
    return [VERSION, this.#current, iv.toString('base64url'), sealed.toString('base64url')].join('.')
  }

  /** The plaintext of a value sealed by encrypt() with the same context; DataKeyError otherwise. */
  decrypt(value: string, context: string): string {
    const [version, kid, ivText, sealedText, ...rest] = value.split('.')
    if (version !== VERSION || kid === undefined || ivText === undefined || sealedText === undefined || rest.length > 0) {
      throw new DataKeyError('not a sealed value')
    }
    const key = this.#keys.get(kid)
    if (key === undefined) throw new DataKeyError(`sealed with key ${kid.slice(0, 64)}, which the key ring does not hold`)
    const iv = Buffer.from(ivText, 'base64url')
    const sealed = Buffer.from(sealedText, 'base64url')
    if (iv.length !== IV_BYTES || sealed.length < TAG_BYTES) throw new DataKeyError('not a sealed value')
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv)
      decipher.setAAD(aad(kid, context))
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
      return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]).toString('utf8')
    } catch {
      throw new DataKeyError('the value does not decrypt: tampered with, or sealed for another context')
    }
  }
}

/**
 * `gatehouse keys rotate --data`: adds a new current key and keeps every old one (values
 * sealed with them stay readable). Creates the file when it does not exist. Running gateways
 * use the new key after a reload.
 */
export async function rotateDataKeys(file: string): Promise<{ kid: string; retained: string[] }> {
  const text = await readIfExists(file)
  const keys = text === null ? [] : parseKeyFile(file, text)
  const fresh = newKey()
  if (text === null && (await writeKeyFile(file, [fresh], 'create'))) return { kid: fresh.kid, retained: [] }
  const current = text === null ? parseKeyFile(file, await readFile(file, 'utf8')) : keys
  await writeKeyFile(file, [...current, fresh], 'replace')
  return { kid: fresh.kid, retained: current.map((key) => key.kid) }
}

function aad(kid: string, context: string): Buffer {
  return Buffer.from(`${VERSION}\n${kid}\n${context}`, 'utf8')
}

function newKey(): DataKey {
  return { kid: randomBytes(9).toString('base64url'), k: randomBytes(KEY_BYTES).toString('base64url'), created_at: new Date().toISOString() }
}

function toState(file: string, keys: readonly DataKey[]): { map: Map<string, Buffer>; current: string } {
  const last = keys.at(-1)
  if (last === undefined) throw new Error(`identity.data_key_file: ${file} holds no keys`)
  return { map: new Map(keys.map((key) => [key.kid, Buffer.from(key.k, 'base64url')])), current: last.kid }
}

function parseKeyFile(file: string, text: string): DataKey[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Error(`identity.data_key_file: ${file} is not JSON`)
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || keys.length === 0) throw new Error(`identity.data_key_file: ${file} holds no keys`)
  const kids = new Set<string>()
  return keys.map((key: unknown, index) => {
    const k = key as Partial<DataKey> | null
    if (typeof k?.kid !== 'string' || !KID.test(k.kid) || typeof k.k !== 'string' || !BASE64URL_32_BYTES.test(k.k) || kids.has(k.kid)) {
      throw new Error(`identity.data_key_file: ${file}: key ${index + 1} is not a 32-byte key with a unique kid`)
    }
    kids.add(k.kid)
    return { kid: k.kid, k: k.k, created_at: typeof k.created_at === 'string' ? k.created_at : '' }
  })
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw error
  }
}

/** See key-file.ts; `create` answers false when another process created the file first. */
async function writeKeyFile(file: string, keys: readonly DataKey[], mode: 'create' | 'replace'): Promise<boolean> {
  try {
    await writeKeyFileAtomically(file, `${JSON.stringify({ keys }, null, 2)}\n`, mode)
    return true
  } catch (error) {
    if (mode === 'create' && (error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  }
}
