/**
 * The page that asks for a second factor (SPEC §3): the second page of a form login
 * (`mfa_token` in a hidden field) and the step-up page of `mfa: required` routes. Plain forms,
 * no script: an authenticator code or a recovery code. A passkey button needs a script and
 * comes with the passkeys work (the marked place below).
 */
import type { SecondFactorMethod } from '../core/mfa/index.js'
import { escapeHtml, PASSKEY_SCRIPTS } from './login-page.js'
import { alertHtml, renderPage } from './page.js'

export interface SecondFactorPageOptions {
  /** POST /auth/login/mfa or /auth/login/step-up. */
  action: string
  title: string
  /** Fields posted back as they are (`mfa_token`, `next`). */
  hidden: Readonly<Record<string, string>>
  methods: readonly SecondFactorMethod[]
  error?: string
  /** With `webauthn` among the methods: where the script gets the assertion options (POST). */
  passkeyOptions?: string
}

export function renderSecondFactorPage(options: SecondFactorPageOptions): string {
  const hidden = Object.entries(options.hidden)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n')
  const describedBy = options.error ? ' aria-describedby="form-error"' : ''
  const totp = options.methods.includes('totp')
    ? `<form method="post" action="${options.action}"${describedBy}>
${hidden}
<label for="code">Code from your authenticator app</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,8}" maxlength="8" required autofocus>
<button type="submit">Verify</button>
</form>`
    : ''
  const passkey =
    options.methods.includes('webauthn') && options.passkeyOptions !== undefined
      ? `<form method="post" action="${options.action}" data-passkey-factor="${escapeHtml(options.passkeyOptions)}" hidden>
${hidden}
<input type="hidden" name="webauthn" value="">
<p class="error" role="alert" data-passkey-error hidden></p>
<button type="submit"${options.methods.includes('totp') ? ' class="secondary"' : ''}>Use a passkey</button>
</form>
<noscript><p class="hint">Signing in with a passkey needs JavaScript.</p></noscript>`
      : ''
  const recovery = options.methods.includes('recovery')
    ? `<details${options.methods.includes('totp') ? '' : ' open'}>
<summary>Use a recovery code</summary>
<form method="post" action="${options.action}">
${hidden}
<label for="recovery_code">Recovery code</label>
<input id="recovery_code" name="recovery_code" autocomplete="off" spellcheck="false" maxlength="64" required>
<button type="submit" class="secondary">Use recovery code</button>
</form>
</details>`
    : ''
  const body = `<p>Confirm it is you with your second factor.</p>
${alertHtml(options.error)}
${passkey}
${totp}
${recovery}
<ul class="links"><li><a href="/auth/login">Start again</a></li></ul>`
  return renderPage({ title: options.title, body, ...(passkey ? { head: PASSKEY_SCRIPTS } : {}) })
}
