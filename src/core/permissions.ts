/** The permission that grants every other. */
export const ALL_PERMISSIONS = '*'
/** The permission the gateway's own admin API needs (SPEC §5). */
export const MANAGE_USERS = 'users:manage'

/**
 * Every permission a configuration gives meaning to: named by a role, needed by a route, or
 * the gateway's own. A name outside it is a typo that nothing would ever check.
 */
export function knownPermissions(config: {
  roles: Readonly<Record<string, readonly string[]>>
  routes: readonly { permissions: readonly string[] }[]
}): Set<string> {
  return new Set([MANAGE_USERS, ALL_PERMISSIONS, ...Object.values(config.roles).flat(), ...config.routes.flatMap((r) => r.permissions)])
}

/** The permissions granted by `roles` under `roleMap`, sorted and unique; unknown roles grant nothing. */
export function permissionsFor(roles: readonly string[], roleMap: Readonly<Record<string, readonly string[]>>): string[] {
  const granted = new Set<string>()
  for (const role of roles) {
    if (!Object.hasOwn(roleMap, role)) continue
    for (const permission of roleMap[role] ?? []) granted.add(permission)
  }
  return [...granted].sort()
}

/** Whether `granted` includes `needed`, or `*`. */
export function hasPermission(granted: readonly string[], needed: string): boolean {
  return granted.includes(ALL_PERMISSIONS) || granted.includes(needed)
}

/**
 * Whether a holder of `granted` may give others `role` (SPEC §5: the admin API never lets
 * anyone gain permissions): only when it holds every permission of the role itself, or `*`.
 * An unknown role grants nothing and is refused elsewhere.
 */
export function mayGrantRole(
  granted: readonly string[],
  role: string,
  roleMap: Readonly<Record<string, readonly string[]>>,
): boolean {
  if (granted.includes(ALL_PERMISSIONS)) return true
  const permissions = Object.hasOwn(roleMap, role) ? (roleMap[role] ?? []) : []
  return permissions.every((permission) => permission !== ALL_PERMISSIONS && granted.includes(permission))
}
