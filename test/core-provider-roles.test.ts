/**
 * Provider claims to roles (SPEC §2 roles_claim, role_map, allowed_groups), table-tested
 * without a provider: dotted paths, the shapes groups arrive in, and what is ignored.
 */
import t from 'tap'
import { claimAt, groupsOf, holdsAllowedGroup, mappedRoles, MAX_GROUPS, rolesFor, sameRoles } from '../src/core/provider-roles.js'

t.test('claimAt follows own properties of objects only', async (t) => {
  const claims = { realm_access: { roles: ['a'] }, groups: ['g'], 'dotted.name': 1, list: [{ x: 1 }] }
  t.same(claimAt(claims, 'realm_access.roles'), ['a'])
  t.same(claimAt(claims, 'groups'), ['g'])
  t.equal(claimAt(claims, 'realm_access.missing'), undefined)
  t.equal(claimAt(claims, 'groups.length'), undefined, 'no properties of arrays')
  t.equal(claimAt(claims, 'list.0'), undefined, 'no indexing into arrays')
  t.equal(claimAt(claims, '__proto__'), undefined, 'no prototype')
  t.equal(claimAt(claims, 'realm_access.constructor'), undefined, 'no inherited properties')
})

t.test('groupsOf accepts an array of strings or one string, nothing else', async (t) => {
  const table: Array<[unknown, string[]]> = [
    [['staff', 'admins'], ['staff', 'admins']],
    ['staff', ['staff']],
    [['staff', 7, null, { a: 1 }, '', 'staff'], ['staff']],
    [{ staff: true }, []],
    [42, []],
    [undefined, []],
    [['x'.repeat(257)], []],
  ]
  for (const [value, expected] of table) t.same(groupsOf({ groups: value }, 'groups'), expected, JSON.stringify(value)?.slice(0, 40) ?? 'undefined')
  t.same(groupsOf({ groups: ['a'] }, null), [], 'no roles_claim: no groups')
  t.equal(groupsOf({ groups: Array.from({ length: MAX_GROUPS + 50 }, (_, i) => `g${i}`) }, 'groups').length, MAX_GROUPS, 'bounded')
})

t.test('mapped roles, default roles, allowed groups', async (t) => {
  const map = { 'gatehouse-admins': ['admin'], staff: ['operator'], ops: ['operator', 'viewer'] }
  t.same(mappedRoles(['staff', 'ops', 'other'], map), ['operator', 'viewer'])
  t.same(mappedRoles([], map), [])
  t.same(rolesFor(['viewer'], ['gatehouse-admins'], map), ['viewer', 'admin'])
  t.ok(holdsAllowedGroup([], null), 'no allowed_groups: anyone')
  t.ok(holdsAllowedGroup(['a', 'staff'], ['staff']))
  t.notOk(holdsAllowedGroup(['Staff'], ['staff']), 'exact, case-sensitive')
  t.notOk(holdsAllowedGroup([], ['staff']))
  t.ok(sameRoles(['a', 'b'], ['b', 'a']))
  t.notOk(sameRoles(['a'], ['a', 'b']))
})
