/**
 * The HTML of the self-service account page (SPEC §5): name, password, sessions, personal
 * access tokens, user secrets, second factors and deleting the account, each a plain form
 * that works without script (passkeys, which need the browser's WebAuthn API, excepted).
 */
import type { PasskeyInfo } from '../core/passkeys.js'
import type { FactorStatus } from '../core/mfa/index.js'
import type { PatInfo } from '../core/pats.js'
import { secretsSection, type AccountSecretView } from './account-secrets-section.js'
import { passkeysSection } from './passkey-page.js'
import { escapeHtml, PASSKEY_SCRIPTS } from './login-page.js'
import { alertHtml, noticeHtml, renderPage } from './page.js'

export interface AccountSessionView {
  id: string
  created_at: number
  last_seen_at: number
  ip: string | null
  user_agent: string | null
  current: boolean
}

export interface AccountView {
  user: { email: string; name: string | null; email_verified: boolean }
  sessions: readonly AccountSessionView[]
  tokens: readonly PatInfo[]
  /** The routes the user may keep a secret for, and the secrets stored. */
  secrets: readonly AccountSecretView[]
  passkeys: readonly PasskeyInfo[]
  /** Permissions a new token may be limited to. */
  permissionChoices: readonly string[]
  notice?: string
  error?: string
  /** A token just created: shown this once. */
  created?: { name: string; token: string }
  /** What the user typed into the token form, kept after a refusal. */
  tokenForm?: { name: string; expires: string; permissions: readonly string[] }
  /** The user's second factors. */
  factors: FactorStatus
  /** A TOTP enrolment just started: the QR code (SVG) and the secret, until confirmed. */
  totpEnrolment?: { secret: string; qr_svg: string }
  /** Recovery codes just issued: shown this once. */
  recoveryCodes?: readonly string[]
}

/** Expiry choices of the token form, in days; '' never expires. */
export const TOKEN_EXPIRY_CHOICES: readonly { value: string; label: string }[] = [
  { value: '7', label: '7 days' },
  { value: '30', label: '30 days' },
  { value: '90', label: '90 days' },
  { value: '365', label: '1 year' },
  { value: '', label: 'Never' },
]

const when = (ms: number | string | null): string => {
  if (ms === null) return ''
  const iso = new Date(ms).toISOString()
  return `<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time>`
}

function shorten(text: string | null, length: number): string {
  if (text === null || text === '') return 'unknown'
  return text.length > length ? `${text.slice(0, length - 1)}…` : text
}

function profileSection(view: AccountView): string {
  const { user } = view
  const status = user.email_verified ? '<span class="badge">confirmed</span>' : '<span class="badge">not confirmed</span>'
  return `<section aria-labelledby="profile-title">
<h2 id="profile-title">Profile</h2>
<p>Email: <strong>${escapeHtml(user.email)}</strong>${status}</p>
<form method="post" action="/auth/account/name">
<label for="name">Name</label>
<input id="name" name="name" type="text" autocomplete="name" maxlength="100" value="${escapeHtml(user.name ?? '')}">
<p class="hint" id="name-hint">Leave it empty to remove your name.</p>
<button type="submit">Save name</button>
</form>
</section>`
}

function passwordSection(): string {
  return `<section aria-labelledby="password-title">
<h2 id="password-title">Password</h2>
<form method="post" action="/auth/account/password">
<label for="current_password">Current password</label>
<input id="current_password" name="current_password" type="password" autocomplete="current-password" required>
<label for="new_password">New password</label>
<input id="new_password" name="new_password" type="password" autocomplete="new-password" required>
<label for="new_password_confirm">New password again</label>
<input id="new_password_confirm" name="new_password_confirm" type="password" autocomplete="new-password" required>
<button type="submit">Change password</button>
</form>
<p class="hint">Changing it signs out your other sessions.</p>
</section>`
}

function sessionsSection(view: AccountView): string {
  const rows = view.sessions
    .map((session) => {
      const action = session.current
        ? `<form method="post" action="/auth/logout"><button type="submit" class="small secondary">Sign out</button></form>`
        : `<form method="post" action="/auth/account/sessions/revoke"><input type="hidden" name="id" value="${escapeHtml(session.id)}"><button type="submit" class="small secondary" aria-label="Sign out the session started ${new Date(session.created_at).toISOString().slice(0, 16).replace('T', ' ')} UTC">Sign out</button></form>`
      return `<tr${session.current ? ' aria-current="true"' : ''}>
<td>${escapeHtml(shorten(session.user_agent, 60))}${session.current ? '<span class="badge">this session</span>' : ''}</td>
<td>${escapeHtml(session.ip ?? 'unknown')}</td>
<td>${when(session.created_at)}</td>
<td>${when(session.last_seen_at)}</td>
<td>${action}</td>
</tr>`
    })
    .join('\n')
  return `<section aria-labelledby="sessions-title">
<h2 id="sessions-title">Sessions</h2>
<table>
<thead><tr><th scope="col">Browser or client</th><th scope="col">IP</th><th scope="col">Signed in</th><th scope="col">Last active</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<form method="post" action="/auth/logout-all">
<button type="submit" class="secondary">Sign out everywhere</button>
</form>
</section>`
}

function createdTokenBox(created: NonNullable<AccountView['created']>): string {
  return `<div class="token-box" role="status">
<p><strong>Your new token “${escapeHtml(created.name)}”.</strong> Copy it now: it is shown only this once.</p>
<div class="token">
<div class="grow">
<label for="new-token">Token</label>
<input id="new-token" type="text" readonly value="${escapeHtml(created.token)}" aria-describedby="new-token-hint">
</div>
<button type="button" data-copy="new-token" hidden>Copy</button>
</div>
<p class="hint" id="new-token-hint">Send it as <code>Authorization: Bearer &lt;token&gt;</code>.</p>
</div>`
}

function tokensSection(view: AccountView): string {
  const rows = view.tokens
    .map((pat) => {
      const permissions = pat.permissions === null ? 'all of yours' : pat.permissions.map(escapeHtml).join(', ')
      const expires = pat.expired ? 'expired' : pat.expires_at === null ? 'never' : when(pat.expires_at)
      return `<tr>
<td>${escapeHtml(pat.name)}</td>
<td><code>${escapeHtml(pat.token)}</code></td>
<td>${permissions}</td>
<td>${when(pat.created_at)}</td>
<td>${pat.last_used_at === null ? 'never' : when(pat.last_used_at)}</td>
<td>${expires}</td>
<td><form method="post" action="/auth/account/tokens/revoke"><input type="hidden" name="id" value="${escapeHtml(pat.id)}"><button type="submit" class="small danger" aria-label="Revoke the token ${escapeHtml(pat.name)}">Revoke</button></form></td>
</tr>`
    })
    .join('\n')
  const list =
    view.tokens.length === 0
      ? '<p>You have no tokens.</p>'
      : `<table>
<thead><tr><th scope="col">Name</th><th scope="col">Token</th><th scope="col">Permissions</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>`
  const form = view.tokenForm ?? { name: '', expires: '30', permissions: [] }
  const expiry = TOKEN_EXPIRY_CHOICES.map(
    (choice) => `<option value="${choice.value}"${choice.value === form.expires ? ' selected' : ''}>${choice.label}</option>`,
  ).join('')
  const choices = view.permissionChoices
    .map(
      (permission, index) =>
        `<label for="permission-${index}"><input id="permission-${index}" type="checkbox" name="permissions" value="${escapeHtml(permission)}"${form.permissions.includes(permission) ? ' checked' : ''}> <code>${escapeHtml(permission)}</code></label>`,
    )
    .join('\n')
  return `<section aria-labelledby="tokens-title">
<h2 id="tokens-title">Personal access tokens</h2>
<p class="hint">For scripts and tools: a token reaches the apps behind the gateway as you, with the permissions you give it.</p>
${view.created ? createdTokenBox(view.created) : ''}
${list}
<h3>New token</h3>
<form method="post" action="/auth/account/tokens">
<label for="token_name">Name</label>
<input id="token_name" name="name" type="text" required maxlength="100" value="${escapeHtml(form.name)}">
<label for="expires_in_days">Expires after</label>
<select id="expires_in_days" name="expires_in_days">${expiry}</select>
${choices ? `<fieldset><legend>Limit to these permissions</legend>\n<p class="hint">None checked: all of your permissions, as they are when the token is used.</p>\n${choices}\n</fieldset>` : ''}
<button type="submit">Create token</button>
</form>
</section>`
}

function recoveryCodesBox(codes: readonly string[]): string {
  return `<div class="token-box" role="status">
<p><strong>Your recovery codes.</strong> Keep them somewhere safe now: they are shown only this once. Each one signs you in once when your authenticator app is not at hand.</p>
<ul class="recovery-codes">
${codes.map((code) => `<li><code>${escapeHtml(code)}</code></li>`).join('\n')}
</ul>
</div>`
}

function totpEnrolmentBox(enrolment: NonNullable<AccountView['totpEnrolment']>): string {
  // The SVG comes from the qrcode library (shapes only, no script or link), made from our own URL.
  return `<div class="token-box">
<p>Scan this code with your authenticator app, then enter the six-digit code it shows.</p>
<div class="qr" role="img" aria-label="QR code for your authenticator app">${enrolment.qr_svg}</div>
<p class="hint">Cannot scan? Enter this key in the app: <code>${escapeHtml(enrolment.secret)}</code></p>
<form method="post" action="/auth/account/mfa/totp/confirm">
<label for="totp_code">Code from the app</label>
<input id="totp_code" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="8" required>
<button type="submit">Turn on</button>
</form>
</div>`
}

function totpPart(view: AccountView): string {
  if (view.factors.totp) {
    return `<h3>Authenticator app</h3>
<p>On<span class="badge">authenticator app</span></p>
<form method="post" action="/auth/account/mfa/totp/remove">
<label for="totp_remove_password">Password</label>
<input id="totp_remove_password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" class="secondary">Turn off the authenticator app</button>
</form>`
  }
  return `<h3>Authenticator app</h3>
${view.totpEnrolment ? totpEnrolmentBox(view.totpEnrolment) : `<p>Off. Codes from an app such as a password manager or an authenticator protect your account even when your password leaks.</p>
<form method="post" action="/auth/account/mfa/totp">
<input type="hidden" name="factor" value="totp">
<button type="submit">Set up an authenticator app</button>
</form>`}`
}

/** The passkeys: listed with a remove button each, and added with the page's script (passkey-page.ts). */
function passkeysPart(view: AccountView): string {
  return passkeysSection(view.passkeys)
}

function recoveryPart(view: AccountView): string {
  if (!view.factors.totp && view.factors.passkeys === 0) return ''
  return `<h3>Recovery codes</h3>
<p>${view.factors.recovery_codes} of 10 unused.</p>
<form method="post" action="/auth/account/mfa/recovery-codes">
<label for="recovery_password">Password</label>
<input id="recovery_password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" class="secondary">Make new recovery codes</button>
</form>
<p class="hint">New codes replace the old ones, which stop working.</p>`
}

function secondFactorsSection(view: AccountView): string {
  return `<section aria-labelledby="mfa-title">
<h2 id="mfa-title">Two-step sign-in</h2>
<p class="hint">With a second factor, signing in asks for it after your password. Turning one on or off signs out your other sessions.</p>
${view.recoveryCodes ? recoveryCodesBox(view.recoveryCodes) : ''}
${totpPart(view)}
${passkeysPart(view)}
${recoveryPart(view)}
</section>`
}

function deleteSection(): string {
  return `<section aria-labelledby="delete-title">
<h2 id="delete-title">Delete your account</h2>
<p>This deletes your account, its tokens and its sessions. It cannot be undone.</p>
<form method="post" action="/auth/account/delete">
<label for="delete_password">Password</label>
<input id="delete_password" name="password" type="password" autocomplete="current-password" required>
<fieldset><legend>Confirm</legend>
<label for="delete_confirm"><input id="delete_confirm" type="checkbox" name="confirm" value="yes" required> Yes, delete my account</label>
</fieldset>
<button type="submit" class="danger">Delete my account</button>
</form>
</section>`
}

export function renderAccountPage(view: AccountView): string {
  const body = [
    noticeHtml(view.notice),
    alertHtml(view.error),
    profileSection(view),
    passwordSection(),
    sessionsSection(view),
    tokensSection(view),
    secretsSection(view.secrets),
    secondFactorsSection(view),
    deleteSection(),
  ].join('\n')
  return renderPage({ title: 'Your account', body, wide: true, script: view.created !== undefined, head: PASSKEY_SCRIPTS })
}
