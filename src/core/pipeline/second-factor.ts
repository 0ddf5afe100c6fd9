/**
 * The second-factor rules of SPEC §3 that every caller shares (the edge, forward auth, WebSocket
 * handshakes, `gatehouse explain`, and the /auth API's access hook):
 *
 * - the enrolment gate: sessions and PATs of users holding a role in `auth.mfa.required_roles`
 *   who have no second factor reach nothing but enrolment (403 GH_MFA_ENROLMENT_REQUIRED);
 * - route `mfa: required`: a session needs a second factor in its `amr`; a PAT must have been
 *   created by such a session and its user must still have a factor; a `jwt_bearer` token never
 *   satisfies it (403 GH_MFA_REQUIRED).
 *
 * Cheap by construction: without `mfa: required` on the route and without a required role on
 * the user, nothing is looked up.
 */
import { GatehouseError } from '../../errors.js'
import type { Identity } from '../identity.js'

export interface SecondFactorPolicy {
  /** `auth.mfa.required_roles`. */
  requiredRoles: readonly string[]
  /** Whether the user has a second factor now (cached by the caller: SecondFactors.hasSecondFactor). */
  hasSecondFactor(userId: string): Promise<boolean>
}

/** What the authorise stage needs to know; computed before it, since it may look something up. */
export interface SecondFactorState {
  /** The user must enrol before anything else. */
  enrolmentRequired: boolean
  /** The credential satisfies a route's `mfa: required`. */
  satisfiesRoute: boolean
}

const NOTHING_TO_CHECK: SecondFactorState = { enrolmentRequired: false, satisfiesRoute: true }

/** Whether the enrolment gate concerns this identity at all (a local user holding a required role). */
export function mayNeedEnrolment(identity: Identity, policy: SecondFactorPolicy): boolean {
  return identity.method !== 'jwt' && policy.requiredRoles.length > 0 && identity.user.roles.some((role) => policy.requiredRoles.includes(role))
}

/**
 * The second-factor state of `identity` for a route (`routeRequires`: its `mfa` is `required`).
 * Looks the user's factors up only when the answer depends on them.
 */
export async function secondFactorState(identity: Identity | null, routeRequires: boolean, policy: SecondFactorPolicy | null): Promise<SecondFactorState> {
  if (identity === null) return NOTHING_TO_CHECK
  const enrolment = policy !== null && mayNeedEnrolment(identity, policy)
  if (!enrolment && !routeRequires) return NOTHING_TO_CHECK
  // A session's own amr answers the route's question; a PAT's needs its user to have a factor still.
  const lookUp = enrolment || (routeRequires && identity.method === 'pat' && identity.secondFactor)
  const userHasFactor = lookUp && policy !== null ? await policy.hasSecondFactor(identity.user.id) : false
  const satisfiesRoute =
    !routeRequires || (identity.method === 'session' ? identity.secondFactor : identity.method === 'pat' ? identity.secondFactor && userHasFactor : false)
  return { enrolmentRequired: enrolment && !userHasFactor, satisfiesRoute }
}

/** Throws the 403 the state calls for; `identity` null (an anonymous request on an optional route) passes. */
export function enforceSecondFactor(state: SecondFactorState, routeName: string | null): void {
  if (state.enrolmentRequired) {
    throw new GatehouseError('GH_MFA_ENROLMENT_REQUIRED', undefined, { details: { enrol_at: '/auth/account' } })
  }
  if (!state.satisfiesRoute) {
    throw new GatehouseError('GH_MFA_REQUIRED', undefined, { details: routeName === null ? {} : { route: routeName } })
  }
}
