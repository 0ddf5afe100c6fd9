/**
 * Re-checking OIDC sessions with the provider (SPEC §2 `refresh_interval`): when a session's
 * check is due, the request that finds it so redeems the provider's refresh token (kept
 * encrypted with the session's OIDC link), re-maps the user's roles from the fresh claims,
 * and stores the (possibly rotated) refresh token for the next check. A refusal by the
 * provider (grant revoked, user removed), or a user no longer in `allowed_groups`, ends the
 * session. A provider that cannot be reached ends nothing: the check is tried again shortly.
 *
 * Only one check per session runs at a time: requests of that session on this replica wait
 * for the same check; on other replicas (a lock in the session store) they go on with the
 * session as it was, the check being at most one round trip late.
 */
import type { AuditLog } from '../core/audit.js'
import type { Clock } from '../core/clock.js'
import type { DataKeyRing } from '../core/data-keys.js'
import type { OidcAccounts } from '../core/oidc-accounts.js'
import type { OidcSessionLink, OidcSessions } from '../core/oidc-sessions.js'
import { groupsOf, holdsAllowedGroup } from '../core/provider-roles.js'
import type { ActiveSession, SessionService } from '../core/sessions.js'
import type { KeyValueStore } from '../kv/store.js'
import type { OidcProviders } from './providers.js'

/** After a failed attempt (provider unreachable), the next one comes at most this much later. */
export const RECHECK_RETRY_MS = 30_000
/** How long one replica holds a session's check before another may try. */
const LOCK_MS = 30_000

export interface SessionRecheckOptions {
  oidc: OidcProviders
  oidcSessions: OidcSessions
  oidcAccounts: OidcAccounts
  sessions: SessionService
  store: KeyValueStore
  keys: DataKeyRing
  audit: AuditLog
  clock: Clock
  /** Told of checks that could not reach the provider (for the log). */
  onError?: (provider: string, err: unknown) => void
}

/** The AES-GCM context a session's provider refresh token is sealed under. */
export const refreshTokenContext = (sessionId: string): string => `oidc-refresh:${sessionId}`

export class SessionRecheck {
  readonly #options: SessionRecheckOptions
  readonly #inFlight = new Map<string, Promise<boolean>>()

  readonly #enabled: boolean

  constructor(options: SessionRecheckOptions) {
    this.#options = options
    this.#enabled = options.oidc.names().some((name) => options.oidc.get(name)?.provider.refresh_interval != null)
  }

  /** The sealed refresh state for a new session, or null when the provider needs none. */
  initial(provider: string, sessionId: string, refreshToken: string | null): OidcSessionLink['refresh'] {
    const interval = this.#options.oidc.get(provider)?.provider.refresh_interval ?? null
    if (interval === null || refreshToken === null) return null
    return {
      token: this.#options.keys.encrypt(refreshToken, refreshTokenContext(sessionId)),
      next_check_at: this.#options.clock.now() + interval,
    }
  }

  /** Resolves false when the session has just been ended by the check. */
  async stillValid(active: ActiveSession): Promise<boolean> {
    // Without any refresh_interval there is nothing to check: no extra store read per request.
    if (!active.session.amr.includes('oidc') || !this.#enabled) return true
    const id = active.session.id
    const running = this.#inFlight.get(id)
    if (running !== undefined) return running
    const check = this.#check(active).finally(() => this.#inFlight.delete(id))
    this.#inFlight.set(id, check)
    return check
  }

  async #check(active: ActiveSession): Promise<boolean> {
    const { oidc, oidcSessions, store, clock, keys } = this.#options
    const id = active.session.id
    const link = await oidcSessions.get(id)
    if (link === null || link.refresh === null || clock.now() < link.refresh.next_check_at) return true
    const provider = oidc.get(link.provider)
    const interval = provider?.provider.refresh_interval ?? null
    if (provider === null || interval === null) return true
    const { count } = await store.increment(`oidc-recheck-lock:${id}`, LOCK_MS)
    if (count !== 1) return true

    let refreshToken: string
    try {
      refreshToken = keys.decrypt(link.refresh.token, refreshTokenContext(id))
    } catch {
      // A key ring without the key it was sealed with cannot re-check: end it rather than never check.
      return this.#end(active, link, 'refresh_token_unreadable')
    }
    let result: Awaited<ReturnType<typeof provider.refresh>>
    try {
      result = await provider.refresh(refreshToken, link.sub)
    } catch (err) {
      this.#options.onError?.(link.provider, err)
      await oidcSessions.updateRefresh(id, { ...link.refresh, next_check_at: clock.now() + Math.min(interval, RECHECK_RETRY_MS) })
      await store.delete(`oidc-recheck-lock:${id}`)
      return true
    }
    if (result.refused) return this.#end(active, link, `provider_refused:${result.error}`)
    if (result.claims !== null) {
      const groups = groupsOf(result.claims.all ?? {}, provider.provider.roles_claim)
      if (!holdsAllowedGroup(groups, provider.provider.allowed_groups)) return this.#end(active, link, 'group_not_allowed')
      await this.#options.oidcAccounts.applyRoles(provider.provider, active.session.user_id, result.claims)
    }
    const next = result.refreshToken ?? refreshToken
    await oidcSessions.updateRefresh(id, { token: keys.encrypt(next, refreshTokenContext(id)), next_check_at: clock.now() + interval })
    await store.delete(`oidc-recheck-lock:${id}`)
    return true
  }

  async #end(active: ActiveSession, link: OidcSessionLink, reason: string): Promise<false> {
    const { sessions, audit, store } = this.#options
    await sessions.end(active.session.id)
    await store.delete(`oidc-recheck-lock:${active.session.id}`)
    await audit.record('session.revoked', {
      userId: active.session.user_id,
      details: { session_id: active.session.id, provider: link.provider, reason },
    })
    return false
  }
}
