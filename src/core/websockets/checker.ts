/**
 * Whether an open WebSocket may stay open: its credential still resolves to the same
 * credential, the route it was opened on still exists unchanged in what matters (SPEC §4a: its
 * permissions, `mfa`, upstream, `websocket`), and the policy and the second-factor rules still
 * allow it. The same
 * credential resolver and policy as the handshake, so that nothing a request would be
 * refused for keeps a socket open.
 */
import type { RouteConfig } from '../../config/types.js'
import { isGatehouseError } from '../../errors.js'
import type { Clock } from '../clock.js'
import type { Identity } from '../identity.js'
import { secondFactorState, type CredentialResolver, type SecondFactorPolicy } from '../pipeline/index.js'
import { decide } from '../policy.js'

/** What an open socket remembers of its handshake. */
export interface TrackedSocket {
  /** The route as it was configured when the socket opened. */
  readonly route: RouteConfig
  /** The handshake's headers, as node gave them: the credential is read from them again. */
  readonly rawHeaders: readonly string[]
  readonly userId: string | null
  readonly sessionId: string | null
  readonly patId: string | null
  /** When the credential ends unless renewed (epoch ms); moved on by each successful check. */
  expiresAt: number | null
}

export type SocketVerdict = 'keep' | 'revoked' | 'expired'

export interface SocketChecker {
  /** Never rejects for a store outage: the socket is kept and checked again later. */
  check(socket: TrackedSocket): Promise<SocketVerdict>
}

export interface SocketCheckerDependencies {
  routes: readonly RouteConfig[]
  credentials: CredentialResolver
  clock: Clock
  /** Second factors (SPEC §3): a PAT whose user lost theirs, or a user who must enrol, loses the socket. */
  secondFactors?: SecondFactorPolicy | null
}

export function socketChecker(deps: SocketCheckerDependencies): SocketChecker {
  const byName = new Map(deps.routes.map((route) => [route.name, route]))
  return {
    async check(socket) {
      const route = byName.get(socket.route.name)
      if (route === undefined || !sameGrant(route, socket.route)) return 'revoked'
      if (route.auth === 'public') return 'keep'
      let identity: Identity | null
      try {
        // For a session this also refreshes last_seen_at: an open socket counts as activity.
        identity = await deps.credentials.resolve(socket.rawHeaders)
      } catch (err) {
        if (isGatehouseError(err) && err.statusCode < 500) return ended(socket, deps.clock)
        // The store is out of reach: the credential cannot be judged now, so the socket waits.
        if (isGatehouseError(err)) return 'keep'
        throw err
      }
      if (!sameCredential(socket, identity)) return ended(socket, deps.clock)
      if (!decide(route, identity).allow) return 'revoked'
      const factors = await secondFactorState(identity, route.mfa === 'required', deps.secondFactors ?? null)
      if (factors.enrolmentRequired || !factors.satisfiesRoute) return 'revoked'
      socket.expiresAt = identity?.expiresAt ?? null
      return 'keep'
    },
  }
}

function ended(socket: TrackedSocket, clock: Clock): SocketVerdict {
  return socket.expiresAt !== null && clock.now() >= socket.expiresAt ? 'expired' : 'revoked'
}

function sameCredential(socket: TrackedSocket, identity: Identity | null): boolean {
  if (identity === null) return socket.userId === null
  return identity.user.id === socket.userId && (identity.session?.session.id ?? null) === socket.sessionId && identity.tokenId === socket.patId
}

function sameGrant(now: RouteConfig, then: RouteConfig): boolean {
  return (
    now.websocket &&
    now.upstream === then.upstream &&
    now.auth === then.auth &&
    now.mfa === then.mfa &&
    now.permissions.length === then.permissions.length &&
    now.permissions.every((p) => then.permissions.includes(p))
  )
}
