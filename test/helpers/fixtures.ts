/** Plain values the pure-core tests build on: a route as config yields it, an identity. */
import type { RouteConfig } from '../../src/config/types.js'
import type { Identity } from '../../src/core/identity.js'

export const ALICE_ID = '11111111-1111-4111-8111-111111111111'

/** A route with every field config validation would fill in, as defaults. */
export function routeConfig(name: string, match: string, overrides: Partial<RouteConfig> = {}): RouteConfig {
  return {
    name,
    match,
    host: null,
    methods: null,
    upstream: 'http://127.0.0.1:9001',
    servers: [overrides.upstream ?? 'http://127.0.0.1:9001'],
    load_balancing: 'round_robin',
    health_check: null,
    preserve_host: false,
    auth: 'required',
    permissions: [],
    rate_limit: null,
    rate_limit_name: null,
    strip_prefix: false,
    timeout: 30_000,
    csrf: true,
    mfa: 'optional',
    websocket: false,
    cors: null,
    ...overrides,
  }
}

/** Alice, signed in with a browser session; override what a test is about. */
export function testIdentity(overrides: Partial<Identity> = {}, user: Partial<Identity['user']> = {}): Identity {
  return {
    user: {
      id: ALICE_ID,
      email: 'alice@example.com',
      name: 'Alice',
      roles: ['viewer', 'operator'],
      email_verified: true,
      created_at: '2026-01-01T00:00:00.000Z',
      ...user,
    },
    permissions: ['app:read', 'app:write'],
    method: 'session',
    amr: ['pwd'],
    secondFactor: false,
    session: null,
    via: 'cookie',
    expiresAt: null,
    tokenId: null,
    explicitPermissions: false,
    ...overrides,
  }
}
