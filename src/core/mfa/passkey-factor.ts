/**
 * HOOK for WebAuthn passkeys (SPEC §3). The passkeys work plugs its implementation in here, as
 * `SecondFactorsOptions.passkeys`; until then it is undefined and no user has passkeys. Every
 * place that must learn about passkeys goes through this interface: the `methods` offered at
 * a two-step login, `hasSecondFactor` (the enrolment gate of `auth.mfa.required_roles`), the
 * `mfa.passkeys` count of GET /auth/me, the admin reset, and verifying a `webauthn` proof at
 * POST /auth/login/mfa and at step-up.
 */
export interface PasskeyFactor {
  /** How many passkeys the user has registered (0: none). */
  countPasskeys(userId: string): Promise<number>
  /** Whether the user has at least one passkey. */
  hasPasskeys(userId: string): Promise<boolean>
  /**
   * Verifies a WebAuthn assertion (`response`, as the browser made it) against the user's
   * passkeys and the challenge issued for `ceremony` (the pending login's id, or the session's
   * for a step-up); resolves null when it does not hold, else whether the authenticator also
   * verified the user (amr `user` next to `hwk`).
   */
  verifyAssertion(userId: string, response: unknown, ceremony: string): Promise<{ userVerified: boolean } | null>
  /** Removes every passkey of the user (admin reset); resolves how many. */
  removeAll(userId: string): Promise<number>
}
