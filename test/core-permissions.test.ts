import t from 'tap'
import { hasPermission, permissionsFor } from '../src/core/permissions.js'

const roles = {
  viewer: ['app:read'],
  operator: ['app:write', 'app:read'],
  admin: ['*'],
  empty: [],
}

t.test('permissionsFor', async (t) => {
  const cases: Array<[string[], string[]]> = [
    [[], []],
    [['viewer'], ['app:read']],
    [['operator', 'viewer'], ['app:read', 'app:write']],
    [['viewer', 'viewer'], ['app:read']],
    [['admin', 'viewer'], ['*', 'app:read']],
    [['ghost'], []],
    [['empty', 'ghost', 'viewer'], ['app:read']],
    [['constructor', '__proto__', 'toString'], []],
  ]
  for (const [granted, expected] of cases) {
    t.same(permissionsFor(granted, roles), expected, granted.join(',') || '(none)')
  }
})

t.test('hasPermission', async (t) => {
  t.ok(hasPermission(['app:read'], 'app:read'))
  t.notOk(hasPermission(['app:read'], 'app:write'))
  t.notOk(hasPermission([], 'app:read'))
  t.ok(hasPermission(['*'], 'users:manage'))
  t.ok(hasPermission(['app:read', '*'], 'anything'))
  t.notOk(hasPermission(['app:*'], 'app:read'), 'only the bare * is a wildcard')
})
