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
  /** The first server's URL: the app's scheme and base path, which every server shares. */
  upstream: string
  /** Every server's URL, in the configured order (index 1 is `upstream`). */
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
  cors: RouteCorsConfig | null
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
    body_limit: number
    cors: { origins: readonly string[] } | null
  }
  storage: {
    /** `embedded:<absolute path>` or a postgres:// URL. */
    database: string
    /** `memory` or a redis:// URL. */
    sessions: string
  }
  identity: {
    signing_key_file: string
    assertion_ttl: number
    bind_to_request: boolean
  }
  sessions: {
    idle_timeout: number
    absolute_timeout: number
  }
  auth: {
    registration: 'open' | 'closed'
    password: { min_length: number; require_classes: boolean }
    argon2: { memory_kib: number; time_cost: number; parallelism: number }
    lockout: { max_failures: number; window: number }
    login_rate_limit: { max: number; window: number }
    oidc: readonly OidcProviderConfig[]
  }
  roles: Readonly<Record<string, readonly string[]>>
  default_roles: readonly string[]
  rate_limits: Readonly<Record<string, RateLimitPolicy>>
  routes: readonly RouteConfig[]
  metrics: { host: string; port: number }
  logging: { level: LogLevel; slow_request_threshold: number }
}
