/**
 * WebAuthn passkeys (SPEC §3): registering them, and verifying them as a second factor or as a
 * sign-in of their own. The ceremonies are @simplewebauthn/server's; this file decides what
 * each accepts: the RP ID and origin of the configuration, a server-side challenge used once
 * for its purpose and user, a credential of the right user, a signature counter that moves
 * forward, and user verification for a passkey-only sign-in.
 */
import type {
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  AuthenticationResponseJSON,
  AuthenticatorTransportFuture,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server'
import { GatehouseError } from '../errors.js'
import type { Database, Queryable } from '../storage/database.js'
import { isUniqueViolation } from '../storage/database.js'
import type { AuditLog } from './audit.js'
import type { Clock } from './clock.js'
import { PasskeyCredentials, type StoredPasskey } from './passkey-credentials.js'
import type { AuditContext } from './users.js'
import type { ChallengePurpose, WebAuthnChallenges } from './webauthn-challenges.js'

/** Loaded at the first ceremony: a gateway whose users never use a passkey does not carry it. */
const webauthn = () => import('@simplewebauthn/server')

/** A passkey as its owner sees it: never the key itself. */
export interface PasskeyInfo {
  id: string
  name: string
  created_at: string
  last_used_at: string | null
  transports: string[]
  backed_up: boolean
}

export interface PasskeyUser {
  id: string
  email: string
  name: string | null
}

/** A verified assertion: whose passkey, and whether the authenticator verified the user. */
export interface PasskeyAssertion {
  userId: string
  passkeyId: string
  userVerified: boolean
}

export interface PasskeyServiceOptions {
  db: Database
  challenges: WebAuthnChallenges
  audit: AuditLog
  clock: Clock
  /** The WebAuthn RP ID: `sessions.cookie_domain` when set, else `public_url`'s host. */
  rpId: string
  /** The origins a ceremony may come from: `public_url`'s origin. */
  origins: readonly string[]
  /** Shown by the authenticator when registering (`auth.mfa.issuer_name`). */
  rpName: string
}

/** Most passkeys one user may register: each is a row and an `allowCredentials` entry. */
export const MAX_PASSKEYS_PER_USER = 20
export const MAX_PASSKEY_NAME_LENGTH = 100

const TRANSPORTS: ReadonlySet<string> = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'])
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** Where the second step of a login or a step-up comes from: bound to that flow's token. */
export interface SecondFactorBinding {
  userId: string
  /** A value only that flow holds (the hash of its `mfa_token`, or the session id of a step-up). */
  binding: string
}

export class PasskeyService {
  readonly #db: Database
  readonly #credentials: PasskeyCredentials
  readonly #challenges: WebAuthnChallenges
  readonly #audit: AuditLog
  readonly #clock: Clock
  readonly #rpId: string
  readonly #origins: string[]
  readonly #rpName: string

  constructor(options: PasskeyServiceOptions) {
    if (options.origins.length === 0) throw new TypeError('passkeys need at least one expected origin')
    this.#db = options.db
    this.#credentials = new PasskeyCredentials(options.db)
    this.#challenges = options.challenges
    this.#audit = options.audit
    this.#clock = options.clock
    this.#rpId = options.rpId
    this.#origins = [...options.origins]
    this.#rpName = options.rpName
  }

  get rpId(): string {
    return this.#rpId
  }

  async list(userId: string): Promise<PasskeyInfo[]> {
    return (await this.#credentials.list(userId)).map(infoOf)
  }

  async count(userId: string): Promise<number> {
    return this.#credentials.count(userId)
  }

  async hasPasskeys(userId: string): Promise<boolean> {
    return (await this.count(userId)) > 0
  }

  /** Options for `navigator.credentials.create()`; the challenge is remembered for this user. */
  async registrationOptions(user: PasskeyUser): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await this.#credentials.list(user.id)
    if (existing.length >= MAX_PASSKEYS_PER_USER) throw tooMany()
    const options = await (await webauthn()).generateRegistrationOptions({
      rpName: this.#rpName,
      rpID: this.#rpId,
      userName: user.email,
      userDisplayName: user.name ?? user.email,
      // The user handle a discoverable credential returns at sign-in: our id, nothing personal.
      userID: new TextEncoder().encode(user.id),
      timeout: this.#challenges.ttlMs,
      attestationType: 'none',
      excludeCredentials: existing.map((passkey) => ({ id: passkey.credentialId, transports: transportsOf(passkey) })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
    })
    await this.#challenges.remember(options.challenge, { purpose: 'register', userId: user.id, binding: null })
    return options
  }

  /**
   * Verifies the browser's answer to `registrationOptions` and stores the credential.
   * GH_VALIDATION when the name is bad, the challenge is not this user's live one, or the
   * answer does not verify (wrong origin or RP ID, malformed); no row is written then.
   */
  async register(user: PasskeyUser, input: { name: unknown; response: unknown }, context: AuditContext = {}): Promise<PasskeyInfo> {
    const name = passkeyName(input.name)
    const response = input.response as RegistrationResponseJSON
    const challenge = challengeOf(response)
    if (challenge === null || !(await this.#challenges.take(challenge, { purpose: 'register', userId: user.id, binding: null }))) {
      throw refusedRegistration('challenge')
    }
    let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>
    try {
      verified = await (await webauthn()).verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: this.#origins,
        expectedRPID: this.#rpId,
        requireUserVerification: false,
      })
    } catch (err) {
      throw refusedRegistration('verification', err)
    }
    if (!verified.verified) throw refusedRegistration('verification')
    const { credential, credentialBackedUp } = verified.registrationInfo
    const transports = (response.response?.transports ?? credential.transports ?? []).filter((t) => TRANSPORTS.has(t))
    try {
      return await this.#db.transaction(async (tx) => {
        if ((await this.#credentials.count(user.id, tx)) >= MAX_PASSKEYS_PER_USER) throw tooMany()
        const stored = await this.#credentials.insert(
          {
            userId: user.id,
            credentialId: credential.id,
            publicKey: Buffer.from(credential.publicKey).toString('base64url'),
            counter: credential.counter,
            transports,
            name,
            backedUp: credentialBackedUp,
            createdAt: new Date(this.#clock.now()),
          },
          tx,
        )
        await this.#audit.record(
          'mfa.passkey_added',
          { userId: user.id, email: user.email, ip: context.ip ?? null, details: { passkey_id: stored.id, name } },
          tx,
        )
        return infoOf(stored)
      })
    } catch (err) {
      if (isUniqueViolation(err)) throw new GatehouseError('GH_VALIDATION', 'This passkey is registered already', { details: { field: 'response' } })
      throw err
    }
  }

  /** Removes the user's passkey; false when the user has none with this id (another user's included). */
  async remove(user: PasskeyUser, id: string, context: AuditContext = {}): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const removed = await this.#credentials.delete(user.id, id, tx)
      if (removed === null) return false
      const details = { passkey_id: removed.id, name: removed.name, ...(context.actorId ? { actor_id: context.actorId } : {}) }
      await this.#audit.record('mfa.passkey_removed', { userId: user.id, email: user.email, ip: context.ip ?? null, details }, tx)
      return true
    })
  }

  /** Removes every passkey of the user (an MFA reset), in the caller's transaction if given; resolves how many. */
  async removeAll(userId: string, tx: Queryable = this.#db): Promise<number> {
    return this.#credentials.deleteAll(userId, tx)
  }

  /**
   * Options for `navigator.credentials.get()` as a second factor: only this user's passkeys
   * are allowed, and the challenge is bound to the flow (`binding`).
   */
  async secondFactorOptions(flow: SecondFactorBinding): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const passkeys = await this.#credentials.list(flow.userId)
    if (passkeys.length === 0) throw new GatehouseError('GH_VALIDATION', 'This account has no passkey', { details: { field: 'webauthn' } })
    return this.#authenticationOptions('second-factor', flow.userId, flow.binding, passkeys)
  }

  /** Options for a passkey-only sign-in: any discoverable credential; the user is whoever it names. */
  async loginOptions(): Promise<PublicKeyCredentialRequestOptionsJSON> {
    return this.#authenticationOptions('passkey-login', null, null, [])
  }

  /** Verifies a second-factor assertion of `flow`'s user; GH_INVALID_CREDENTIALS (with a reason for the log) otherwise. */
  async verifySecondFactor(flow: SecondFactorBinding, response: unknown): Promise<PasskeyAssertion> {
    return this.#verify('second-factor', flow.userId, flow.binding, response as AuthenticationResponseJSON, false)
  }

  /** Verifies a passkey-only sign-in: user verification is required (amr ["hwk","user"]). */
  async verifyLogin(response: unknown): Promise<PasskeyAssertion> {
    return this.#verify('passkey-login', null, null, response as AuthenticationResponseJSON, true)
  }

  async #authenticationOptions(
    purpose: ChallengePurpose,
    userId: string | null,
    binding: string | null,
    allowed: readonly StoredPasskey[],
  ): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const options = await (await webauthn()).generateAuthenticationOptions({
      rpID: this.#rpId,
      timeout: this.#challenges.ttlMs,
      userVerification: purpose === 'passkey-login' ? 'required' : 'preferred',
      allowCredentials: allowed.map((passkey) => ({ id: passkey.credentialId, transports: transportsOf(passkey) })),
    })
    await this.#challenges.remember(options.challenge, { purpose, userId, binding })
    return options
  }

  async #verify(
    purpose: ChallengePurpose,
    userId: string | null,
    binding: string | null,
    response: AuthenticationResponseJSON,
    requireUserVerification: boolean,
  ): Promise<PasskeyAssertion> {
    const challenge = challengeOf(response)
    // The challenge is spent first, whatever follows: a response is never tried twice.
    if (challenge === null || !(await this.#challenges.take(challenge, { purpose, userId, binding }))) throw refusedAssertion('challenge')
    const credentialId = typeof response.id === 'string' ? response.id : null
    const passkey = credentialId === null ? null : await this.#credentials.findByCredentialId(credentialId)
    if (passkey === null) throw refusedAssertion('unknown_passkey')
    if (userId !== null && passkey.userId !== userId) throw refusedAssertion('other_users_passkey')
    // A discoverable credential names its user: it must be the credential's owner.
    const handle = response.response?.userHandle
    if (typeof handle === 'string' && handle !== '' && Buffer.from(handle, 'base64url').toString('utf8') !== passkey.userId) {
      throw refusedAssertion('user_handle_mismatch')
    }
    let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>
    try {
      verified = await (await webauthn()).verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: this.#origins,
        expectedRPID: this.#rpId,
        credential: { id: passkey.credentialId, publicKey: Buffer.from(passkey.publicKey, 'base64url'), counter: passkey.counter, transports: transportsOf(passkey) },
        requireUserVerification,
      })
    } catch (err) {
      throw refusedAssertion('verification', err)
    }
    if (!verified.verified) throw refusedAssertion('verification')
    const { newCounter, userVerified } = verified.authenticationInfo
    // Authenticators that keep no counter always say 0; one that does must move forward
    // (a lower or equal value is a cloned authenticator, or the race of a replay).
    if (!(await this.#credentials.recordUse(passkey.id, newCounter, new Date(this.#clock.now())))) throw refusedAssertion('counter')
    return { userId: passkey.userId, passkeyId: passkey.id, userVerified }
  }
}

function infoOf(passkey: StoredPasskey): PasskeyInfo {
  return {
    id: passkey.id,
    name: passkey.name,
    created_at: passkey.createdAt.toISOString(),
    last_used_at: passkey.lastUsedAt === null ? null : passkey.lastUsedAt.toISOString(),
    transports: passkey.transports,
    backed_up: passkey.backedUp,
  }
}

function transportsOf(passkey: StoredPasskey): AuthenticatorTransportFuture[] {
  return passkey.transports.filter((t) => TRANSPORTS.has(t)) as AuthenticatorTransportFuture[]
}

/** The challenge the browser signed, read from clientDataJSON; null when it is not there. */
function challengeOf(response: { response?: { clientDataJSON?: unknown } } | null | undefined): string | null {
  const clientData = response?.response?.clientDataJSON
  if (typeof clientData !== 'string' || clientData.length > 8192) return null
  try {
    const parsed: unknown = JSON.parse(Buffer.from(clientData, 'base64url').toString('utf8'))
    const challenge = typeof parsed === 'object' && parsed !== null ? (parsed as { challenge?: unknown }).challenge : undefined
    return typeof challenge === 'string' ? challenge : null
  } catch {
    return null
  }
}

function passkeyName(value: unknown): string {
  const name = typeof value === 'string' ? value.trim() : ''
  if (name === '' || name.length > MAX_PASSKEY_NAME_LENGTH || CONTROL.test(name)) {
    throw new GatehouseError('GH_VALIDATION', `A passkey needs a name of 1 to ${MAX_PASSKEY_NAME_LENGTH} characters`, { details: { field: 'name' } })
  }
  return name
}

function tooMany(): GatehouseError {
  return new GatehouseError('GH_VALIDATION', `At most ${MAX_PASSKEYS_PER_USER} passkeys per account`, { details: { field: 'response' } })
}

function refusedRegistration(reason: string, cause?: unknown): GatehouseError {
  const message = reason === 'challenge' ? 'The passkey answer is not for a live challenge of yours; start again' : 'The passkey could not be verified'
  return new GatehouseError('GH_VALIDATION', message, { details: { field: 'response' }, reason, cause })
}

function refusedAssertion(reason: string, cause?: unknown): GatehouseError {
  return new GatehouseError('GH_INVALID_CREDENTIALS', 'The passkey was not accepted', { reason, cause })
}
