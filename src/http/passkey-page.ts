/**
 * The passkeys part of the account page's two-step sign-in section (SPEC §5): the list, each
 * with a remove button (a plain form: removing works without script), and the form that adds
 * one, which needs WebAuthn and therefore the script; it stays hidden without it.
 */
import type { PasskeyInfo } from '../core/passkeys.js'
import { MAX_PASSKEY_NAME_LENGTH } from '../core/passkeys.js'
import { escapeHtml } from './login-page.js'

const when = (iso: string | null): string => (iso === null ? 'never' : `<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time>`)

export function passkeysSection(passkeys: readonly PasskeyInfo[]): string {
  const rows = passkeys
    .map(
      (passkey) => `<tr>
<td>${escapeHtml(passkey.name)}${passkey.backed_up ? '<span class="badge">synced</span>' : ''}</td>
<td>${when(passkey.created_at)}</td>
<td>${when(passkey.last_used_at)}</td>
<td><form method="post" action="/auth/account/passkeys/remove"><input type="hidden" name="id" value="${escapeHtml(passkey.id)}"><button type="submit" class="small danger" aria-label="Remove the passkey ${escapeHtml(passkey.name)}">Remove</button></form></td>
</tr>`,
    )
    .join('\n')
  const list =
    passkeys.length === 0
      ? '<p id="passkeys-empty">You have no passkeys.</p>'
      : `<table id="passkeys-list">
<thead><tr><th scope="col">Name</th><th scope="col">Added</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
  return `<h3 id="passkeys-title">Passkeys</h3>
<p class="hint">A passkey signs you in with this device's screen lock, a phone or a security key, and counts as a second factor.</p>
${list}
<form data-passkey-add hidden>
<p class="error" role="alert" data-passkey-error hidden></p>
<label for="passkey_name">Name of the new passkey</label>
<input id="passkey_name" name="name" type="text" required maxlength="${MAX_PASSKEY_NAME_LENGTH}" placeholder="e.g. Work laptop">
<button type="submit">Add a passkey</button>
</form>
<noscript><p class="hint">Adding a passkey needs JavaScript.</p></noscript>`
}
