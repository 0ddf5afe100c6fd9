/**
 * The "Secrets" section of the account page (SPEC §5): one row per route the user may keep a
 * secret for (and per stored secret whose route went away), each with a form to set or replace
 * it and one to remove it. Values are write-only: the page never holds one, not even the value
 * just typed after a refusal.
 */
import { escapeHtml } from './login-page.js'

export interface AccountSecretView {
  route: string
  /** The header the upstream receives; null when the route no longer takes a secret. */
  header: string | null
  /** null: nothing stored yet. */
  state: 'active' | 'dormant' | null
  updated_at: string | null
}

const when = (iso: string): string => `<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time>`

function row(secret: AccountSecretView, index: number): string {
  const status = secret.state === null
    ? 'not set'
    : secret.state === 'active'
      ? `set ${when(secret.updated_at ?? '')}`
      : `set ${when(secret.updated_at ?? '')} <span class="badge">not sent: ${secret.header === null ? 'the route is gone' : 'the route\'s upstream changed, set it again'}</span>`
  const route = escapeHtml(secret.route)
  const set = secret.header === null
    ? ''
    : `<form method="post" action="/auth/account/secrets">
<input type="hidden" name="route" value="${route}">
<label for="secret-${index}">${secret.state === null ? 'Secret' : 'New secret'}</label>
<input id="secret-${index}" name="value" type="password" autocomplete="off" required maxlength="4096" aria-describedby="secret-${index}-hint">
<p class="hint" id="secret-${index}-hint">Printable characters, at most 4096. It is stored encrypted and never shown again.</p>
<button type="submit" class="small">${secret.state === null ? 'Save secret' : 'Replace secret'}</button>
</form>`
  const remove = secret.state === null
    ? ''
    : `<form method="post" action="/auth/account/secrets/remove"><input type="hidden" name="route" value="${route}"><button type="submit" class="small danger" aria-label="Remove the secret for ${route}">Remove</button></form>`
  return `<tr>
<td><code>${route}</code>${secret.header === null ? '' : `<br><span class="hint">sent as <code>${escapeHtml(secret.header)}</code></span>`}</td>
<td>${status}</td>
<td>${set}${remove}</td>
</tr>`
}

export function secretsSection(secrets: readonly AccountSecretView[]): string {
  if (secrets.length === 0) return ''
  return `<section aria-labelledby="secrets-title">
<h2 id="secrets-title">Secrets</h2>
<p class="hint">Credentials the gateway adds to your requests to one app, and only yours: an app's password or API key, for example.</p>
<table>
<thead><tr><th scope="col">Route</th><th scope="col">Status</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>
${secrets.map(row).join('\n')}
</tbody>
</table>
</section>`
}
