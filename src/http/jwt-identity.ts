/**
 * The Identity of a `jwt_bearer` token (SPEC §3): no local user, `X-Auth-User-Id`
 * `<name>|<sub>`, the mapped roles only, `X-Auth-Method: jwt`, `amr` `["jwt"]`.
 */
import type { Identity } from '../core/identity.js'
import { permissionsFor } from '../core/permissions.js'
import { isGatehouseError } from '../errors.js'
import type { JwtBearer } from '../oidc/jwt-bearer.js'

export async function jwtIdentity(
  verifier: JwtBearer,
  token: string,
  roles: Readonly<Record<string, readonly string[]>>,
  onAttempt: (method: 'jwt', result: 'success' | 'failure') => void,
): Promise<Identity> {
  let verified
  try {
    verified = await verifier.verify(token)
  } catch (err) {
    if (isGatehouseError(err) && err.statusCode === 401) onAttempt('jwt', 'failure')
    throw err
  }
  onAttempt('jwt', 'success')
  return {
    // No local user: its email is the issuer's word, never a verification of ours.
    user: { id: verified.id, email: verified.email ?? '', name: null, roles: verified.roles, created_at: '', email_verified: false },
    permissions: permissionsFor(verified.roles, roles),
    method: 'jwt',
    amr: ['jwt'],
    secondFactor: false,
    session: null,
    via: 'header',
    expiresAt: verified.expiresAt,
    tokenId: null,
    explicitPermissions: false,
  }
}
