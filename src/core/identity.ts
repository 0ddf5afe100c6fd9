/** Who a request is, once the edge has authenticated it. */
import type { AmrValue } from './amr.js'
import type { ActiveSession } from './sessions.js'

export interface IdentityUser {
  id: string
  /** Empty for a `jwt_bearer` identity whose token has no email (X-Auth-Email is then absent). */
  email: string
  name: string | null
  roles: readonly string[]
  email_verified: boolean
  created_at: string
}

export interface Identity {
  user: IdentityUser
  /** The permissions this credential carries (a PAT's may be a subset of its owner's). */
  permissions: readonly string[]
  method: 'session' | 'pat' | 'jwt'
  /** How the user proved who they are, for the assertion's `amr` (a session's factors, `pat` or `jwt`). */
  amr: readonly AmrValue[]
  /**
   * Whether this credential carries a second factor (SPEC §3): a session whose `amr` holds
   * `otp`, `hwk` or `rcv`; a PAT created by such a session. Never a `jwt_bearer` token.
   */
  secondFactor: boolean
  /** Set when method is 'session'. */
  session: ActiveSession | null
  /** Where the credential came from: a cookie needs the CSRF check, a header does not. */
  via: 'cookie' | 'header'
  /** Epoch ms when this credential stops working, if it does. */
  expiresAt: number | null
  /** The PAT's id when method is 'pat' (sent as X-Auth-Token-Id). */
  tokenId: string | null
  /**
   * A PAT whose permission list was given explicitly at its creation (automation): it may use
   * the admin API, with `permissions` as the actor's (SPEC §3). False for sessions.
   */
  explicitPermissions: boolean
}
