/**
 * The second step of a login (SPEC §3): a pending login (pending-logins.ts) finished with one
 * second factor. The account lockout covers this step like the password step: it is checked
 * first, every failed factor counts toward it, and only a finished login clears it.
 */
import { GatehouseError } from '../../errors.js'
import { withFactors, type SessionAmr } from '../amr.js'
import type { AuditLog } from '../audit.js'
import type { LoginThrottle } from '../login-throttle.js'
import type { MfaLogin, PendingMfaLogins } from './pending-logins.js'
import type { SecondFactorMethod, SecondFactorProof, SecondFactors } from './second-factors.js'

export interface TwoStepLoginOptions {
  logins: PendingMfaLogins
  factors: SecondFactors
  throttle: Pick<LoginThrottle, 'checkAccount' | 'recordFailure' | 'clear'>
  audit: AuditLog
}

export interface StartedMfaLogin {
  mfa_required: true
  mfa_token: string
  methods: SecondFactorMethod[]
}

/** A finished login: start its session with `amr`. */
export interface FinishedMfaLogin extends MfaLogin {
  amr: SessionAmr[]
}

const invalidToken = () => new GatehouseError('GH_INVALID_CREDENTIALS', 'The sign-in has expired or is finished: sign in again', { reason: 'mfa_token_invalid' })
const wrongFactor = () => new GatehouseError('GH_INVALID_CREDENTIALS', 'The code is not right', { reason: 'wrong_second_factor' })

export class TwoStepLogin {
  readonly #options: TwoStepLoginOptions

  constructor(options: TwoStepLoginOptions) {
    this.#options = options
  }

  /** After the password step of a user with a second factor: the answer that asks for it. */
  async begin(login: MfaLogin): Promise<StartedMfaLogin> {
    const methods = await this.#options.factors.methods(login.user_id)
    const token = await this.#options.logins.begin(login)
    return { mfa_required: true, mfa_token: token, methods }
  }

  /** The methods `userId` may finish a login with. */
  methodsOf(userId: string): Promise<SecondFactorMethod[]> {
    return this.#options.factors.methods(userId)
  }

  /** The pending login of a token (to show the second page again), or null. */
  peek(token: string) {
    return this.#options.logins.peek(token)
  }

  /**
   * Finishes the login of `token` with `proof`. GH_INVALID_CREDENTIALS for an unknown, expired
   * or finished token and for a wrong factor (counted toward the lockout); GH_RATE_LIMITED
   * while the account is locked.
   */
  async finish(token: string, proof: SecondFactorProof, context: { ip?: string | null } = {}): Promise<FinishedMfaLogin> {
    const { logins, factors, throttle, audit } = this.#options
    const login = await logins.peek(token)
    if (login === null) throw invalidToken()
    await throttle.checkAccount(login.email)
    const added = await factors.verify(login.user_id, proof, login.id)
    const event = { userId: login.user_id, email: login.email, ip: context.ip ?? null }
    if (added === null) {
      const locked = await throttle.recordFailure(login.email)
      await audit.record('login.failed', { ...event, details: { reason: 'wrong_second_factor', method: methodOf(proof) } })
      if (locked) await audit.record('login.locked', event)
      throw wrongFactor()
    }
    if (!(await logins.finish(login))) throw invalidToken()
    await throttle.clear(login.email)
    const amr = withFactors(login.amr, added)
    await audit.record('login.succeeded', { ...event, details: { amr } })
    return { ...login, amr }
  }
}

export function methodOf(proof: SecondFactorProof): SecondFactorMethod {
  return 'code' in proof ? 'totp' : 'recovery_code' in proof ? 'recovery' : 'webauthn'
}
