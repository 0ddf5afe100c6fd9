/**
 * The error-shape check of SPEC §5 without the list of permitted extra fields: for answers
 * whose extras (`missing`, `missing_permissions`, `route`, …) are the core's to choose.
 */
import type { Test } from 'tap'
import type { Response } from './gateway.js'

/** A JSON `{statusCode, code, error, message, …}` answer with this status and code. */
export function assertCode(t: Test, response: Response, status: number, code: string, what = ''): Record<string, unknown> {
  const label = `${what ? `${what}: ` : ''}${status} ${code}`
  t.equal(response.status, status, label, { body: response.text.slice(0, 500) })
  t.match(String(response.headers['content-type']), /^application\/json/, `${label}: JSON`)
  let body: Record<string, unknown>
  try {
    body = response.json()
  } catch {
    t.fail(`${label}: body is not JSON: ${response.text.slice(0, 200)}`)
    return {}
  }
  t.equal(body.code, code, `${label}: code`)
  t.equal(body.statusCode, status, `${label}: statusCode`)
  t.equal(typeof body.error, 'string', `${label}: error is a string`)
  t.equal(typeof body.message, 'string', `${label}: message is a string`)
  return body
}
