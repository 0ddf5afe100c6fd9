/**
 * The second-factor rules of the pipeline (SPEC §3), table-tested without a server: route
 * `mfa: required` for sessions, PATs and `jwt_bearer` tokens, the enrolment gate of
 * `auth.mfa.required_roles`, and that nothing is looked up when neither applies (the check
 * stays off the storage for ordinary requests). Also through the Gate, as `gatehouse explain`
 * runs it.
 */
import t from 'tap'
import { explain, secondFactorState, type SecondFactorPolicy } from '../src/core/pipeline/index.js'
import { RouteTable } from '../src/core/route-table.js'
import type { Identity } from '../src/core/identity.js'
import { routeConfig, testIdentity } from './helpers/fixtures.js'

function policy(has: boolean, requiredRoles: string[] = []): SecondFactorPolicy & { lookups: number } {
  const counted = {
    requiredRoles,
    lookups: 0,
    async hasSecondFactor() {
      counted.lookups++
      return has
    },
  }
  return counted
}

const session = (secondFactor: boolean, roles = ['viewer']): Identity =>
  testIdentity({ method: 'session', amr: secondFactor ? ['pwd', 'otp'] : ['pwd'], secondFactor, via: 'header' }, { roles })
const pat = (secondFactor: boolean, roles = ['viewer']): Identity =>
  testIdentity({ method: 'pat', amr: ['pat'], secondFactor, via: 'header' }, { roles })
const jwt = (roles = ['admin']): Identity => testIdentity({ method: 'jwt', amr: ['jwt'], secondFactor: false, via: 'header' }, { roles })

t.test('route mfa: required', async (t) => {
  const cases: Array<[string, Identity, boolean, boolean]> = [
    // what, identity, the user has a factor now, satisfies the route
    ['a password-only session', session(false), true, false],
    ['a session with a second factor', session(true), true, true],
    ['a PAT made by a password-only session', pat(false), true, false],
    ['a PAT made by a session with a second factor', pat(true), true, true],
    ['such a PAT whose user has no factor any more', pat(true), false, false],
    ['a jwt_bearer token, never', jwt(), true, false],
  ]
  for (const [what, identity, has, satisfies] of cases) {
    const state = await secondFactorState(identity, true, policy(has))
    t.equal(state.satisfiesRoute, satisfies, what)
    t.equal(state.enrolmentRequired, false, `${what}: no required role, no enrolment`)
  }
  t.same(await secondFactorState(null, true, policy(false)), { enrolmentRequired: false, satisfiesRoute: true }, 'no identity: the policy decides (optional routes)')
})

t.test('auth.mfa.required_roles: sessions and PATs of such users without a factor must enrol', async (t) => {
  const gate = (has: boolean) => policy(has, ['admin'])
  t.equal((await secondFactorState(session(false, ['admin']), false, gate(false))).enrolmentRequired, true, 'session, no factor')
  t.equal((await secondFactorState(pat(false, ['admin']), false, gate(false))).enrolmentRequired, true, 'PAT, no factor')
  t.equal((await secondFactorState(session(true, ['admin']), false, gate(false))).enrolmentRequired, true, 'a session with otp whose user removed the factor')
  t.equal((await secondFactorState(session(false, ['admin']), false, gate(true))).enrolmentRequired, false, 'enrolled')
  t.equal((await secondFactorState(session(false, ['viewer']), false, gate(false))).enrolmentRequired, false, 'another role')
  t.equal((await secondFactorState(jwt(['admin']), false, gate(false))).enrolmentRequired, false, 'a jwt_bearer identity has no local user to enrol')
})

t.test('nothing is looked up for a route without mfa: required and a user without a required role', async (t) => {
  for (const identity of [session(false), session(true), pat(true), jwt()]) {
    const counted = policy(true, ['admin'])
    await secondFactorState(identity, false, counted)
    t.equal(counted.lookups, 0, `${identity.method}: no lookup`)
  }
  const sessionOnRoute = policy(true)
  await secondFactorState(session(false), true, sessionOnRoute)
  t.equal(sessionOnRoute.lookups, 0, 'a session on an mfa route: its amr answers')
  const patOnRoute = policy(true)
  await secondFactorState(pat(true), true, patOnRoute)
  t.equal(patOnRoute.lookups, 1, 'a PAT on an mfa route: its user must still have a factor')
})

t.test('through the pipeline, as gatehouse explain runs it', async (t) => {
  const table = new RouteTable([routeConfig('secure', '/secure', { mfa: 'required' }), routeConfig('plain', '/plain')])
  const answer = async (path: string, identity: Identity, has = false, requiredRoles: string[] = []) =>
    (await explain(table, path, 'GET', identity, { secondFactors: policy(has, requiredRoles) })).answer
  t.match(await answer('/secure/x', session(false)), { status: 403, code: 'GH_MFA_REQUIRED' })
  t.match(await answer('/secure/x', session(true)), { status: null, code: null })
  t.match(await answer('/plain/x', session(false)), { status: null, code: null })
  t.match(await answer('/plain/x', session(false, ['admin']), false, ['admin']), { status: 403, code: 'GH_MFA_ENROLMENT_REQUIRED' })
  t.match(await answer('/secure/x', session(false, ['admin']), false, ['admin']), { status: 403, code: 'GH_MFA_ENROLMENT_REQUIRED' }, 'enrolment first')
  const noPermission = testIdentity({ permissions: [], amr: ['pwd'], secondFactor: false, via: 'header' })
  const forbidden = await explain(new RouteTable([routeConfig('secure', '/secure', { mfa: 'required', permissions: ['app:read'] })]), '/secure', 'GET', noPermission, { secondFactors: policy(false) })
  t.match(forbidden.answer, { status: 403, code: 'GH_FORBIDDEN' }, 'a missing permission is said first')
})
