/**
 * Step-up (SPEC §3): a signed-in session proves a second factor and is replaced by a new session
 * whose `amr` adds it (a new token: the old one ends, as at every login). The account lockout
 * applies as at the second step of a login: checked first, failures counted, cleared on success.
 */
import { GatehouseError } from '../../errors.js'
import { withFactors } from '../amr.js'
import type { AuditLog } from '../audit.js'
import type { LoginThrottle } from '../login-throttle.js'
import type { CreatedSession, Session, SessionService } from '../sessions.js'
import type { SecondFactorProof, SecondFactors } from './second-factors.js'
import { methodOf } from './two-step-login.js'

export interface StepUpOptions {
  factors: SecondFactors
  throttle: Pick<LoginThrottle, 'checkAccount' | 'recordFailure' | 'clear'>
  audit: AuditLog
  sessions: Pick<SessionService, 'create' | 'revoke'>
}

export class StepUp {
  readonly #options: StepUpOptions

  constructor(options: StepUpOptions) {
    this.#options = options
  }

  /**
   * Checks `proof` for the user of `session` and resolves the session that replaces it.
   * GH_INVALID_CREDENTIALS for a wrong factor (counted toward the lockout), GH_RATE_LIMITED
   * while the account is locked.
   */
  async upgrade(
    user: { id: string; email: string },
    session: Session,
    proof: SecondFactorProof,
    context: { ip?: string | null; userAgent?: string | null } = {},
  ): Promise<CreatedSession> {
    const { factors, throttle, audit, sessions } = this.#options
    const event = { userId: user.id, email: user.email, ip: context.ip ?? null }
    await throttle.checkAccount(user.email)
    const added = await factors.verify(user.id, proof, session.id)
    if (added === null) {
      const locked = await throttle.recordFailure(user.email)
      await audit.record('login.failed', { ...event, details: { reason: 'wrong_second_factor', method: methodOf(proof), step_up: true } })
      if (locked) await audit.record('login.locked', event)
      throw new GatehouseError('GH_INVALID_CREDENTIALS', 'The code is not right', { reason: 'wrong_second_factor' })
    }
    await throttle.clear(user.email)
    const amr = withFactors(session.amr, added)
    const upgraded = await sessions.create(user.id, { amr, ip: context.ip, userAgent: context.userAgent })
    await sessions.revoke(user.id, session.id)
    await audit.record('mfa.step_up', { ...event, details: { amr } })
    return upgraded
  }
}
