/**
 * The schema of gateway.yml (SPEC §2): every key with its type, default and a sentence
 * describing it. Parsing a document with it yields GatewayConfig (without `source`).
 */

import { bool, int, oneOf, reference, str, unique } from './leaves.js'
import type { Node, SchemaEntry } from './node.js'
import { checkRouteConflicts, checkRoutePermissions } from './route-checks.js'
import { derived, list, map, nullable, obj, oneOrList, optional, required, textOrMapping, transform } from './structure.js'
import type { GatewayConfig, RouteConfig } from './types.js'
import { DAY, HOUR, SECOND } from './units.js'
import {
  cidr, claimPath, cookieDomain, databaseUrl, routeHost, duration, durationOrOff, emailDomain, filePath, headerName, host, issuerUrl, method, name, origin, pathPrefix,
  permission, port, probePath, roleName, scope, secretHeaderName, sessionStoreUrl, size, smtpUrl, upstreamUrl,
} from './values.js'

/** Roles used when the file has no `roles` key. */
export const DEFAULT_ROLES = { viewer: ['app:read'], operator: ['app:read', 'app:write'], admin: ['*'] }
/** The longest delay a Node timer takes (about 24.8 days). */
const MAX_TIMER = 2 ** 31 - 1
const YEAR = 365 * DAY

const rateLimitPolicy = obj({
  max: required(int({ min: 1 }), 'Requests allowed in one window.'),
  window: required(duration(), 'Length of the window the requests are counted in.'),
  key: optional(oneOf(['ip', 'user'] as const), 'ip', 'What is counted: the client IP, or the user (anonymous requests fall back to the IP).'),
}, { type: 'rate-limit policy' })

const server = obj({
  host: optional(host(), '0.0.0.0', 'Address the public listener binds to.'),
  port: optional(port(), 8443, 'Port of the public listener; 0 picks a free port.'),
  public_url: optional(nullable(origin()), null,
    'Origin used for redirects, CSRF checks and the assertion iss.', 'https://localhost:<port> with tls, else http://localhost:<port>'),
  tls: optional(nullable(obj({
    cert: required(filePath(), 'PEM certificate chain, created (self-signed) on first start when missing.'),
    key: required(filePath(), 'PEM private key of the certificate.'),
  }, { type: 'TLS files' })), null, 'Certificate and key to serve HTTPS; omit only when another TLS terminator is in front.', 'none (plain HTTP)'),
  http2: optional(bool(), true, 'With tls: whether ALPN offers HTTP/2 (h2) besides HTTP/1.1; upstream connections stay HTTP/1.1.'),
  hsts: optional(durationOrOff({ max: 2 * YEAR }), '180d',
    'Strict-Transport-Security max-age on every answer over TLS when public_url is https (an upstream\'s own value wins); 0 = off.'),
  redirect_http_port: optional(nullable(port()), null, 'Port of an optional plain HTTP listener answering 308 to public_url.', 'none'),
  trust_proxy: optional(list(cidr()), [], 'Address ranges of proxies whose X-Forwarded-For is believed.'),
  proxy_protocol: optional(bool(), false,
    'Whether every connection to the public listener (not redirect_http_port) starts with a PROXY protocol v1 or v2 header, accepted only from trust_proxy peers; its client address then stands for the peer everywhere.'),
  drain_timeout: optional(duration({ max: MAX_TIMER }), '10s', 'SIGTERM: longest wait for in-flight requests and open WebSockets before closing them.'),
  body_limit: optional(size({ max: 1024 ** 3 }), '1mb', 'Largest request body accepted by the /auth endpoints.'),
  cors: optional(nullable(obj({
    origins: required(list(origin(), { min: 1 }), 'Exact origins allowed to call /auth with credentials; never "*".'),
  }, { type: 'CORS settings' })), null, 'Lets browser apps on other origins call /auth.', 'none'),
}, {
  check(parts, report) {
    // Without a trusted peer every connection would be closed: a mistake, not a setting.
    if (parts.proxy_protocol === true && parts.trust_proxy?.length === 0) {
      report('proxy_protocol', 'needs server.trust_proxy: the addresses of the proxies that send the header')
    }
  },
})

const storage = obj({
  database: optional(databaseUrl(), 'embedded:./data/db', 'embedded:<directory> for PGlite on disk, or a postgres:// URL.'),
  pool: optional(nullable(obj({
    max: optional(int({ min: 1, max: 1000 }), 10, 'Most connections open at once.'),
    connect_timeout: optional(duration({ min: 1, max: MAX_TIMER }), '5s', 'Longest wait for a connection (new or from the pool) before the query fails.'),
  }, { type: 'PostgreSQL pool' })), null,
  'PostgreSQL connection pool; ignored (with a warning at start) with embedded storage, which is one connection.', 'max 10, connect_timeout 5s'),
  sessions: optional(sessionStoreUrl(), 'memory',
    'memory for in-process sessions, a redis:// URL shared by replicas, or redis-sentinel://h1:26379,h2:26379/<master>/<db> to follow a Sentinel-managed master.'),
})

const identity = obj({
  signing_key_file: optional(filePath(), 'certs/identity-keys.json', 'Private JWK set signing identity assertions, created on first start.'),
  assertion_ttl: optional(duration({ min: SECOND, max: HOUR }), '60s', 'Lifetime of an X-Auth-Assertion.'),
  data_key_file: optional(filePath(), 'certs/data-keys.json',
    'AES-256-GCM key ring for secrets at rest (provider refresh tokens, TOTP secrets, user secrets); created on first start with embedded storage; with PostgreSQL it must exist when a route has user_secret or a provider refresh_interval (`gatehouse keys rotate --data` makes it).'),
  bind_to_request: optional(bool(), true,
    'Whether each assertion names its request (jti, rid, htm, htu); false reuses one per identity and route for half its ttl.'),
})

const sessions = obj({
  idle_timeout: optional(duration({ min: SECOND, max: YEAR }), '30m', 'A session unused this long ends.'),
  absolute_timeout: optional(duration({ min: SECOND, max: YEAR }), '24h', 'A session ends this long after login, however active.'),
  cookie_domain: optional(nullable(cookieDomain()), null,
    'One sign-in for every host under this domain (forward auth, several hosts): the cookie becomes __Secure-gh_session with Domain set. Every host under it receives the session cookie.',
    'none (a host-only __Host-gh_session cookie)'),
  refresh_tokens: optional(bool(), false, 'Whether JSON logins also get a rotating refresh token (POST /auth/refresh).'),
  refresh_ttl: optional(duration({ min: SECOND, max: YEAR }), '30d', 'Longest life of a refresh token chain, from its login.'),
}, {
  check(parts, report) {
    if (parts.idle_timeout !== undefined && parts.absolute_timeout !== undefined && parts.idle_timeout > parts.absolute_timeout) {
      report('idle_timeout', 'must not be longer than sessions.absolute_timeout')
    }
  },
})

/** Provider groups to roles, shared by auth.oidc and auth.jwt_bearer. */
const roleMapping = {
  roles_claim: optional(nullable(claimPath()), null,
    'Dotted path into the claims to an array (or string) of group names, e.g. groups or realm_access.roles.', 'none'),
  role_map: optional(map(str('group name'), list(reference('role', roleName())), { entry: 'Roles given to holders of this group.' }), {},
    'Groups to roles; the user\'s roles are default_roles plus the mapped roles (jwt_bearer: the mapped roles only).'),
}

const oidcProvider = obj({
  name: required(unique('OIDC provider name', name('provider name')), 'Shown on the login page and used in /auth/oidc/<name>/start.'),
  issuer: required(issuerUrl(), 'Issuer URL, https unless its host is loopback; discovery starts from it.'),
  client_id: required(str(), 'Client ID registered with the provider.'),
  client_secret: required(str(), 'Client secret registered with the provider; best taken from the environment.'),
  scopes: optional(list(scope(), { min: 1 }), ['openid', 'email', 'profile'], 'Scopes requested; must include openid.'),
  allowed_email_domains: optional(nullable(list(emailDomain(), { min: 1 })), null,
    'Email domains allowed to sign in (exact, case-insensitive, no subdomains).', 'any domain'),
  create_users: optional(bool(), false, 'Whether a first sign-in creates a local user with default_roles.'),
  link_existing_users: optional(bool(), false, 'Whether a first sign-in may attach to the local user with the same verified email.'),
  trust_unverified_email: optional(bool(), false, 'Whether to accept a token without an email_verified claim.'),
  ...roleMapping,
  allowed_groups: optional(nullable(list(str('group name'), { min: 1 })), null,
    'Groups (from roles_claim) of which the user must hold one to sign in.', 'any group'),
  refresh_interval: optional(nullable(duration({ min: SECOND, max: MAX_TIMER })), null,
    "How often a session re-checks the user with the provider's refresh token; a refusal ends the session.", 'never'),
  provider_logout: optional(bool(), false, "Whether logout also ends the provider's session (RP-initiated logout)."),
}, {
  type: 'OIDC provider',
  check(parts, report) {
    if (parts.scopes !== undefined && !parts.scopes.includes('openid')) report('scopes', 'must include openid')
    if (parts.allowed_groups != null && parts.roles_claim == null) report('allowed_groups', 'needs roles_claim, the claim the groups are read from')
    if (parts.role_map !== undefined && Object.keys(parts.role_map).length > 0 && parts.roles_claim == null) {
      report('role_map', 'needs roles_claim, the claim the groups are read from')
    }
  },
})

const jwtIssuer = obj({
  issuer: required(issuerUrl(), 'Issuer URL, https unless its host is loopback; its JWKS is discovered from it.'),
  audience: required(str(), 'The aud the tokens must carry.'),
  name: required(unique('JWT issuer name', name('issuer name')), 'Used in X-Auth-User-Id as <name>|<sub>.'),
  ...roleMapping,
}, {
  type: 'JWT issuer',
  check(parts, report) {
    if (parts.role_map !== undefined && Object.keys(parts.role_map).length > 0 && parts.roles_claim == null) {
      report('role_map', 'needs roles_claim, the claim the groups are read from')
    }
  },
})

const auth = obj({
  registration: optional(oneOf(['open', 'closed'] as const), 'open', 'open lets anyone register; closed lets only admins create users.'),
  email_verification: optional(oneOf(['off', 'required'] as const), 'off',
    'required: users who registered themselves sign in only after following the link mailed to them (needs email).'),
  password: optional(obj({
    min_length: optional(int({ min: 8, max: 128 }), 15, 'Shortest password accepted (passwords over 128 characters are always refused).'),
    require_classes: optional(bool(), false, 'Whether passwords need an upper-case letter, a lower-case letter and a digit.'),
  }), {}, 'Password rules.'),
  argon2: optional(obj({
    memory_kib: optional(int({ min: 8192, max: 4 * 1024 * 1024 }), 19456, 'Memory per hash, in KiB.'),
    time_cost: optional(int({ min: 1, max: 100 }), 2, 'Passes over the memory per hash.'),
    parallelism: optional(int({ min: 1, max: 16 }), 1, 'Lanes per hash.'),
  }), {}, 'Argon2id parameters for password hashes.'),
  lockout: optional(obj({
    max_failures: optional(int({ min: 1 }), 5, 'Failed logins for one account that lock it.'),
    window: optional(duration(), '15m', 'Window the failures are counted in, and how long the lockout lasts.'),
  }), {}, 'Per-account lockout after repeated failed logins (for known and unknown accounts alike).'),
  login_rate_limit: optional(obj({
    max: optional(int({ min: 1 }), 30, 'Attempts allowed per IP in one window.'),
    window: optional(duration(), '1m', 'Length of the window.'),
  }), {}, 'Per-IP limit on login, register, password reset, verification emails and /auth/oidc/*.'),
  mfa: optional(obj({
    issuer_name: optional(str('issuer name'), 'Gatehouse', 'Name authenticator apps show next to the account (the TOTP issuer).'),
    required_roles: optional(list(reference('role', roleName())), [],
      'Users holding one of these roles must enrol a second factor before their sessions and PATs reach anything but /auth/account, the MFA enrolment endpoints and logout.'),
    passkey_login: optional(bool(), true, 'Whether a passkey alone may sign in (amr ["hwk","user"]).'),
  }), {}, 'Second factors: TOTP, passkeys and recovery codes.'),
  oidc: optional(list(oidcProvider), [], 'OpenID Connect providers offered on the login page.'),
  jwt_bearer: optional(list(jwtIssuer), [], 'Issuers whose access tokens are accepted as Authorization: Bearer credentials.'),
})

const email = obj({
  smtp: required(smtpUrl(), 'smtp:// (STARTTLS when offered) or smtps:// URL of the mail server, or log to write messages to the log (development).'),
  from: optional(str('sender'), 'Gatehouse <no-reply@example.com>', 'Sender of the messages.'),
}, { type: 'email settings' })

const healthCheck = obj({
  path: optional(probePath(), '/healthz', 'Path probed on each server with GET; a 2xx or 3xx answer is a success.'),
  interval: optional(duration({ min: 100, max: HOUR }), '10s', 'Time between two probes of one server.'),
  timeout: optional(duration({ min: 10, max: HOUR }), '2s', 'Longest wait for a probe\'s answer; longer is a failure.'),
  unhealthy_after: optional(int({ min: 1, max: 100 }), 3, 'Failed probes in a row that take a server out of rotation.'),
  healthy_after: optional(int({ min: 1, max: 100 }), 2, 'Successful probes in a row that bring it back.'),
}, {
  type: 'health check',
  check(parts, report) {
    if (parts.timeout !== undefined && parts.interval !== undefined && parts.timeout > parts.interval) report('timeout', 'must not be longer than interval')
  },
})

const routeCors = obj({
  origins: required(list(origin(), { min: 1 }), 'Exact origins allowed to call the route with credentials; never "*".'),
  methods: optional(list(method(), { min: 1 }), ['GET', 'POST'], 'Methods a preflight may ask for.'),
  headers: optional(list(headerName()), ['content-type', 'authorization'], 'Request headers a preflight may ask for.'),
  max_age: optional(duration({ min: 0, max: DAY }), '10m', 'How long a browser may cache a preflight answer.'),
}, { type: 'CORS settings' })

const userSecret = obj({
  header: required(secretHeaderName(),
    'The request header the secret is sent in; always stripped from client requests (on every route). Not a hop-by-hop header, Authorization, Cookie, Host, a Content- header or one of the gateway\'s X-Auth-* / X-Forwarded-* headers.'),
}, { type: 'user secret settings' })

const route = obj({
  name: required(unique('route name', name('route name')), 'Route name: the metric label and the audience of its assertions.'),
  host: optional(nullable(routeHost()), null,
    'Exact host (case-insensitive, port ignored), or *.example.com for one label in front of a domain.', 'any host'),
  match: required(pathPrefix(), 'Path prefix, matched by whole segments (/app matches /app and /app/x, never /apple).'),
  methods: optional(nullable(list(method(), { min: 1 })), null, 'Methods the route accepts.', 'all methods'),
  upstream: optional(nullable(oneOrList(upstreamUrl(), { min: 1, check: checkServers })), null,
    'http(s) URL requests are proxied to, or a list of the servers of one app (all with one scheme and base path); omitted, the route exists only for forward auth (GET /auth/verify).',
    'none (a forward-auth-only route)'),
  load_balancing: optional(oneOf(['round_robin', 'least_request'] as const), 'round_robin',
    'How requests are spread over the servers: in turn, or to the one with the fewest requests in flight.'),
  health_check: optional(nullable(healthCheck), null,
    'Active health checks of each server; a server failing unhealthy_after probes in a row leaves the rotation.', 'none'),
  preserve_host: optional(bool(), false, 'Whether the upstream gets the client\'s Host (WebSocket handshakes included); false: its own host. X-Forwarded-Host is always the client\'s.'),
  auth: optional(oneOf(['required', 'optional', 'public'] as const), 'required',
    'required needs a credential; optional uses one when present; public attempts no authentication.'),
  permissions: optional(list(permission()), [], 'Permissions the user must all hold.'),
  rate_limit: optional(nullable(textOrMapping(reference('rate-limit policy', name('policy name')), rateLimitPolicy,
    'a policy name or { max, window, key }')), null, 'A policy name from rate_limits, or an inline { max, window, key }.', 'none'),
  strip_prefix: optional(bool(), false, 'Whether the match prefix is removed from the path the upstream sees.'),
  timeout: optional(duration({ max: MAX_TIMER }), '30s', 'Longest wait for the upstream to answer before a 504.'),
  csrf: optional(bool(), true, 'Whether cookie-authenticated unsafe methods need a same-origin Origin or Referer.'),
  mfa: optional(oneOf(['optional', 'required'] as const), 'optional',
    'required: sessions need a second factor (403 GH_MFA_REQUIRED; a browser navigation goes to the step-up page); a PAT only when created by such a session.'),
  websocket: optional(bool(), false, 'Whether a GET with Upgrade: websocket is proxied (after the same checks) and tunnelled.'),
  cors: optional(nullable(routeCors), null,
    'Preflights answered by the gateway and CORS headers for browser apps on the listed origins; they also pass the CSRF check.', 'none'),
  user_secret: optional(nullable(userSecret), null,
    'Injects each user\'s own stored secret (set at /auth/me/secrets or on the account page) into this route\'s upstream requests, for that user\'s session or PAT only.', 'none'),
}, {
  type: 'route',
  check(parts, report) {
    if (parts.user_secret == null) return
    // A secret goes only to the upstream it was stored for, only with its owner's identity.
    if (parts.upstream === null) report('user_secret', 'needs an upstream: forward auth never hands user secrets to the proxy in front')
    if (parts.auth === 'public') report('user_secret', 'needs auth: required or optional: a public route has no user to take the secret of')
  },
})

const forwardAuth = obj({
  trusted: optional(list(cidr()), ['127.0.0.1/32'], 'TCP peers (the proxy in front) allowed to call GET /auth/verify; others get 403.'),
  headers: optional(oneOf(['forwarded', 'original'] as const), 'forwarded',
    'Which headers describe the original request: forwarded (X-Forwarded-Method, -Proto, -Host, -Uri: Traefik, Caddy) or original (X-Original-Method, X-Original-URL: nginx).'),
}, { type: 'forward-auth settings' })

const metrics = obj({
  host: optional(host(), '127.0.0.1', 'Address of the metrics listener; /metrics is never served on the public port.'),
  port: optional(port(), 9464, 'Port of the metrics listener.'),
})

const logging = obj({
  level: optional(oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const), 'info', 'Least severe level written.'),
  format: optional(oneOf(['json', 'pretty'] as const), 'json',
    'json writes one JSON object per line (ISO time, level by name); pretty writes human-readable lines for a terminal.'),
  slow_request_threshold: optional(duration(), '5s', 'Requests slower than this log a warning.'),
})

const document = obj({
  server: optional(server, {}, 'The public listener.'),
  storage: optional(storage, {}, 'Where users, tokens and sessions are kept.'),
  identity: optional(identity, {}, 'The signed identity assertions sent to upstreams.'),
  sessions: optional(sessions, {}, 'Browser and bearer session lifetimes.'),
  auth: optional(auth, {}, 'Local accounts, password hashing, lockout and OIDC sign-in.'),
  email: optional(nullable(email), null, 'Outgoing email, for password reset and email verification.', 'none (no email is sent)'),
  roles: optional(map(roleName(), list(permission()), { entry: 'Permissions the role grants; "*" grants all.', defines: 'role' }),
    DEFAULT_ROLES, 'Roles and the permissions they grant.'),
  default_roles: derived(list(reference('role', roleName())), (siblings) => (siblings.roles == null ? ['viewer'] : []),
    '[viewer] when roles is omitted, else []', 'Roles given to new users.'),
  rate_limits: optional(map(name('policy name'), rateLimitPolicy, { entry: 'A named policy routes can refer to.', defines: 'rate-limit policy' }),
    {}, 'Named rate-limit policies.'),
  routes: optional(list(route), [], 'Upstream routes: those naming the host exactly, then by wildcard, then those without a host; within them the longest matching prefix wins.'),
  forward_auth: optional(nullable(forwardAuth), null, 'GET /auth/verify, for a proxy in front that asks whether a request may pass.', 'none (GET /auth/verify is 404)'),
  metrics: optional(metrics, {}, 'The Prometheus metrics listener.'),
  logging: optional(logging, {}, 'Log output.'),
}, {
  check(parts, report) {
    checkListeners(parts, report)
    checkCookieDomain(parts, report)
    if (parts.auth?.email_verification === 'required' && parts.email === null) {
      report('auth', 'required needs an email section to send the links with', 'email_verification')
    }
    if (parts.routes === undefined) return
    checkRouteConflicts(parts.routes, (message, ...below) => report('routes', message, ...below))
    if (parts.roles !== undefined) {
      checkRoutePermissions(parts.routes, parts.roles, (message, ...below) => report('routes', message, ...below))
    }
  },
})

/** gateway.yml's schema; its output is GatewayConfig without `source`. */
export const gatewaySchema: Node<Omit<GatewayConfig, 'source'>> = transform(document, (parsed) => ({
  ...parsed,
  server: { ...parsed.server, public_url: parsed.server.public_url ?? defaultPublicUrl(parsed.server.port, parsed.server.tls !== null) },
  routes: parsed.routes.map((item) => resolveRoute(item, parsed.rate_limits)),
}))

/** The configuration reference: every key, its type, default and description. */
export function describeSchema(): SchemaEntry[] {
  return gatewaySchema.describe?.('') ?? []
}

function defaultPublicUrl(listenPort: number, tls: boolean): string {
  return new URL(`${tls ? 'https' : 'http'}://localhost:${listenPort}`).origin
}

type ParsedRoute = Omit<RouteConfig, 'rate_limit' | 'rate_limit_name' | 'upstream' | 'servers'> & {
  rate_limit: string | RouteConfig['rate_limit']
  upstream: readonly string[] | null
}

function resolveRoute(parsed: ParsedRoute, policies: GatewayConfig['rate_limits']): RouteConfig {
  const limit = parsed.rate_limit
  return {
    name: parsed.name,
    host: parsed.host,
    match: parsed.match,
    methods: parsed.methods === null ? null : [...new Set(parsed.methods)],
    // A list is never empty here: `min: 1` is checked before a config is built.
    upstream: parsed.upstream?.[0] ?? null,
    servers: parsed.upstream ?? [],
    load_balancing: parsed.load_balancing,
    health_check: parsed.health_check,
    preserve_host: parsed.preserve_host,
    auth: parsed.auth,
    permissions: parsed.permissions,
    // A named policy is always defined here: undefined names are reported before a config is built.
    rate_limit: typeof limit === 'string' ? policies[limit] ?? null : limit,
    rate_limit_name: typeof limit === 'string' ? limit : null,
    strip_prefix: parsed.strip_prefix,
    timeout: parsed.timeout,
    csrf: parsed.csrf,
    mfa: parsed.mfa,
    websocket: parsed.websocket,
    cors: parsed.cors === null ? null : { ...parsed.cors, methods: [...new Set(parsed.cors.methods)] },
    user_secret: parsed.user_secret,
  }
}

/** Is `host` the domain itself or a name under it? */
function isUnderDomain(host: string, domain: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, '')
  return name === domain || name.endsWith(`.${domain}`)
}

interface CookieDomainParts {
  server?: { public_url: string | null; port: number; tls: unknown }
  sessions?: { cookie_domain: string | null }
  forward_auth?: unknown
  routes?: readonly { host: string | null; upstream: readonly string[] | null }[]
}

/**
 * The servers of one route are one app: the same scheme and base path on every server (the
 * upstream URL, the assertion's htu and user secrets must not depend on the server picked).
 */
function checkServers(servers: ReadonlyArray<string | undefined>, report: (index: number, message: string) => void): void {
  const first = servers[0] === undefined ? null : new URL(servers[0])
  const seen = new Set<string>()
  servers.forEach((server, index) => {
    if (server === undefined) return
    const url = new URL(server)
    if (seen.has(url.host)) report(index, `${url.host} is listed twice`)
    seen.add(url.host)
    if (first === null || index === 0) return
    if (url.protocol !== first.protocol) report(index, `must use the scheme of upstream[0] (${first.protocol.slice(0, -1)})`)
    else if (url.pathname.replace(/\/$/, '') !== first.pathname.replace(/\/$/, '')) {
      report(index, `must have the base path of upstream[0] (${first.pathname})`)
    }
  })
}

/**
 * SPEC §3: `cookie_domain` must cover `public_url`'s host; forward auth for a host other than
 * `public_url`'s needs it (the session cookie must reach both); a route without `upstream` is
 * there only for forward auth.
 */
function checkCookieDomain(parts: CookieDomainParts, report: (key: 'sessions' | 'routes', message: string, ...below: (string | number)[]) => void): void {
  const domain = parts.sessions?.cookie_domain ?? null
  const publicUrl = parts.server?.public_url ?? (parts.server ? defaultPublicUrl(parts.server.port, parts.server.tls !== null) : null)
  const publicHost = publicUrl === null ? null : new URL(publicUrl).hostname
  if (domain !== null && publicHost !== null && !isUnderDomain(publicHost, domain)) {
    report('sessions', `must cover server.public_url's host ${publicHost}`, 'cookie_domain')
  }
  const routes = parts.routes ?? []
  routes.forEach((route, index) => {
    if (route.upstream === null && parts.forward_auth == null) {
      report('routes', 'a route without upstream exists only for forward auth: add an upstream or a forward_auth section', index, 'upstream')
    }
    if (parts.forward_auth == null || route.host === null || publicHost === null) return
    const bare = route.host.replace(/^\*\./, '')
    if (bare === publicHost) return
    if (domain === null) {
      report('routes', `forward auth for ${route.host}, another host than server.public_url's, needs sessions.cookie_domain covering it`, index, 'host')
    } else if (!isUnderDomain(bare, domain)) {
      report('routes', `is not under sessions.cookie_domain ${domain}: the session cookie would not reach it`, index, 'host')
    }
  })
}

interface Listener { readonly key: 'server' | 'metrics'; readonly below: string; readonly host: string; readonly port: number | null }
interface ListenerParts {
  server?: { host: string; port: number; redirect_http_port: number | null }
  metrics?: { host: string; port: number }
}

/** Two listeners of this process on one port conflict when their addresses overlap. */
function checkListeners(parts: ListenerParts, report: (key: Listener['key'], message: string, ...below: string[]) => void): void {
  if (parts.server === undefined || parts.metrics === undefined) return
  const listeners: Listener[] = [
    { key: 'server', below: 'port', host: parts.server.host, port: parts.server.port },
    { key: 'server', below: 'redirect_http_port', host: parts.server.host, port: parts.server.redirect_http_port },
    { key: 'metrics', below: 'port', host: parts.metrics.host, port: parts.metrics.port },
  ]
  const wildcard = (address: string): boolean => address === '0.0.0.0' || address === '::'
  listeners.forEach((later, index) => {
    const earlier = listeners.slice(0, index).find((other) => other.port === later.port && later.port !== null && later.port !== 0 &&
      (other.host === later.host || wildcard(other.host) || wildcard(later.host)))
    if (earlier !== undefined) report(later.key, `port ${later.port} is already used by ${earlier.key}.${earlier.below}`, later.below)
  })
}
