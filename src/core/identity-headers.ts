/**
 * The identity headers an upstream receives for an authenticated request (SPEC §4).
 *
 * Values are never encoded: an upstream reads them as they are, and `gatehouse/verify`
 * compares them with the signed assertion byte for byte. Instead, a value that is not
 * visible ASCII (a role containing a comma, anything with a space, CR, LF or a non-ASCII
 * character) is refused with GH_INTERNAL. Ids, roles (config names without spaces or commas)
 * and normalised emails (ASCII, IDNA domains) never are; one that is means corrupt data, and
 * refusing the request is safer than handing an upstream a header it may split or misread.
 */
import { GatehouseError } from '../errors.js'
import type { Identity } from './identity.js'

const VISIBLE_ASCII = /^[\x21-\x7e]+$/
const ROLE = /^[\x21-\x2b\x2d-\x7e]+$/

/**
 * Lower-case header names to their values. `tokenId` is the PAT's id, sent as
 * `x-auth-token-id` when the identity came from a PAT and left out otherwise.
 */
export function identityHeaders(identity: Identity, assertion: string, tokenId?: string): Record<string, string> {
  const { user } = identity
  for (const role of user.roles) {
    if (!ROLE.test(role)) throw refused('x-auth-roles')
  }
  const headers: Record<string, string> = {
    'x-auth-user-id': checked('x-auth-user-id', user.id),
    'x-auth-roles': user.roles.join(','),
    'x-auth-method': identity.method,
  }
  // A jwt_bearer token without an email claim: no X-Auth-Email at all (SPEC §3).
  if (user.email !== '') headers['x-auth-email'] = checked('x-auth-email', user.email)
  if (identity.method === 'pat' && tokenId !== undefined) headers['x-auth-token-id'] = checked('x-auth-token-id', tokenId)
  headers['x-auth-assertion'] = checked('x-auth-assertion', assertion)
  return headers
}

function checked(name: string, value: string): string {
  if (!VISIBLE_ASCII.test(value)) throw refused(name)
  return value
}

function refused(name: string): GatehouseError {
  return new GatehouseError('GH_INTERNAL', `The value for ${name} is not visible ASCII; the identity was not forwarded`)
}
