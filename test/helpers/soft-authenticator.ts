/**
 * A software WebAuthn authenticator for tests: a real P-256 key pair, real CBOR attestation
 * objects ("none" attestation) and real ES256 signatures over authenticatorData and the
 * client data hash, so that @simplewebauthn/server verifies its answers exactly as it would a
 * browser's. Tests pick the origin, RP ID, counter and flags to make the answers wrong on purpose.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'

type Cbor = number | string | Uint8Array | Map<Cbor, Cbor>

function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length])
  if (length < 256) return Buffer.from([(major << 5) | 24, length])
  if (length < 65536) {
    const b = Buffer.alloc(3)
    b[0] = (major << 5) | 25
    b.writeUInt16BE(length, 1)
    return b
  }
  const b = Buffer.alloc(5)
  b[0] = (major << 5) | 26
  b.writeUInt32BE(length, 1)
  return b
}

/** The few CBOR types WebAuthn needs: integers, text, bytes, maps. */
export function cbor(value: Cbor): Buffer {
  if (typeof value === 'number') return value >= 0 ? head(0, value) : head(1, -1 - value)
  if (typeof value === 'string') {
    const text = Buffer.from(value, 'utf8')
    return Buffer.concat([head(3, text.length), text])
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), Buffer.from(value)])
  const parts: Buffer[] = [head(5, value.size)]
  for (const [k, v] of value) parts.push(cbor(k), cbor(v))
  return Buffer.concat(parts)
}

const b64url = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64url')
const sha = (data: Uint8Array | string) => createHash('sha256').update(data).digest()

export interface CeremonyOptions {
  /** Default: the origin given to the authenticator. */
  origin?: string
  /** Default: the options' rp.id / rpId. */
  rpId?: string
  /** Default true: the UV flag. */
  userVerified?: boolean
  /** Another challenge than the options' one. */
  challenge?: string
}

export interface RegistrationOptionsLike {
  challenge: string
  rp: { id?: string }
  user: { id: string }
}

export interface AuthenticationOptionsLike {
  challenge: string
  rpId?: string
}

export class SoftAuthenticator {
  readonly credentialId: Buffer = randomBytes(32)
  readonly #privateKey: KeyObject
  readonly #publicKey: KeyObject
  /** The signature counter; each assertion increments it first. */
  counter = 0
  /** The user handle given at registration (base64url), returned by assertions. */
  userHandle: string | null = null

  constructor(readonly origin: string) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    this.#privateKey = privateKey
    this.#publicKey = publicKey
  }

  get id(): string {
    return b64url(this.credentialId)
  }

  #coseKey(): Buffer {
    const jwk = this.#publicKey.export({ format: 'jwk' })
    return cbor(
      new Map<Cbor, Cbor>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, Buffer.from(jwk.x as string, 'base64url')],
        [-3, Buffer.from(jwk.y as string, 'base64url')],
      ]),
    )
  }

  #clientData(type: string, challenge: string, origin: string): string {
    return JSON.stringify({ type, challenge, origin, crossOrigin: false })
  }

  #flags(options: CeremonyOptions, attested: boolean): number {
    return 0x01 | (options.userVerified === false ? 0 : 0x04) | (attested ? 0x40 : 0)
  }

  /** The answer of `navigator.credentials.create()` to these options. */
  register(options: RegistrationOptionsLike, ceremony: CeremonyOptions = {}) {
    const rpId = ceremony.rpId ?? options.rp.id ?? ''
    this.userHandle = options.user.id
    const counter = Buffer.alloc(4)
    counter.writeUInt32BE(this.counter)
    const idLength = Buffer.alloc(2)
    idLength.writeUInt16BE(this.credentialId.length)
    const authData = Buffer.concat([
      sha(rpId),
      Buffer.from([this.#flags(ceremony, true)]),
      counter,
      Buffer.alloc(16),
      idLength,
      this.credentialId,
      this.#coseKey(),
    ])
    const attestationObject = cbor(new Map<Cbor, Cbor>([['fmt', 'none'], ['attStmt', new Map()], ['authData', authData]]))
    const clientDataJSON = this.#clientData('webauthn.create', ceremony.challenge ?? options.challenge, ceremony.origin ?? this.origin)
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: { clientDataJSON: b64url(clientDataJSON), attestationObject: b64url(attestationObject), transports: ['internal'] },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    }
  }

  /** The answer of `navigator.credentials.get()` to these options. */
  authenticate(options: AuthenticationOptionsLike, ceremony: CeremonyOptions = {}) {
    const rpId = ceremony.rpId ?? options.rpId ?? ''
    this.counter += 1
    const counter = Buffer.alloc(4)
    counter.writeUInt32BE(this.counter)
    const authenticatorData = Buffer.concat([sha(rpId), Buffer.from([this.#flags(ceremony, false)]), counter])
    const clientDataJSON = this.#clientData('webauthn.get', ceremony.challenge ?? options.challenge, ceremony.origin ?? this.origin)
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha(clientDataJSON)]), this.#privateKey)
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authenticatorData),
        signature: b64url(signature),
        ...(this.userHandle === null ? {} : { userHandle: this.userHandle }),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform',
    }
  }
}
