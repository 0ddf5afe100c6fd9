/**
 * Second factors of a user (SPEC §3): enrolment and removal of TOTP, recovery codes, and the
 * check of a second factor at a two-step login or a step-up. One method per factor; passkeys
 * come in through the PasskeyFactor hook (passkey-factor.ts).
 *
 * TOTP secrets are sealed with the data key ring, bound to their user; recovery codes are kept
 * as SHA-256 only. A TOTP step and a recovery code are each spent once, by a conditional
 * UPDATE (factor-repository.ts), so a code replayed on another replica is refused too.
 */
import { GatehouseError } from '../../errors.js'
import type { InvalidationBus } from '../../kv/invalidation.js'
import type { Database } from '../../storage/database.js'
import type { SessionAmr } from '../amr.js'
import type { AuditLog } from '../audit.js'
import { BusAwareCache } from '../bus-cache.js'
import type { Clock } from '../clock.js'
import type { DataKeyRing } from '../data-keys.js'
import { FactorRepository } from './factor-repository.js'
import type { PasskeyFactor } from './passkey-factor.js'
import { hashRecoveryCode, newRecoveryCodes, normaliseRecoveryCode } from './recovery-codes.js'
import { matchTotpStep, newTotpSecret, otpauthUrl } from './totp.js'

/** A second-factor method as SPEC §3 names it (`methods` of a two-step login, the metric's `method`). */
export type SecondFactorMethod = 'totp' | 'webauthn' | 'recovery'
export const SECOND_FACTOR_METHODS: readonly SecondFactorMethod[] = ['totp', 'webauthn', 'recovery']

/** What a user offers as a second factor: exactly one of them. */
export type SecondFactorProof = { code: string } | { recovery_code: string } | { webauthn: unknown }

/**
 * The one factor a request body offers (`code`, `recovery_code` or `webauthn`); null when it
 * offers none or several, which is a malformed request, never a guess at which one was meant.
 */
export function offeredProof(body: { code?: unknown; recovery_code?: unknown; webauthn?: unknown }): SecondFactorProof | null {
  const offered: SecondFactorProof[] = []
  if (typeof body.code === 'string' && body.code !== '') offered.push({ code: body.code })
  if (typeof body.recovery_code === 'string' && body.recovery_code !== '') offered.push({ recovery_code: body.recovery_code })
  if (body.webauthn !== undefined) offered.push({ webauthn: body.webauthn })
  return offered.length === 1 ? (offered[0] as SecondFactorProof) : null
}

export interface FactorStatus {
  totp: boolean
  passkeys: number
  /** Unused recovery codes. */
  recovery_codes: number
}

export interface TotpEnrolment {
  /** Base32, for typing into an app by hand. */
  secret: string
  otpauth_url: string
  /** The otpauth URL as a QR code, an SVG document. */
  qr_svg: string
}

export interface SecondFactorsOptions {
  db: Database
  keys: DataKeyRing
  audit: AuditLog
  clock: Clock
  /** `auth.mfa.issuer_name`. */
  issuer: string
  /** Every replica's cache of who has a second factor drops the user (a `user` message). */
  bus: InvalidationBus
  /** HOOK: WebAuthn passkeys, once built (passkey-factor.ts); undefined: nobody has passkeys. */
  passkeys?: PasskeyFactor
  /** Cached answers of hasSecondFactor live at most this long (default 60 s). */
  cacheTtlMs?: number
}

/** Told every second-factor check (`gatehouse_mfa_attempts_total`). */
export type AttemptListener = (method: SecondFactorMethod, result: 'success' | 'failure') => void

/** Who did a change, for the audit trail. */
export interface FactorChangeContext {
  ip?: string | null
  /** An admin acting on someone else's factors. */
  actorId?: string | null
  email?: string | null
}

/** The data key context of a user's TOTP secret: a sealed secret copied to another user does not open. */
const totpContext = (userId: string): string => `totp:${userId}`

export class SecondFactors {
  readonly #options: SecondFactorsOptions
  readonly #repository: FactorRepository
  readonly #cache: BusAwareCache<{ userId: string; has: boolean }>
  readonly #attemptListeners = new Set<AttemptListener>()

  constructor(options: SecondFactorsOptions) {
    this.#options = options
    this.#repository = new FactorRepository(options.db)
    this.#cache = new BusAwareCache({
      bus: options.bus,
      clock: options.clock,
      ttlMs: options.cacheTtlMs ?? 60_000,
      max: 10_000,
      tagsOf: (entry) => [`user:${entry.userId}`],
    })
  }

  /** Adds a listener told of every check (the app counts them); resolves a function that removes it. */
  onAttempt(listener: AttemptListener): () => void {
    this.#attemptListeners.add(listener)
    return () => this.#attemptListeners.delete(listener)
  }

  async status(userId: string): Promise<FactorStatus> {
    const [totp, passkeys, recovery] = await Promise.all([
      this.#repository.hasTotp(userId),
      this.#options.passkeys?.countPasskeys(userId) ?? Promise.resolve(0),
      this.#repository.unusedRecoveryCodes(userId),
    ])
    return { totp, passkeys, recovery_codes: recovery }
  }

  /** The methods a user can finish a login with, from what they have enrolled (empty: no second factor). */
  async methods(userId: string): Promise<SecondFactorMethod[]> {
    const status = await this.status(userId)
    if (!status.totp && status.passkeys === 0) return []
    const methods: SecondFactorMethod[] = []
    if (status.totp) methods.push('totp')
    if (status.passkeys > 0) methods.push('webauthn')
    if (status.recovery_codes > 0) methods.push('recovery')
    return methods
  }

  /**
   * Whether the user has a second factor (TOTP confirmed, or a passkey); cached per replica and
   * dropped on every replica when the user's factors change. Recovery codes alone are no factor.
   */
  async hasSecondFactor(userId: string): Promise<boolean> {
    const cached = this.#cache.get(userId)
    if (cached !== undefined) return cached.has
    return this.#cache.load(userId, () => this.#lookup(userId), (has) => ({ userId, has }))
  }

  async #lookup(userId: string): Promise<boolean> {
    if (await this.#repository.hasTotp(userId)) return true
    return (await this.#options.passkeys?.hasPasskeys(userId)) ?? false
  }

  /**
   * Starts TOTP enrolment with a new secret (a pending one is replaced). GH_VALIDATION when the
   * user has TOTP already: it must be removed first, so that a stolen session cannot swap it.
   */
  async startTotp(user: { id: string; email: string }): Promise<TotpEnrolment> {
    const { keys, issuer } = this.#options
    // A secret sealed with a key that dies with the process would lock its user out at the next start.
    if (!keys.persistent) {
      throw new GatehouseError('GH_UNAVAILABLE', 'Second factors need identity.data_key_file: create it with `gatehouse keys rotate --data`')
    }
    const secret = newTotpSecret()
    const saved = await this.#repository.savePendingTotp(user.id, keys.encrypt(secret, totpContext(user.id)), keys.currentKid)
    if (!saved) throw new GatehouseError('GH_VALIDATION', 'An authenticator app is set up already: remove it first', { details: { field: 'totp' } })
    const url = otpauthUrl(secret, issuer, user.email)
    const { default: QRCode } = await import('qrcode') // only enrolment draws one
    const svg = await QRCode.toString(url, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
    return { secret, otpauth_url: url, qr_svg: svg }
  }

  /**
   * Confirms the pending enrolment with a code of the new secret; resolves the recovery codes
   * (new ones, the old ones void). GH_VALIDATION for no pending enrolment or a wrong code.
   */
  async confirmTotp(user: { id: string; email: string }, code: string, context: FactorChangeContext = {}): Promise<string[]> {
    const record = await this.#repository.totp(user.id)
    if (record === null || record.confirmedAt !== null) {
      throw new GatehouseError('GH_VALIDATION', 'Start setting up an authenticator app first', { details: { field: 'code' } })
    }
    const secret = this.#options.keys.decrypt(record.secretSealed, totpContext(user.id))
    const step = matchTotpStep(secret, code, this.#options.clock.now())
    if (step === null) throw new GatehouseError('GH_VALIDATION', 'The code is not right: check the app and try again', { details: { field: 'code' } })
    const codes = newRecoveryCodes()
    const confirmed = await this.#repository.confirmTotp(user.id, record.secretSealed, step, codes.map(hashRecoveryCode))
    if (!confirmed) throw new GatehouseError('GH_VALIDATION', 'The set-up was restarted meanwhile: start again', { details: { field: 'code' } })
    await this.#changed(user.id, 'mfa.totp_enrolled', { ...context, email: user.email })
    await this.#audit('mfa.recovery_codes_generated', user.id, { ...context, email: user.email })
    return codes
  }

  /** Removes TOTP; recovery codes go too when no other factor is left. GH_NOT_FOUND when there was none. */
  async removeTotp(user: { id: string; email: string }, context: FactorChangeContext = {}): Promise<void> {
    if (!(await this.#repository.deleteTotp(user.id))) throw new GatehouseError('GH_NOT_FOUND', 'No authenticator app is set up')
    if (!(await this.#lookup(user.id))) await this.#repository.deleteRecoveryCodes(user.id)
    await this.#changed(user.id, 'mfa.totp_removed', { ...context, email: user.email })
  }

  /** Ten new recovery codes, the old ones void. GH_VALIDATION without a second factor to recover. */
  async regenerateRecoveryCodes(user: { id: string; email: string }, context: FactorChangeContext = {}): Promise<string[]> {
    if (!(await this.#lookup(user.id))) {
      throw new GatehouseError('GH_VALIDATION', 'Set up a second factor first: recovery codes stand in for it', { details: { field: 'recovery_codes' } })
    }
    const codes = newRecoveryCodes()
    await this.#repository.replaceRecoveryCodes(user.id, codes.map(hashRecoveryCode))
    await this.#audit('mfa.recovery_codes_generated', user.id, { ...context, email: user.email })
    return codes
  }

  /** Removes every second factor of the user (admin reset); resolves whether there was any. */
  async reset(user: { id: string; email: string }, context: FactorChangeContext = {}): Promise<boolean> {
    const totp = await this.#repository.deleteTotp(user.id)
    const codes = await this.#repository.deleteRecoveryCodes(user.id)
    const passkeys = (await this.#options.passkeys?.removeAll(user.id)) ?? 0
    await this.#changed(user.id, 'mfa.reset', { ...context, email: user.email }, { totp, recovery_codes: codes, passkeys })
    return totp || codes > 0 || passkeys > 0
  }

  /**
   * Checks one second factor of `userId`; resolves the `amr` values it adds, or null when it
   * does not hold (wrong, replayed or spent, or a method the user has not enrolled). Counted in
   * `gatehouse_mfa_attempts_total`; the caller counts failures toward the account lockout.
   * `ceremony` names the login or step-up a passkey challenge was issued for.
   */
  async verify(userId: string, proof: SecondFactorProof, ceremony: string): Promise<SessionAmr[] | null> {
    const method: SecondFactorMethod = 'code' in proof ? 'totp' : 'recovery_code' in proof ? 'recovery' : 'webauthn'
    const amr = await this.#check(userId, proof, ceremony)
    for (const listener of this.#attemptListeners) listener(method, amr === null ? 'failure' : 'success')
    if (amr !== null && method === 'recovery') await this.#audit('mfa.recovery_code_used', userId, {})
    return amr
  }

  async #check(userId: string, proof: SecondFactorProof, ceremony: string): Promise<SessionAmr[] | null> {
    if ('code' in proof) {
      const record = await this.#repository.totp(userId)
      if (record === null || record.confirmedAt === null) return null
      const secret = this.#options.keys.decrypt(record.secretSealed, totpContext(userId))
      const step = matchTotpStep(secret, proof.code, this.#options.clock.now())
      if (step === null) return null
      return (await this.#repository.claimTotpStep(userId, step)) ? ['otp'] : null
    }
    if ('recovery_code' in proof) {
      if (normaliseRecoveryCode(proof.recovery_code) === null) return null
      return (await this.#repository.claimRecoveryCode(userId, hashRecoveryCode(proof.recovery_code))) ? ['rcv'] : null
    }
    const passkeys = this.#options.passkeys
    if (passkeys === undefined) return null
    const verified = await passkeys.verifyAssertion(userId, proof.webauthn, ceremony)
    return verified === null ? null : verified.userVerified ? ['hwk', 'user'] : ['hwk']
  }

  /**
   * A factor kept outside this service (a passkey) was added or removed: every replica forgets
   * what it knew about the user. The passkeys service records its own audit events.
   */
  async passkeysChanged(userId: string): Promise<void> {
    this.#cache.delete(userId)
    await this.#options.bus.publish({ kind: 'user', userId })
  }

  close(): void {
    this.#cache.close()
  }

  /** A factor was added or removed: every replica forgets what it knew, and the trail says so. */
  async #changed(userId: string, type: 'mfa.totp_enrolled' | 'mfa.totp_removed' | 'mfa.reset', context: FactorChangeContext, extra: Record<string, unknown> = {}): Promise<void> {
    this.#cache.delete(userId)
    await this.#options.bus.publish({ kind: 'user', userId })
    await this.#audit(type, userId, context, extra)
  }

  async #audit(type: 'mfa.totp_enrolled' | 'mfa.totp_removed' | 'mfa.reset' | 'mfa.recovery_codes_generated' | 'mfa.recovery_code_used', userId: string, context: FactorChangeContext, extra: Record<string, unknown> = {}): Promise<void> {
    const details = { ...extra, ...(context.actorId ? { actor_id: context.actorId } : {}) }
    await this.#options.audit.record(type, { userId, email: context.email ?? null, ip: context.ip ?? null, details })
  }
}
