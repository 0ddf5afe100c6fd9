/**
 * Builds the fastify application from a runtime (config + services). Tests call this with
 * their own runtime; server.ts adds the listeners, TLS and signals around it.
 */
import cookie from '@fastify/cookie'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { SecureServerOptions } from 'node:http2'
import type { ServerOptions as HttpsServerOptions } from 'node:https'
import type { DestinationStream } from 'pino'
import { PendingLogins } from './core/oidc-pending.js'
import { createAccountServices } from './accounts.js'
import { accessHook } from './http/access.js'
import { accountRoutes } from './http/account-routes.js'
import { addAccessLog, type AccessLog } from './http/access-log.js'
import { adminRoutes } from './http/admin-routes.js'
import { auditRoutes } from './http/audit-routes.js'
import { authRoutes } from './http/auth-routes.js'
import { backchannelLogoutRoutes } from './http/backchannel-logout-routes.js'
import { refreshRoutes } from './http/refresh-routes.js'
import { passkeyRoutes } from './http/passkey-routes.js'
import { passkeyAssets } from './http/passkey-assets.js'
import { passkeyLoginRoutes } from './http/passkey-login-routes.js'
import { PasskeySignIn } from './core/passkey-sign-in.js'
import { passkeySchema } from './http/passkey-schemas.js'
import { createAuthenticator } from './http/authenticate.js'
import { addAuthCors } from './http/cors.js'
import { SESSION_COOKIE_SPELLINGS } from './http/credentials.js'
import { docs } from './http/docs.js'
import { edge } from './http/edge.js'
import { providerLogoutUrl } from './http/provider-logout.js'
import { forwardAuthRoutes } from './http/forward-auth.js'
import { emailRoutes } from './http/email-routes.js'
import { webSockets } from './http/websocket/plugin.js'
import { frameworkErrorHandler, registerErrorHandlers } from './http/error-handler.js'
import { healthRoutes } from './http/health.js'
import { loginRoutes } from './http/login-routes.js'
import { mfaRoutes } from './http/mfa-routes.js'
import { stepUpRoutes } from './http/step-up-routes.js'
import { hasDuplicateHost, hostDiffersFromAuthority } from './http/malformed-requests.js'
import { isAuthAnswer } from './http/no-store.js'
import { flowCookieName, oidcRoutes } from './http/oidc-routes.js'
import { REQUEST_DECORATIONS } from './http/request-context.js'
import { addHsts, hstsHeader, hstsSeconds } from './http/hsts.js'
import { requestIdOf } from './http/request-id.js'
import { requestLogger } from './http/request-logger.js'
import { sharedSchemas } from './http/schemas.js'
import { createSessionCookie } from './http/session-cookie.js'
import { tokenRoutes } from './http/token-routes.js'
import { secretRoutes } from './http/secret-routes.js'
import { UpstreamPools } from './http/upstream-pools.js'
import { dropNonAddressForwardedFor, trustedProxies } from './http/trusted-proxies.js'
import { GatehouseError } from './errors.js'
import { allowedOrigins as createAllowedOrigins } from './core/allowed-origins.js'
import { loggerOptions } from './logging.js'
import { GatewayMetrics } from './metrics/gateway-metrics.js'
import type { Runtime } from './runtime.js'
import { OpenSockets } from './core/websockets/index.js'
import { version } from './version.js'

export interface AppOptions {
  /** TLS key and certificate; omitted for plain HTTP (tests, or behind another terminator). */
  https?: HttpsServerOptions | SecureServerOptions | null
  /** With `https`: the listener also speaks HTTP/2 (ALPN h2 and http/1.1). Default: `server.http2`. */
  http2?: boolean
  /** A pino logger config (or false). Default: the config's `logging` (logging.ts). */
  logger?: FastifyServerOptions['logger']
  /** Where the JSON logs go when `logger` is not given (default: stdout). */
  logStream?: DestinationStream
  /** Where the app counts; one per process, kept across reloads. Default: a new one. */
  metrics?: GatewayMetrics
  /** The server the gateway's listener hands requests to (see server.ts); default: fastify's own. */
  serverFactory?: FastifyServerOptions['serverFactory']
  /**
   * The process's open WebSockets, kept across reloads (server.ts makes one); default: one of
   * this app's own, stopped with it. The app judges them by its routes and credentials.
   */
  websockets?: OpenSockets
}

export async function buildApp(runtime: Runtime, options: AppOptions = {}): Promise<FastifyInstance> {
  const { config } = runtime
  const metrics = options.metrics ?? new GatewayMetrics()
  metrics.setSources({ breakers: runtime.breakers, activeSessions: () => runtime.sessions.countActive() })
  metrics.declareRoutes(config.routes.map((route) => route.name))
  const allowedOrigins = createAllowedOrigins({
    publicUrl: config.server.public_url,
    origins: config.server.cors?.origins ?? [],
    cookieDomain: config.sessions.cookie_domain,
  })
  const pools = new UpstreamPools(config.routes.filter((route) => route.upstream !== null), { clock: runtime.clock })
  metrics.setSources({ upstreamServers: () => pools.gauges() })

  // Set once the app exists; the frameworkErrors handler, given to Fastify() below, reads it.
  // eslint-disable-next-line prefer-const
  let accessLog: AccessLog | undefined
  const http2 = Boolean(options.https) && (options.http2 ?? config.server.http2)
  // fastify types its instance by the server kind; the app is handled as one kind either way.
  const http2Option: object = http2 ? { http2: true } : {}
  const app = Fastify({
    ...(options.https ? { https: http2 ? { ...options.https, allowHTTP1: true } : options.https } : {}),
    ...http2Option,
    logger: options.logger ?? loggerOptions(config.logging, options.logStream),
    // One access line per request instead (access-log.ts).
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: requestLogger,
    ...(options.serverFactory ? { serverFactory: options.serverFactory } : {}),
    bodyLimit: config.server.body_limit,
    trustProxy: config.server.trust_proxy.length > 0 ? [...config.server.trust_proxy] : false,
    genReqId: requestIdOf,
    return503OnClosing: true,
    frameworkErrors: (err, request, reply) => {
      frameworkErrorHandler(err, request, reply)
      accessLog?.recordUnrouted(request, reply.statusCode)
    },
    ajv: {
      // Refuse what the schemas do not describe instead of silently dropping or converting it.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: true },
    },
  }) as unknown as FastifyInstance

  for (const name of REQUEST_DECORATIONS) app.decorateRequest(name, null)
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    dropNonAddressForwardedFor(request.raw.headers)
    if (hasDuplicateHost(request.raw.rawHeaders)) return done(new GatehouseError('GH_VALIDATION', 'Send one Host header, not several'))
    if (hostDiffersFromAuthority(request.raw.httpVersionMajor, request.headers)) {
      return done(new GatehouseError('GH_VALIDATION', 'The Host header differs from :authority'))
    }
    done()
  })
  accessLog = addAccessLog(app, { slowRequestMs: config.logging.slow_request_threshold, metrics })
  // Every /auth answer is about credentials or a person: never cached. Registered at the root
  // so that it covers the not-found answers of unknown /auth paths too.
  app.addHook('onSend', (request, reply, payload, done) => {
    if (isAuthAnswer(request)) reply.header('cache-control', 'no-store')
    done(null, payload)
  })
  const hsts = hstsHeader(options.https ? hstsSeconds(config) : 0)
  addHsts(app, hsts)
  registerErrorHandlers(app)
  for (const schema of [...sharedSchemas, passkeySchema]) app.addSchema(schema)
  await app.register(docs, { publicUrl: config.server.public_url, cookieDomain: config.sessions.cookie_domain }) // OpenAPI at /docs/json, before every route

  await app.register(healthRoutes, {
    version,
    components: { database: () => runtime.db.ping(), sessions: () => runtime.store.ping() },
    upstreams: () => pools.health(),
  })

  const accounts = createAccountServices(runtime, { log: app.log, metrics })
  app.decorate('emailOutbox', accounts.outbox)
  // Links already being mailed go out before the app is gone (a reload or a shutdown).
  app.addHook('onClose', async () => {
    await accounts.outbox?.idle()
  })

  const stopFlushReports = runtime.pats.lastUsed.onFlushError((err) => {
    app.log.warn({ err }, 'PAT last-used times could not be written; they are kept for the next flush')
    metrics.patLastUsedFlushFailed()
  })
  app.addHook('onClose', async () => stopFlushReports())
  const stopMfaCounts = runtime.secondFactors.onAttempt((method, result) => metrics.mfaAttempt(method, result))
  app.addHook('onClose', async () => stopMfaCounts())
  // Never the value: who, which route, which key, why.
  const stopSecretReports = runtime.userSecrets.onProblem(({ kind, userId, route, keyId, reason }) => {
    app.log.warn({ user: userId, route, key_id: keyId, reason }, kind === 'unreadable'
      ? 'a user secret does not decrypt (tampered with, or sealed with a data key the key file no longer holds); it is not injected'
      : 'a user secret could not be re-encrypted under the current data key; the old key still opens it')
  })
  app.addHook('onClose', async () => stopSecretReports())

  const sessionCookie = createSessionCookie(config.server.public_url, config.sessions.absolute_timeout, config.sessions.cookie_domain)
  const { users, sessions, throttle, audit } = runtime
  const authServices = {
    sessions,
    activeUsers: runtime.activeUsers,
    pats: runtime.pats,
    roles: config.roles,
    jwtBearer: runtime.jwtBearer,
    sessionRecheck: runtime.sessionRecheck,
  }
  // SPEC §3: who must enrol (auth.mfa.required_roles) and who has a second factor (cached).
  const secondFactorPolicy = {
    requiredRoles: config.auth.mfa.required_roles,
    hasSecondFactor: (userId: string) => runtime.secondFactors.hasSecondFactor(userId),
  }
  const authenticator = createAuthenticator(authServices, sessionCookie.name, (method, result) => metrics.authAttempt(method, result))
  // Compared in any case and with any prefix (gateway-cookies.ts): every spelling of the session
  // cookie, whatever this configuration uses, and the OIDC flow cookie. Never sent to, nor set
  // by, an upstream.
  const gatewayCookieNames = [...SESSION_COOKIE_SPELLINGS, flowCookieName(config.server.public_url)]
  await app.register(async (auth) => {
    // Cookies are parsed for the gateway's own endpoints only: the edge, forward auth and
    // WebSocket handshakes read the session cookie from the raw headers (credentials.ts), so
    // proxied requests do not pay for parsing every cookie of the upstream's site.
    await auth.register(cookie)
    if (config.server.cors) addAuthCors(auth, config.server.cors.origins)
    // The /auth API speaks JSON only: fastify's default text/plain parser would hand the
    // schemas a string (a confusing 400) where the answer is 415 GH_UNSUPPORTED_MEDIA_TYPE.
    auth.removeContentTypeParser('text/plain')
    auth.addHook('onRequest', accessHook(authenticator, allowedOrigins, secondFactorPolicy))
    const providers = config.auth.oidc.map((p) => p.name)
    await auth.register(loginRoutes, {
      users,
      sessions,
      throttle,
      providers,
      links: { register: config.auth.registration === 'open', forgot: config.email !== null },
      emailEnabled: config.email !== null,
      refreshTokens: config.sessions.refresh_tokens ? runtime.refreshTokens : null,
      secondFactors: runtime.secondFactors,
      twoStepLogin: runtime.twoStepLogin,
      passkeys: runtime.passkeys,
      passkeyLogin: config.auth.mfa.passkey_login,
      bodyLimit: config.server.body_limit,
      cookie: sessionCookie,
      metrics,
      cookieDomain: config.sessions.cookie_domain,
    })
    await auth.register(oidcRoutes, {
      oidc: runtime.oidc,
      oidcAccounts: runtime.oidcAccounts,
      pending: new PendingLogins({ store: runtime.store, clock: runtime.clock }),
      sessions,
      throttle,
      audit,
      publicUrl: config.server.public_url,
      cookie: sessionCookie,
      metrics,
      cookieDomain: config.sessions.cookie_domain,
      oidcSessions: runtime.oidcSessions,
      sessionRecheck: runtime.sessionRecheck,
    })
    await auth.register(authRoutes, {
      users,
      sessions,
      throttle,
      audit,
      registration: config.auth.registration,
      cookie: sessionCookie,
      factors: runtime.secondFactors,
      verifications: accounts.verifications,
      providerLogout: (sessionId) => providerLogoutUrl({ oidc: runtime.oidc, oidcSessions: runtime.oidcSessions, config }, sessionId),
    })
    await auth.register(tokenRoutes, { pats: runtime.pats })
    await auth.register(mfaRoutes, { users, sessions, factors: runtime.secondFactors })
    const passkeysChanged = (userId: string) => runtime.secondFactors.passkeysChanged(userId)
    await auth.register(passkeyRoutes, { passkeys: runtime.passkeys, sessions, onChanged: passkeysChanged })
    await auth.register(passkeyLoginRoutes, {
      enabled: config.auth.mfa.passkey_login,
      signIn: new PasskeySignIn({ passkeys: runtime.passkeys, users, throttle, audit, emailVerification: config.auth.email_verification }),
      sessions,
      cookie: sessionCookie,
      metrics,
      refreshTokens: config.sessions.refresh_tokens ? runtime.refreshTokens : null,
    })
    await auth.register(passkeyAssets)
    await auth.register(stepUpRoutes, {
      factors: runtime.secondFactors,
      passkeys: runtime.passkeys,
      stepUp: runtime.stepUp,
      throttle,
      cookie: sessionCookie,
      cookieDomain: config.sessions.cookie_domain,
      bodyLimit: config.server.body_limit,
    })
    await auth.register(secretRoutes, { secrets: runtime.userSecrets })
    await auth.register(adminRoutes, { users, sessions, roles: config.roles, factors: runtime.secondFactors })
    await auth.register(emailRoutes, { resets: accounts.resets, verifications: accounts.verifications, throttle, bodyLimit: config.server.body_limit })
    await auth.register(accountRoutes, {
      users,
      sessions,
      pats: runtime.pats,
      secrets: runtime.userSecrets,
      passkeys: runtime.passkeys,
      onFactorsChanged: (userId: string) => runtime.secondFactors.passkeysChanged(userId),
      audit,
      throttle,
      verifications: accounts.verifications,
      cookie: sessionCookie,
      roles: config.roles,
      registration: config.auth.registration,
      emailVerification: config.auth.email_verification,
      passwordMinLength: config.auth.password.min_length,
      bodyLimit: config.server.body_limit,
      factors: runtime.secondFactors,
    })
    await auth.register(auditRoutes, { audit })
    await auth.register(backchannelLogoutRoutes, {
      oidc: runtime.oidc,
      verifier: runtime.logoutTokens,
      oidcSessions: runtime.oidcSessions,
      sessions: runtime.sessions,
      audit: runtime.audit,
      clock: runtime.clock,
    })
    await auth.register(refreshRoutes, {
      refreshTokens: runtime.refreshTokens,
      throttle: runtime.throttle,
      enabled: config.sessions.refresh_tokens,
    })
  })

  app.get('/.well-known/jwks.json', async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=60')
    return runtime.keys.publicJwks()
  })

  if (config.forward_auth !== null) {
    await app.register(forwardAuthRoutes, {
      settings: config.forward_auth,
      table: runtime.forwardAuthRoutes,
      credentials: authenticator,
      signer: runtime.signer,
      counter: runtime.rateCounter,
      publicUrl: config.server.public_url,
      allowedOrigins,
      metrics,
      secondFactors: secondFactorPolicy,
    })
  }

  await app.register(edge, {
    table: runtime.routes,
    credentials: authenticator,
    signer: runtime.signer,
    proxies: trustedProxies(config.server.trust_proxy),
    publicUrl: config.server.public_url,
    allowedOrigins,
    sessionCookieNames: gatewayCookieNames,
    protocol: options.https ? 'https' : 'http',
    metrics,
    breakers: runtime.breakers,
    counter: runtime.rateCounter,
    pools,
    secondFactors: secondFactorPolicy,
    secrets: runtime.userSecrets,
    secretHeaders: runtime.userSecrets.headerNames(),
    hsts,
  })
  pools.startHealthChecks()
  app.addHook('onClose', async () => pools.stop())

  await app.register(webSockets, {
    sockets: options.websockets ?? null,
    bus: runtime.invalidation,
    clock: runtime.clock,
    routes: config.routes,
    // Re-checks do not count as sign-in attempts: a second authenticator without the metric.
    recheckCredentials: createAuthenticator(authServices, sessionCookie.name),
    credentials: authenticator,
    table: runtime.routes,
    signer: runtime.signer,
    counter: runtime.rateCounter,
    proxies: trustedProxies(config.server.trust_proxy),
    publicUrl: config.server.public_url,
    allowedOrigins,
    sessionCookieNames: gatewayCookieNames,
    protocol: options.https ? 'https' : 'http',
    metrics,
    secondFactors: secondFactorPolicy,
    secrets: runtime.userSecrets,
    secretHeaders: runtime.userSecrets.headerNames(),
  })

  return app
}
