/**
 * The composition root: opens the stores a config names and builds the core services on
 * them. The server, the CLI and the tests all get their services from here.
 */
import type { GatewayConfig } from './config/types.js'
import { AssertionSigner } from './core/assertion-signer.js'
import { AuditLog } from './core/audit.js'
import { systemClock, type Clock } from './core/clock.js'
import { KeyRing } from './core/identity-keys.js'
import { LoginThrottle } from './core/login-throttle.js'
import { PasswordHasher, type PasswordHasherOptions } from './core/password-hasher.js'
import { PatService } from './core/pats.js'
import { RouteTable } from './core/route-table.js'
import { SessionService } from './core/sessions.js'
import { UserService } from './core/users.js'
import type { InvalidationBus } from './sessions/invalidation.js'
import { openInvalidationBus } from './sessions/open-invalidation.js'
import { openSessionStore } from './sessions/open.js'
import type { SessionStore } from './sessions/store.js'
import type { Database } from './storage/database.js'
import { migrate } from './storage/migrate.js'
import { openDatabase } from './storage/open.js'

export interface Runtime {
  readonly config: GatewayConfig
  readonly clock: Clock
  readonly db: Database
  readonly store: SessionStore
  readonly invalidation: InvalidationBus
  readonly audit: AuditLog
  readonly hasher: PasswordHasher
  readonly throttle: LoginThrottle
  readonly users: UserService
  readonly sessions: SessionService
  readonly pats: PatService
  readonly keys: KeyRing
  readonly signer: AssertionSigner
  readonly routes: RouteTable
  /** Flushes pending PAT last-used times, then closes the bus, the session store and the database. */
  close(): Promise<void>
}

export interface RuntimeDependencies {
  db: Database
  store: SessionStore
  /** Default: the bus that goes with `storage.sessions`. */
  invalidation?: InvalidationBus
  clock?: Clock
  hasher?: PasswordHasherOptions
}

/** Builds the services on stores that are already open; `close()` closes them. */
export async function createRuntime(config: GatewayConfig, deps: RuntimeDependencies): Promise<Runtime> {
  const { db, store } = deps
  const clock = deps.clock ?? systemClock
  const keys = await KeyRing.open(config.identity.signing_key_file, { clock, assertionTtlMs: config.identity.assertion_ttl })
  const invalidation = deps.invalidation ?? (await openInvalidationBus(config.storage.sessions))
  const audit = new AuditLog(db)
  const hasher = new PasswordHasher(config.auth.argon2, deps.hasher)
  const throttle = new LoginThrottle({
    store,
    lockout: config.auth.lockout,
    loginRateLimit: config.auth.login_rate_limit,
  })
  const users = new UserService({
    db,
    hasher,
    audit,
    throttle,
    passwordPolicy: config.auth.password,
    roles: config.roles,
    defaultRoles: config.default_roles,
  })
  const sessions = new SessionService({
    store,
    clock,
    idleTimeoutMs: config.sessions.idle_timeout,
    absoluteTimeoutMs: config.sessions.absolute_timeout,
  })
  const pats = new PatService({ db, audit, clock, roles: config.roles, invalidation })
  const signer = new AssertionSigner({
    keys,
    issuer: config.server.public_url,
    ttlMs: config.identity.assertion_ttl,
    bindToRequest: config.identity.bind_to_request,
    clock,
  })
  let closed: Promise<void> | undefined
  return {
    config,
    clock,
    db,
    store,
    invalidation,
    audit,
    hasher,
    throttle,
    users,
    sessions,
    pats,
    keys,
    signer,
    routes: new RouteTable(config.routes),
    close() {
      closed ??= (async () => {
        await pats.close().catch(() => undefined)
        await Promise.allSettled([invalidation.close(), store.close()])
        await db.close()
      })()
      return closed
    },
  }
}

export interface OpenRuntimeOptions {
  clock?: Clock
  /** Apply pending migrations before use (default true). */
  migrate?: boolean
}

/** Opens the database and session store the config names, migrates, and builds the services. */
export async function openRuntime(config: GatewayConfig, options: OpenRuntimeOptions = {}): Promise<Runtime> {
  const db = await openDatabase(config.storage.database)
  let store: SessionStore | undefined
  try {
    if (options.migrate !== false) await migrate(db)
    store = await openSessionStore(config.storage.sessions, { clock: options.clock })
    return await createRuntime(config, { db, store, clock: options.clock })
  } catch (err) {
    await store?.close()
    await db.close()
    throw err
  }
}
