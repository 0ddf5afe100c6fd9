/**
 * The keys that sign identity assertions (SPEC §4, §8 `keys rotate`): an Ed25519 JWK set in
 * `identity.signing_key_file`, created on first start, rotated by the CLI, and published
 * without its private parts at `/.well-known/jwks.json`.
 *
 * File format: `{ "keys": [ { kty, crv, x, d, kid, alg, use, created_at, retired_at? } ] }`.
 * Exactly one key has no `retired_at`: the current one, which signs. A retired key keeps only
 * its public part (it never signs again) and stays published until every assertion it could
 * have signed has expired: `retired_at + assertion_ttl + RETIRED_KEY_MARGIN_MS`.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { Clock } from './clock.js'
import { writeKeyFileAtomically } from './key-file.js'

/** Allowance for clocks that disagree between the gateway and its upstreams. */
export const RETIRED_KEY_MARGIN_MS = 60_000

/** A public key as published in the JWKS. */
export interface PublicJwk {
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
  kid: string
  alg: 'EdDSA'
  use: 'sig'
}

export interface SigningKey {
  kid: string
  privateKey: KeyObject
}

export interface KeyRingOptions {
  clock: Clock
  /** `identity.assertion_ttl` in milliseconds: how long a retired key must stay published. */
  assertionTtlMs: number
}

export interface RotationResult {
  /** The new current key. */
  kid: string
  /** Retired keys still published (the one just retired among them). */
  retained: string[]
  /** Retired keys whose assertions have all expired, removed from the file. */
  removed: string[]
}

interface StoredKey extends PublicJwk {
  /** Absent once the key is retired. */
  d?: string
  created_at: string
  retired_at?: string
}

interface PublishedKey {
  jwk: PublicJwk
  /** Epoch ms; null for the current key. */
  retiredAt: number | null
}

interface RingState {
  current: SigningKey
  published: readonly PublishedKey[]
}

const BASE64URL_32_BYTES = /^[A-Za-z0-9_-]{43}$/
const KID = /^[\x21-\x7e]{1,128}$/

/**
 * The signing key set of a running gateway. `current` signs; `publicJwks()` lists what
 * upstreams may verify with. `reload()` picks up a rotation made by `gatehouse keys rotate`.
 */
export class KeyRing {
  readonly #file: string
  readonly #clock: Clock
  readonly #keepRetiredMs: number
  #state: RingState

  private constructor(file: string, options: KeyRingOptions, state: RingState) {
    this.#file = file
    this.#clock = options.clock
    this.#keepRetiredMs = options.assertionTtlMs + RETIRED_KEY_MARGIN_MS
    this.#state = state
  }

  /** Reads the key file, creating it with one new key when it does not exist. */
  static async open(file: string, options: KeyRingOptions): Promise<KeyRing> {
    const text = await readIfExists(file)
    const keys = text === null
      ? (await createKeyFile(file, options.clock.now())) ?? parseKeyFile(file, await readFile(file, 'utf8'))
      : parseKeyFile(file, text)
    return new KeyRing(file, options, buildState(file, keys, options.clock.now(), options.assertionTtlMs + RETIRED_KEY_MARGIN_MS))
  }

  get current(): SigningKey {
    return this.#state.current
  }

  /** The public keys upstreams may verify with: the current key and retired keys still needed. */
  publicJwks(): { keys: PublicJwk[] } {
    const now = this.#clock.now()
    const keys: PublicJwk[] = []
    for (const { jwk, retiredAt } of this.#state.published) {
      if (retiredAt === null || now < retiredAt + this.#keepRetiredMs) keys.push({ ...jwk })
    }
    return { keys }
  }

  /**
   * Re-reads the file and swaps the new key set in at once; on any error the old set stays
   * and the error is thrown.
   *
   * This process signed with its current key until now, whatever `retired_at` the file gives
   * that key (the CLI cannot know when each gateway reloads). So a key this ring stops
   * signing with stays published for the full window counted from now, and a retired key
   * this ring still publishes stays until its window here has passed, even when a later
   * rotation already removed it from the file.
   */
  async reload(): Promise<void> {
    const text = await readFile(this.#file, 'utf8')
    const now = this.#clock.now()
    const next = buildState(this.#file, parseKeyFile(this.#file, text), now, this.#keepRetiredMs)
    const previous = this.#state
    const published = new Map(next.published.map((key) => [key.jwk.kid, key]))
    for (const old of previous.published) {
      const retiredAt = old.jwk.kid === previous.current.kid ? now : old.retiredAt
      if (retiredAt === null || old.jwk.kid === next.current.kid) continue
      if (now >= retiredAt + this.#keepRetiredMs) continue
      const known = published.get(old.jwk.kid)
      if (known === undefined || (known.retiredAt !== null && known.retiredAt < retiredAt)) {
        published.set(old.jwk.kid, { jwk: old.jwk, retiredAt })
      }
    }
    this.#state = { current: next.current, published: [...published.values()] }
  }
}

/**
 * `gatehouse keys rotate`: adds a new current key, retires the current one as of now (keeping
 * only its public part) and removes retired keys whose assertions have all expired. Creates
 * the file when it does not exist. Running gateways sign with the new key after a reload.
 */
export async function rotateKeys(file: string, options: KeyRingOptions): Promise<RotationResult> {
  const now = options.clock.now()
  let text = await readIfExists(file)
  if (text === null) {
    const [created] = (await createKeyFile(file, now)) ?? []
    if (created !== undefined) return { kid: created.kid, retained: [], removed: [] }
    text = await readFile(file, 'utf8')
  }
  const keepRetiredMs = options.assertionTtlMs + RETIRED_KEY_MARGIN_MS
  const keys = parseKeyFile(file, text)
  buildState(file, keys, now, keepRetiredMs)
  const retired = new Date(now).toISOString()
  const kept: StoredKey[] = []
  const removed: string[] = []
  for (const key of keys) {
    if (key.retired_at === undefined) {
      const { d: _private, ...publicPart } = key
      kept.push({ ...publicPart, retired_at: retired })
    } else if (now >= Date.parse(key.retired_at) + keepRetiredMs) {
      removed.push(key.kid)
    } else {
      kept.push(key)
    }
  }
  const fresh = newStoredKey(now)
  await writeKeyFile(file, [...kept, fresh], 'replace')
  return { kid: fresh.kid, retained: kept.map((key) => key.kid), removed }
}

/** RFC 7638 thumbprint of an Ed25519 public key: SHA-256 over `{"crv","kty","x"}` in that order. */
export function jwkThumbprint(x: string): string {
  return createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url')
}

function newStoredKey(now: number): StoredKey {
  const { privateKey } = generateKeyPairSync('ed25519')
  const jwk = privateKey.export({ format: 'jwk' })
  if (typeof jwk.x !== 'string' || typeof jwk.d !== 'string') throw new Error('Ed25519 key export returned no x or d')
  return {
    kty: 'OKP',
    crv: 'Ed25519',
    x: jwk.x,
    d: jwk.d,
    kid: jwkThumbprint(jwk.x),
    alg: 'EdDSA',
    use: 'sig',
    created_at: new Date(now).toISOString(),
  }
}

/** Creates the file with one new key; null when another process created it first. */
async function createKeyFile(file: string, now: number): Promise<StoredKey[] | null> {
  const keys = [newStoredKey(now)]
  try {
    await writeKeyFile(file, keys, 'create')
    return keys
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return null
    throw error
  }
}

function serialize(keys: readonly StoredKey[]): string {
  return `${JSON.stringify({ keys }, null, 2)}\n`
}

/** See key-file.ts; `create` fails with EEXIST when another process created the file first. */
function writeKeyFile(file: string, keys: readonly StoredKey[], mode: 'create' | 'replace'): Promise<void> {
  return writeKeyFileAtomically(file, serialize(keys), mode)
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return null
    throw error
  }
}

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined
}

function malformed(file: string, problem: string): Error {
  return new Error(`identity key file ${file} is malformed: ${problem}; fix or remove it (removing it creates a new key and invalidates outstanding assertions)`)
}

function parseKeyFile(file: string, text: string): StoredKey[] {
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch {
    throw malformed(file, 'not valid JSON')
  }
  if (typeof document !== 'object' || document === null || !('keys' in document) || !Array.isArray(document.keys)) {
    throw malformed(file, 'expected an object with a "keys" array')
  }
  const keys = (document.keys as unknown[]).map((entry, index) => parseKey(file, entry, index))
  const kids = new Set(keys.map((key) => key.kid))
  if (kids.size !== keys.length) throw malformed(file, 'two keys have the same kid')
  return keys
}

function parseKey(file: string, entry: unknown, index: number): StoredKey {
  const where = `keys[${index}]`
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw malformed(file, `${where} is not an object`)
  const key = entry as Record<string, unknown>
  if (key.kty !== 'OKP' || key.crv !== 'Ed25519') throw malformed(file, `${where} is not an Ed25519 key (kty OKP, crv Ed25519)`)
  if (key.alg !== 'EdDSA' || key.use !== 'sig') throw malformed(file, `${where} must have alg EdDSA and use sig`)
  if (typeof key.x !== 'string' || !BASE64URL_32_BYTES.test(key.x)) throw malformed(file, `${where}.x is not a 32-byte base64url value`)
  if (typeof key.kid !== 'string' || !KID.test(key.kid)) throw malformed(file, `${where}.kid must be 1-128 visible ASCII characters`)
  const created = timestamp(key.created_at)
  if (created === null) throw malformed(file, `${where}.created_at is not an ISO timestamp`)
  const stored: StoredKey = { kty: 'OKP', crv: 'Ed25519', x: key.x, kid: key.kid, alg: 'EdDSA', use: 'sig', created_at: created }
  if (key.retired_at !== undefined) {
    const retired = timestamp(key.retired_at)
    if (retired === null) throw malformed(file, `${where}.retired_at is not an ISO timestamp`)
    stored.retired_at = retired
  }
  if (key.d !== undefined) {
    if (typeof key.d !== 'string' || !BASE64URL_32_BYTES.test(key.d)) throw malformed(file, `${where}.d is not a 32-byte base64url value`)
    stored.d = key.d
  } else if (stored.retired_at === undefined) {
    throw malformed(file, `${where} is the current key but has no private part (d)`)
  }
  return stored
}

function timestamp(value: unknown): string | null {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? value : null
}

/** The ring a parsed file describes at `now`: retired keys past their window are left out. */
function buildState(file: string, keys: readonly StoredKey[], now: number, keepRetiredMs: number): RingState {
  const active = keys.filter((key) => key.retired_at === undefined)
  const [current] = active
  if (current === undefined || active.length !== 1) {
    throw malformed(file, `exactly one key must have no retired_at (found ${active.length})`)
  }
  const published: PublishedKey[] = []
  for (const key of keys) {
    const retiredAt = key.retired_at === undefined ? null : Date.parse(key.retired_at)
    if (retiredAt !== null && now >= retiredAt + keepRetiredMs) continue
    published.push({ jwk: { kty: 'OKP', crv: 'Ed25519', x: key.x, kid: key.kid, alg: 'EdDSA', use: 'sig' }, retiredAt })
  }
  return { current: { kid: current.kid, privateKey: importPrivateKey(file, current) }, published }
}

function importPrivateKey(file: string, key: StoredKey): KeyObject {
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.x, d: key.d }, format: 'jwk' })
  } catch {
    throw malformed(file, `key ${key.kid} cannot be imported`)
  }
  // Node does not check that x belongs to d; a mismatch would publish a key that verifies nothing.
  if (createPublicKey(privateKey).export({ format: 'jwk' }).x !== key.x) {
    throw malformed(file, `key ${key.kid}: x is not the public key of d`)
  }
  return privateKey
}
