/** Second factors (SPEC §3): TOTP, recovery codes, the passkey hook, and logins waiting for a second factor. */
export { hasSecondFactor, withFactors, type SessionAmr } from '../amr.js'
export type { PasskeyFactor } from './passkey-factor.js'
export { MFA_TOKEN_TTL_MS, PendingMfaLogins, type MfaLogin, type PendingMfaLogin } from './pending-logins.js'
export { RECOVERY_CODE_COUNT } from './recovery-codes.js'
export {
  SECOND_FACTOR_METHODS,
  SecondFactors,
  offeredProof,
  type FactorStatus,
  type SecondFactorMethod,
  type SecondFactorProof,
  type SecondFactorsOptions,
  type TotpEnrolment,
} from './second-factors.js'
export { StepUp } from './step-up.js'
export { TwoStepLogin, methodOf, type FinishedMfaLogin, type StartedMfaLogin } from './two-step-login.js'
export { matchTotpStep, totpCode, totpStep, TOTP_PERIOD_SECONDS } from './totp.js'
