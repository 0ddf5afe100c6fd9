/**
 * The composition root: opens the stores a config names and builds the core services on
 * them. The server, the CLI and the tests all get their services from here.
 */
import type { GatewayConfig } from './config/types.js'
import { ActiveUserCache } from './core/active-users.js'
import { AssertionSigner } from './core/assertion-signer.js'
import { AuditLog } from './core/audit.js'
import { systemClock, type Clock } from './core/clock.js'
import { KeyRing } from './core/identity-keys.js'
import { LoginThrottle } from './core/login-throttle.js'
import { PasswordHasher, type PasswordHasherOptions } from './core/password-hasher.js'
import { PatService } from './core/pats.js'
import { RouteTable } from './core/route-table.js'
import { SessionService } from './core/sessions.js'
import { RefreshTokens } from './core/refresh-tokens.js'
import { UserService } from './core/users.js'
import { OidcAccounts } from './core/oidc-accounts.js'
import { oidcSessionKey, OidcSessions } from './core/oidc-sessions.js'
import { DataKeyRing } from './core/data-keys.js'
import { PasskeyService } from './core/passkeys.js'
import { passkeySecondFactor } from './core/passkey-second-factor.js'
import { WebAuthnChallenges } from './core/webauthn-challenges.js'
import { PendingMfaLogins, SecondFactors, StepUp, TwoStepLogin, type PasskeyFactor } from './core/mfa/index.js'
import { DatabaseUserSecretStore, UserSecrets } from './core/user-secrets/index.js'
import { LogoutTokenVerifier } from './oidc/logout-token.js'
import { SessionRecheck } from './oidc/session-recheck.js'
import { JwtBearer } from './oidc/jwt-bearer.js'
import { OidcProviders } from './oidc/providers.js'
import type { InvalidationBus } from './kv/invalidation.js'
import { openInvalidationBus } from './kv/open-invalidation.js'
import { openKeyValueStore } from './kv/open.js'
import type { KeyValueStore } from './kv/store.js'
import type { Database } from './storage/database.js'
import { BreakerRegistry } from './resilience/breaker-registry.js'
import { FallbackCounter } from './resilience/fallback-counter.js'
import { GuardedDatabase } from './resilience/guarded-database.js'
import { GuardedKeyValueStore } from './resilience/guarded-kv-store.js'
import { isDependencyOutage } from './resilience/outage.js'
import { migrate } from './storage/migrate.js'
import { openDatabase } from './storage/open.js'
import { databaseFailure, safeMessage, sessionStoreFailure, startupStep } from './startup-error.js'

export interface Runtime {
  readonly config: GatewayConfig
  readonly clock: Clock
  /** The database behind its circuit breaker. */
  readonly db: Database
  /** The session store behind its circuit breaker. */
  readonly store: KeyValueStore
  readonly invalidation: InvalidationBus
  readonly audit: AuditLog
  readonly hasher: PasswordHasher
  readonly throttle: LoginThrottle
  /** Rate-limit counts: in the session store, per replica while it is down. */
  readonly rateCounter: FallbackCounter
  readonly users: UserService
  /** `users.isActive`, cached for session-authenticated requests. */
  readonly activeUsers: ActiveUserCache
  readonly sessions: SessionService
  readonly pats: PatService
  /** The `auth.oidc` providers; discovery starts when the app is built (oidc-routes), stops at retire(). */
  readonly oidc: OidcProviders
  /** Which local user an OIDC sign-in is (user_identities). */
  readonly oidcAccounts: OidcAccounts
  /** The provider session behind each OIDC session (sid, sub, ID token, refresh token). */
  readonly oidcSessions: OidcSessions
  /** Back-channel logout tokens, verified against each provider's JWKS. */
  readonly logoutTokens: LogoutTokenVerifier
  /** Refresh token chains of JSON logins (sessions.refresh_tokens). */
  readonly refreshTokens: RefreshTokens
  /** Access tokens of the auth.jwt_bearer issuers, verified against their JWKS. */
  readonly jwtBearer: JwtBearer
  /** AES-256-GCM keys for secrets at rest (identity.data_key_file). */
  readonly dataKeys: DataKeyRing
  /** Users' own secrets for routes with `user_secret`, sealed with `dataKeys`. */
  readonly userSecrets: UserSecrets
  /** WebAuthn passkeys: registration, second factor, passkey-only sign-in. */
  readonly passkeys: PasskeyService
  /** Re-checks OIDC sessions with the provider's refresh token (refresh_interval). */
  readonly sessionRecheck: SessionRecheck
  /** Each user's second factors: TOTP, recovery codes, passkeys (through their hook). */
  readonly secondFactors: SecondFactors
  /** Logins waiting for their second factor (`mfa_token`), and finishing them. */
  readonly twoStepLogin: TwoStepLogin
  /** Adding a second factor to a signed-in session (routes with `mfa: required`). */
  readonly stepUp: StepUp
  readonly keys: KeyRing
  readonly signer: AssertionSigner
  /** The routes the edge proxies: those with an upstream. */
  readonly routes: RouteTable
  /** Every route, forward-auth-only ones included: what GET /auth/verify judges. */
  readonly forwardAuthRoutes: RouteTable
  /** The circuit breakers: `database`, `sessions` and one per upstream; shared by reconfigured runtimes. */
  readonly breakers: BreakerRegistry
  /**
   * Services for a new configuration on the same stores, bus and breakers (a SIGHUP reload).
   * The caller retires this runtime once nothing uses it any more.
   */
  reconfigure(config: GatewayConfig): Promise<Runtime>
  /** Flushes pending PAT last-used times and detaches from the bus; the stores stay open. */
  retire(): Promise<void>
  /** Retires, then closes the bus, the session store and the database. */
  close(): Promise<void>
}

export interface RuntimeDependencies {
  db: Database
  store: KeyValueStore
  /** Default: the bus that goes with `storage.sessions`. */
  invalidation?: InvalidationBus
  clock?: Clock
  hasher?: PasswordHasherOptions
  /** Default: a new registry with the default breaker settings. */
  breakers?: BreakerRegistry
  /** Called each time an account gets locked out (the lockout metric). */
  onLockout?: () => void
  /** Default: one for `auth.jwt_bearer`, on the runtime's clock (tests inject a fetch or cooldown). */
  jwtBearer?: JwtBearer
  /** WebAuthn passkeys as a second factor (core/mfa/passkey-factor.ts); default: the runtime's PasskeyService. */
  passkeys?: (db: Database, store: KeyValueStore) => PasskeyFactor
}

/** Builds the services on stores that are already open; `close()` closes them. */
export async function createRuntime(config: GatewayConfig, deps: RuntimeDependencies): Promise<Runtime> {
  const clock = deps.clock ?? systemClock
  const breakers = deps.breakers ?? new BreakerRegistry()
  const db = new GuardedDatabase(deps.db, breakers.get('database', isDependencyOutage))
  const store = new GuardedKeyValueStore(deps.store, breakers.get('sessions', isDependencyOutage))
  const keys = await startupStep(
    'identity.signing_key_file',
    () => KeyRing.open(config.identity.signing_key_file, { clock, assertionTtlMs: config.identity.assertion_ttl }),
    (err) => safeMessage(err),
  )
  const dataKeys = await openDataKeys(config)
  const invalidation = deps.invalidation ?? (await openInvalidationBus(config.storage.sessions))
  const audit = new AuditLog(db)
  const hasher = new PasswordHasher(config.auth.argon2, deps.hasher)
  const rateCounter = new FallbackCounter(store)
  const throttle = new LoginThrottle({
    store,
    ipCounter: rateCounter,
    lockout: config.auth.lockout,
    loginRateLimit: config.auth.login_rate_limit,
    onLockout: deps.onLockout,
  })
  const users = new UserService({
    db,
    hasher,
    audit,
    throttle,
    passwordPolicy: config.auth.password,
    roles: config.roles,
    defaultRoles: config.default_roles,
    emailVerification: config.auth.email_verification,
    // Every replica's PAT and active-user caches drop the user (this one's synchronously).
    onUserChanged: (userId) => invalidation.publish({ kind: 'user', userId }),
  })
  const sessions = new SessionService({
    store,
    clock,
    idleTimeoutMs: config.sessions.idle_timeout,
    absoluteTimeoutMs: config.sessions.absolute_timeout,
    companionKeys: [oidcSessionKey],
    onEnded: (userId, sessionId) => invalidation.publish({ kind: 'session', userId, sessionId }),
  })
  const oidcSessions = new OidcSessions({ store, ttlMs: config.sessions.absolute_timeout })
  const pats = new PatService({ db, audit, clock, roles: config.roles, invalidation })
  const activeUsers = new ActiveUserCache({ users, bus: invalidation, clock })
  const signer = new AssertionSigner({
    keys,
    issuer: config.server.public_url,
    ttlMs: config.identity.assertion_ttl,
    bindToRequest: config.identity.bind_to_request,
    clock,
  })
  let retired: Promise<void> | undefined
  let closed: Promise<void> | undefined
  const oidc = new OidcProviders(config.auth.oidc, { publicUrl: config.server.public_url })
  const oidcAccounts = new OidcAccounts({
    db,
    audit,
    defaultRoles: config.default_roles,
    onUserChanged: (userId) => invalidation.publish({ kind: 'user', userId }),
  })
  const passkeys = new PasskeyService({
    db,
    challenges: new WebAuthnChallenges({ store, clock }),
    audit,
    clock,
    ...webauthnRelyingParty(config),
    rpName: config.auth.mfa.issuer_name,
  })
  const secondFactors = new SecondFactors({
    db,
    keys: dataKeys,
    audit,
    clock,
    issuer: config.auth.mfa.issuer_name,
    bus: invalidation,
    passkeys: deps.passkeys?.(db, store) ?? passkeySecondFactor(passkeys),
  })
  const twoStepLogin = new TwoStepLogin({ logins: new PendingMfaLogins({ store, clock }), factors: secondFactors, throttle, audit })
  const userSecrets = new UserSecrets({
    store: new DatabaseUserSecretStore(db, audit),
    keys: dataKeys,
    routes: config.routes.filter((route) => route.upstream !== null),
    bus: invalidation,
    clock,
  })
  const retire = () => (retired ??= (oidc.close(), activeUsers.close(), userSecrets.close(), secondFactors.close(), pats.close().catch(() => undefined)))
  return {
    config,
    clock,
    db,
    store,
    invalidation,
    audit,
    hasher,
    throttle,
    rateCounter,
    users,
    activeUsers,
    sessions,
    pats,
    oidc,
    oidcAccounts,
    oidcSessions,
    logoutTokens: new LogoutTokenVerifier({ clock }),
    refreshTokens: new RefreshTokens({
      store,
      sessions,
      clock,
      ttlMs: config.sessions.refresh_ttl,
      isActive: async (userId) => (await activeUsers.get(userId)) !== null,
    }),
    jwtBearer: deps.jwtBearer ?? new JwtBearer(config.auth.jwt_bearer, { clock }),
    dataKeys,
    userSecrets,
    passkeys,
    sessionRecheck: new SessionRecheck({ oidc, oidcSessions, oidcAccounts, sessions, store, keys: dataKeys, audit, clock }),
    secondFactors,
    twoStepLogin,
    stepUp: new StepUp({ factors: secondFactors, throttle, audit, sessions }),
    keys,
    signer,
    routes: new RouteTable(config.routes.filter((route) => route.upstream !== null)),
    forwardAuthRoutes: new RouteTable(config.routes),
    breakers,
    reconfigure: (next) => createRuntime(next, { ...deps, invalidation, breakers }),
    retire,
    close() {
      closed ??= (async () => {
        await retire()
        await Promise.allSettled([invalidation.close(), store.close()])
        await db.close()
      })()
      return closed
    },
  }
}

/**
 * SPEC §3: the WebAuthn RP ID is `sessions.cookie_domain` when set (a passkey then works on
 * every host under it), else `public_url`'s host; ceremonies come from `public_url`'s origin,
 * where the gateway's pages are.
 */
export function webauthnRelyingParty(config: GatewayConfig): { rpId: string; origins: string[] } {
  const url = new URL(config.server.public_url)
  return { rpId: config.sessions.cookie_domain ?? url.hostname, origins: [url.origin] }
}

/**
 * The data key ring. Created on first start with embedded storage (SPEC §4); with shared
 * storage every replica needs the same file, so a missing one is a start-up error when a
 * feature stores secrets with it, and otherwise a ring in memory that nothing persists with.
 */
async function openDataKeys(config: GatewayConfig): Promise<DataKeyRing> {
  const embedded = config.storage.database.startsWith('embedded:')
  const needed = config.auth.oidc.some((provider) => provider.refresh_interval !== null) || config.routes.some((route) => route.user_secret !== null)
  if (embedded || needed) return DataKeyRing.open(config.identity.data_key_file, { create: embedded })
  return DataKeyRing.open(config.identity.data_key_file, { create: false }).catch(() => DataKeyRing.ephemeral())
}

export interface OpenRuntimeOptions extends Pick<RuntimeDependencies, 'breakers' | 'onLockout'> {
  clock?: Clock
  /** Apply pending migrations before use (default true). */
  migrate?: boolean
}

/** Opens the database and session store the config names, migrates, and builds the services. */
export async function openRuntime(config: GatewayConfig, options: OpenRuntimeOptions = {}): Promise<Runtime> {
  const { database, sessions, pool } = config.storage
  const databaseError = (err: unknown) => databaseFailure(database, err)
  const poolOptions = pool ? { poolSize: pool.max, connectionTimeoutMs: pool.connect_timeout } : {}
  const db = await startupStep('storage.database', () => openDatabase(database, poolOptions), databaseError)
  let store: KeyValueStore | undefined
  try {
    // A PostgreSQL pool connects on first use: the first query is where an unreachable server shows.
    await startupStep('storage.database', async () => (options.migrate !== false ? void (await migrate(db)) : db.ping()), databaseError)
    store = await startupStep('storage.sessions', () => openKeyValueStore(sessions, { clock: options.clock }), (err) => sessionStoreFailure(sessions, err))
    return await createRuntime(config, { db, store, clock: options.clock, breakers: options.breakers, onLockout: options.onLockout })
  } catch (err) {
    await store?.close()
    await db.close()
    throw err
  }
}
