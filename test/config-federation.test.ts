/**
 * The federation keys of gateway.yml (SPEC §2): roles_claim, role_map, allowed_groups,
 * refresh_interval, provider_logout, jwt_bearer, sessions.refresh_tokens and refresh_ttl,
 * identity.data_key_file: defaults, and the problems check-config reports for them.
 */
import t from 'tap'
import { ConfigError, parseConfig, type GatewayConfig } from '../src/config/index.js'

const SOURCE = '/etc/gatehouse/gateway.yml'
const OIDC = { name: 'corp', issuer: 'https://idp.example.com', client_id: 'gatehouse', client_secret: 'secret' }
const JWT = { issuer: 'https://keycloak.example.com/realms/main', audience: 'gatehouse', name: 'keycloak' }

function parse(document: Record<string, unknown>): GatewayConfig {
  return parseConfig(JSON.stringify(document), { source: SOURCE, env: {} })
}

function problemsOf(document: Record<string, unknown>): readonly string[] {
  try {
    parse(document)
  } catch (error) {
    if (error instanceof ConfigError) return error.problems
    throw error
  }
  return []
}

t.test('defaults: every federation feature is off', async (t) => {
  const config = parse({ auth: { oidc: [OIDC] } })
  const [provider] = config.auth.oidc
  t.equal(provider?.roles_claim, null)
  t.same(provider?.role_map, {})
  t.equal(provider?.allowed_groups, null)
  t.equal(provider?.refresh_interval, null)
  t.equal(provider?.provider_logout, false)
  t.same(config.auth.jwt_bearer, [])
  t.equal(config.sessions.refresh_tokens, false)
  t.equal(config.sessions.refresh_ttl, 30 * 24 * 3600_000)
  t.equal(config.identity.data_key_file, '/etc/gatehouse/certs/data-keys.json')
})

t.test('a full federation section parses', async (t) => {
  const config = parse({
    sessions: { refresh_tokens: true, refresh_ttl: '7d' },
    auth: {
      oidc: [{ ...OIDC, roles_claim: 'groups', role_map: { 'gatehouse-admins': ['admin'], staff: ['operator'] }, allowed_groups: ['staff'], refresh_interval: '15m', provider_logout: true }],
      jwt_bearer: [{ ...JWT, roles_claim: 'realm_access.roles', role_map: { 'api-writer': ['operator'] } }],
    },
  })
  t.same(config.auth.oidc[0]?.role_map, { 'gatehouse-admins': ['admin'], staff: ['operator'] })
  t.equal(config.auth.oidc[0]?.refresh_interval, 15 * 60_000)
  t.same(config.auth.jwt_bearer[0], { ...JWT, roles_claim: 'realm_access.roles', role_map: { 'api-writer': ['operator'] } })
  t.equal(config.sessions.refresh_ttl, 7 * 24 * 3600_000)
})

t.test('check-config refuses', async (t) => {
  t.match(problemsOf({ auth: { oidc: [{ ...OIDC, roles_claim: 'groups', role_map: { staff: ['operatr'] } }] } }), [
    /^auth\.oidc\[0\]\.role_map\.staff\[0\]: role "operatr" is not defined in roles; did you mean operator\?$/,
  ], 'a role_map naming an unknown role (oidc)')
  t.match(problemsOf({ auth: { jwt_bearer: [{ ...JWT, roles_claim: 'roles', role_map: { w: ['nope'] } }] } }), [/^auth\.jwt_bearer\[0\]\.role_map\.w\[0\]: role "nope" is not defined/],
    'a role_map naming an unknown role (jwt_bearer)')
  t.match(problemsOf({ auth: { oidc: [{ ...OIDC, allowed_groups: ['staff'] }] } }), [/^auth\.oidc\[0\]\.allowed_groups: needs roles_claim/])
  t.match(problemsOf({ auth: { oidc: [{ ...OIDC, role_map: { staff: ['operator'] } }] } }), [/^auth\.oidc\[0\]\.role_map: needs roles_claim/])
  t.match(problemsOf({ auth: { oidc: [{ ...OIDC, roles_claim: 'a..b' }] } }), [/^auth\.oidc\[0\]\.roles_claim: expected a claim name or dotted path/])
  t.match(problemsOf({ auth: { jwt_bearer: [{ issuer: JWT.issuer, audience: 'x' }] } }), [/^auth\.jwt_bearer\[0\]\.name: required key is missing/])
  t.match(problemsOf({ auth: { jwt_bearer: [JWT, { ...JWT, issuer: 'https://other.example.com' }] } }), [/^auth\.jwt_bearer\[1\]\.name: /], 'two issuers with one name')
  t.match(problemsOf({ auth: { jwt_bearer: [{ ...JWT, issuer: 'http://keycloak.example.com' }] } }), [/^auth\.jwt_bearer\[0\]\.issuer: must be https/])
  t.match(problemsOf({ sessions: { refresh_ttl: 'forever' } }), [/^sessions\.refresh_ttl: expected a duration/])
})
