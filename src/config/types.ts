/**
 * The validated, defaults-filled, frozen shape of gateway.yml (SPEC §2).
 * Keys keep their YAML names so that error paths, docs and code use one vocabulary.
 * Durations are milliseconds, sizes are bytes, file paths are absolute (resolved
 * against the directory of the config file).
 */

export type AuthMode = 'required' | 'optional' | 'public'
export type RateLimitKey = 'ip' | 'user'
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
export type LoadBalancing = 'round_robin' | 'least_request'

/** Active health checks of a route's upstream servers. */
export interface HealthCheckConfig {
  /** Path (and query) probed on each server with GET; a 2xx or 3xx answer is a success. */
  path: string
  /** Milliseconds between probes. */
  interval: number
  /** Milliseconds a probe may take. */
  timeout: number
  /** Failed probes in a row that take a server out of rotation. */
  unhealthy_after: number
  /** Successful probes in a row that bring it back. */
  healthy_after: number
}

/** CORS for browser apps on other origins calling a route (SPEC §4a). */
export interface RouteCorsConfig {
  origins: readonly string[]
  /** Upper-case methods a preflight may ask for. */
  methods: readonly string[]
  /** Lower-case request headers a preflight may ask for. */
  headers: readonly string[]
  /** Milliseconds a browser may cache a preflight answer. */
  max_age: number
}

export interface RateLimitPolicy {
  max: number
  /** Milliseconds. */
  window: number
  key: RateLimitKey
}

export interface RouteConfig {
  name: string
  /** Lower-case host without a port, `*.example.com` for one label in front; null: any host. */
  host: string | null
  /** The prefix as written, without a trailing slash ('/' stays '/'). */
  match: string
  /** Upper-case methods; null means all. */
  methods: readonly string[] | null
  /** The first server's URL: the app's scheme and base path, which every server shares; null: a forward-auth-only route, absent at the edge. */
  upstream: string | null
  /** Every server's URL, in the configured order (index 1 is `upstream`); empty without an upstream. */
  servers: readonly string[]
  load_balancing: LoadBalancing
  health_check: HealthCheckConfig | null
  /** Whether the upstream gets the client's Host instead of its own. */
  preserve_host: boolean
  auth: AuthMode
  permissions: readonly string[]
  /** The resolved policy (named or inline); null when the route has none. */
  rate_limit: RateLimitPolicy | null
  /** The policy's name when it referenced a named one. */
  rate_limit_name: string | null
  strip_prefix: boolean
  /** Milliseconds. */
  timeout: number
  csrf: boolean
  /** required: a session needs a second factor in its `amr`, a PAT one created by such a session (SPEC §3). */
  mfa: 'optional' | 'required'
  /** Whether WebSocket handshakes are proxied and tunnelled (SPEC §4a). */
  websocket: boolean
  cors: RouteCorsConfig | null
}

export interface ForwardAuthConfig {
  /** CIDRs of the proxies that may call GET /auth/verify. */
  trusted: readonly string[]
  /** forwarded: X-Forwarded-Method/-Proto/-Host/-Uri; original: X-Original-Method and X-Original-URL. */
  headers: 'forwarded' | 'original'
}

export interface OidcProviderConfig {
  name: string
  issuer: string
  client_id: string
  client_secret: string
  scopes: readonly string[]
  allowed_email_domains: readonly string[] | null
  create_users: boolean
  link_existing_users: boolean
  trust_unverified_email: boolean
  /** Dotted path into the ID token claims to the user's groups; null: no mapping. */
  roles_claim: string | null
  /** Group → roles. */
  role_map: Readonly<Record<string, readonly string[]>>
  /** Sign-in needs one of these groups; null: any. */
  allowed_groups: readonly string[] | null
  /** Milliseconds; null: the provider is never asked again during a session. */
  refresh_interval: number | null
  provider_logout: boolean
}

/** An `auth.jwt_bearer` entry: an issuer whose access tokens are credentials (SPEC §3). */
export interface JwtIssuerConfig {
  issuer: string
  audience: string
  name: string
  roles_claim: string | null
  role_map: Readonly<Record<string, readonly string[]>>
}

export interface GatewayConfig {
  /** Absolute path of the file this was read from. */
  source: string
  server: {
    host: string
    port: number
    /** Origin only: scheme, host and port, no trailing slash. */
    public_url: string
    tls: { cert: string; key: string } | null
    /** With tls: whether ALPN offers h2 besides http/1.1. */
    http2: boolean
    /** Strict-Transport-Security max-age in milliseconds (answers over TLS); 0 = off. */
    hsts: number
    redirect_http_port: number | null
    /** CIDRs (IPv4 or IPv6), normalised to `address/prefix`; a bare address becomes /32 or /128. */
    trust_proxy: readonly string[]
    /** Every connection starts with a PROXY v1/v2 header from a trust_proxy peer. */
    proxy_protocol: boolean
    /** Milliseconds: how long SIGTERM waits for requests and WebSockets. */
    drain_timeout: number
    body_limit: number
    cors: { origins: readonly string[] } | null
  }
  storage: {
    /** `embedded:<absolute path>` or a postgres:// URL. */
    database: string
    /** PostgreSQL only; null: the defaults (max 10, connect_timeout 5 s). */
    pool: { max: number; connect_timeout: number } | null
    /** `memory`, a redis:// / rediss:// URL or a redis-sentinel:// URL. */
    sessions: string
  }
  identity: {
    signing_key_file: string
    data_key_file: string
    assertion_ttl: number
    bind_to_request: boolean
  }
  sessions: {
    idle_timeout: number
    absolute_timeout: number
    /** Lower-case, no leading dot; null: a host-only cookie. */
    cookie_domain: string | null
    refresh_tokens: boolean
    /** Milliseconds. */
    refresh_ttl: number
  }
  auth: {
    registration: 'open' | 'closed'
    email_verification: 'off' | 'required'
    password: { min_length: number; require_classes: boolean }
    argon2: { memory_kib: number; time_cost: number; parallelism: number }
    lockout: { max_failures: number; window: number }
    login_rate_limit: { max: number; window: number }
    mfa: {
      /** The TOTP issuer authenticator apps show. */
      issuer_name: string
      /** Holders of these roles reach only the account page, enrolment and logout until they enrol. */
      required_roles: readonly string[]
      /** Whether a passkey alone may sign in. */
      passkey_login: boolean
    }
    oidc: readonly OidcProviderConfig[]
    jwt_bearer: readonly JwtIssuerConfig[]
  }
  /** Null: no email is sent (reset and verification links cannot be mailed). */
  email: { smtp: string; from: string } | null
  roles: Readonly<Record<string, readonly string[]>>
  default_roles: readonly string[]
  rate_limits: Readonly<Record<string, RateLimitPolicy>>
  routes: readonly RouteConfig[]
  /** Null: GET /auth/verify is 404. */
  forward_auth: ForwardAuthConfig | null
  metrics: { host: string; port: number }
  logging: { level: LogLevel; format: 'json' | 'pretty'; slow_request_threshold: number }
}
