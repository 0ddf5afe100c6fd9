/**
 * Roles from a provider's claims (SPEC §2 `roles_claim`, `role_map`, `allowed_groups`): the
 * groups a token names at a dotted path, the roles `role_map` gives them, and whether one of
 * the allowed groups is held. Pure functions, shared by OIDC sign-in and `jwt_bearer`.
 */

/** The parts of an `auth.oidc` or `auth.jwt_bearer` entry that map groups to roles. */
export interface RoleMapping {
  /** Dotted path into the claims (`groups`, `realm_access.roles`); null: no groups. */
  roles_claim: string | null
  role_map: Readonly<Record<string, readonly string[]>>
}

/** Groups read from one token at most; a token naming more is cut, never trusted to be small. */
export const MAX_GROUPS = 1000
const MAX_GROUP_LENGTH = 256

/**
 * The value at `path` (dot-separated) inside `claims`, following own properties of plain
 * objects only (a claim named `__proto__` or `constructor` leads nowhere).
 */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  let value: unknown = claims
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

/**
 * The group names the claims hold at `roles_claim`: an array of strings (other items are
 * ignored) or one string (some providers send a single group that way); otherwise none.
 */
export function groupsOf(claims: Readonly<Record<string, unknown>>, rolesClaim: string | null): string[] {
  if (rolesClaim === null) return []
  const value = claimAt(claims, rolesClaim)
  const items = typeof value === 'string' ? [value] : Array.isArray(value) ? value.slice(0, MAX_GROUPS) : []
  const groups = items.filter((item): item is string => typeof item === 'string' && item.length > 0 && item.length <= MAX_GROUP_LENGTH)
  return [...new Set(groups)]
}

/** The roles `role_map` gives these groups, deduplicated, in the order of the map. */
export function mappedRoles(groups: readonly string[], roleMap: RoleMapping['role_map']): string[] {
  const held = new Set(groups)
  const roles = Object.entries(roleMap).flatMap(([group, mapped]) => (held.has(group) ? mapped : []))
  return [...new Set(roles)]
}

/** `default_roles` plus the mapped roles: what an OIDC user's roles are set to at each sign-in. */
export function rolesFor(defaultRoles: readonly string[], groups: readonly string[], roleMap: RoleMapping['role_map']): string[] {
  return [...new Set([...defaultRoles, ...mappedRoles(groups, roleMap)])]
}

/** True when `allowed` is null (anyone) or one of its groups is held. */
export function holdsAllowedGroup(groups: readonly string[], allowed: readonly string[] | null): boolean {
  return allowed === null || allowed.some((group) => groups.includes(group))
}

/** Whether two role lists hold the same roles, whatever their order. */
export function sameRoles(a: readonly string[], b: readonly string[]): boolean {
  const left = new Set(a)
  const right = new Set(b)
  return left.size === right.size && [...left].every((role) => right.has(role))
}
