/** The text `gatehouse explain` prints for an Explanation, one fact per line. */
import type { Explanation } from './core/pipeline/index.js'

export function formatExplanation(e: Explanation): string {
  const lines = [`request:     ${e.method} ${e.target}${e.host === null ? '' : ` (host ${e.host})`}`]
  if (e.path_refusal) {
    lines.push(`path:        refused (${e.path_refusal.reason}): ${e.path_refusal.message}`)
  } else {
    lines.push(`normalised:  ${e.path}${e.query ?? ''}`)
  }
  if (e.match?.kind === 'route') {
    const r = e.match.route
    lines.push(
      `route:       ${r.name} (${r.host === null ? '' : `host ${r.host}, `}match ${r.match}, auth ${r.auth}, methods ${r.methods?.join(',') ?? 'all'}, ` +
        `permissions ${r.permissions.join(',') || 'none'})`,
    )
  } else if (e.match?.kind === 'method_not_allowed') {
    lines.push(`route:       none allows ${e.method} (allowed: ${e.match.allow.join(', ')})`)
  } else if (e.match?.kind === 'not_found') {
    lines.push('route:       none matches')
  }
  lines.push(
    e.identity
      ? `identity:    ${e.identity.email} (roles: ${e.identity.roles.join(', ') || 'none'}; ` +
          `permissions: ${e.identity.permissions.join(', ') || 'none'})`
      : 'identity:    anonymous',
  )
  if (e.decision) {
    const missing = e.decision.missing_permissions.length > 0 ? `; missing: ${e.decision.missing_permissions.join(', ')}` : ''
    lines.push(`decision:    ${e.decision.allow ? 'allow' : 'deny'} (${e.decision.reason}${missing})`)
  }
  lines.push(
    e.answer.status === null
      ? `answer:      proxied to ${e.answer.upstream_url}`
      : `answer:      ${e.answer.status} ${e.answer.code}`,
  )
  if (e.answer.status === null && e.answer.servers && e.answer.servers.length > 1) {
    lines.push(`upstream:    path ${e.answer.upstream_path ?? ''} on any of ${e.answer.servers.length} servers:`)
    e.answer.servers.forEach((server, at) => lines.push(`  ${at + 1}. ${server}`))
  }
  return lines.join('\n') + '\n'
}
