/**
 * The HTML sign-in page (SPEC §5): a plain, accessible form that keeps `next` in a hidden
 * field, a button per OIDC provider and a strict Content-Security-Policy; no script, except
 * the passkey button's files when passkey sign-in is on.
 */
import type { FastifyReply } from 'fastify'

export const LOGIN_PAGE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

/**
 * The sign-in page's CSP for a given `next`. The form's answer is a 303 to `next`, and browsers
 * hold that redirect to `form-action` too: an absolute `next` (a host under
 * `sessions.cookie_domain`, which safeNext alone lets through: forward auth) adds its origin,
 * and only that one.
 */
export function loginPageCsp(next: string, base: string = LOGIN_PAGE_CSP): string {
  const origin = absoluteOrigin(next)
  return origin === null ? base : base.replace("form-action 'self'", `form-action 'self' ${origin}`)
}

/** The origin of an absolute https `next`, when it is nothing but scheme, host name and port. */
function absoluteOrigin(next: string): string | null {
  if (!/^https:/i.test(next)) return null
  let origin: string
  try {
    origin = new URL(next).origin
  } catch {
    return null
  }
  // Never more than a plain origin in the header: no `;` or `,` can start another directive.
  return /^https:\/\/[a-z0-9.-]+(:[0-9]+)?$/.test(origin) ? origin : null
}

export interface LoginPageOptions {
  next: string
  email?: string
  error?: string
  providers?: readonly string[]
  /** A confirmation shown above the form (a fixed text, see notices.ts). */
  notice?: string
  /** Links to the sign-up page (registration open) and to "forgot password" (email configured). */
  links?: { register: boolean; forgot: boolean }
  /** Offer a new verification link for this address (a correct password, email not verified yet). */
  resendEmail?: string
  /** `auth.mfa.passkey_login`: a "Sign in with a passkey" button and its scripts (send PASSKEY_PAGE_CSP). */
  passkeyLogin?: boolean
}

/** The tags a page adds to load the passkey script (the library first; both deferred, in order; see passkey-assets.ts). */
export const PASSKEY_SCRIPTS = '<script src="/auth/assets/webauthn.js" defer></script>\n<script src="/auth/assets/passkeys.js" defer></script>'

/** The sign-in page's passkey button; hidden until the script finds WebAuthn. */
function passkeyLoginControl(): string {
  return `<div data-passkey-login hidden>
<p class="error" role="alert" data-passkey-error hidden></p>
<button type="button" class="secondary" id="passkey-login">Sign in with a passkey</button>
</div>`
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string)

export function renderLoginPage(options: LoginPageOptions): string {
  const next = escapeHtml(options.next)
  const error = options.error
    ? `<p class="error" role="alert" id="login-error">${escapeHtml(options.error)}</p>`
    : ''
  const describedBy = options.error ? ' aria-describedby="login-error"' : ''
  const providers = (options.providers ?? [])
    .map(
      (name) =>
        `<li><a class="provider" href="/auth/oidc/${encodeURIComponent(name)}/start?next=${encodeURIComponent(options.next)}">Sign in with ${escapeHtml(name)}</a></li>`,
    )
    .join('')
  const notice = options.notice ? `<p class="notice" role="status">${escapeHtml(options.notice)}</p>` : ''
  const links = [
    options.links?.forgot ? '<li><a href="/auth/password/forgot">Forgot your password?</a></li>' : '',
    options.links?.register ? '<li><a href="/auth/register">Create an account</a></li>' : '',
  ].join('')
  const resend =
    options.resendEmail === undefined
      ? ''
      : `<form method="post" action="/auth/email/verify/resend">
<input type="hidden" name="email" value="${escapeHtml(options.resendEmail)}">
<button type="submit" class="secondary">Send a new confirmation link</button>
</form>`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Gatehouse</title>
<link rel="stylesheet" href="/auth/assets/login.css">
<link rel="stylesheet" href="/auth/assets/account.css">${options.passkeyLogin ? `\n${PASSKEY_SCRIPTS}` : ''}
</head>
<body>
<main>
<h1>Sign in</h1>
${notice}${error}${resend}
<form method="post" action="/auth/login"${describedBy}>
<input type="hidden" name="next" value="${next}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="username" required value="${escapeHtml(options.email ?? '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
${options.passkeyLogin ? passkeyLoginControl() : ''}
${providers ? `<ul class="providers" aria-label="Other ways to sign in">${providers}</ul>` : ''}
${links ? `<ul class="links">${links}</ul>` : ''}
</main>
</body>
</html>
`
}

export const LOGIN_CSS = `body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2433;margin:0}
main{max-width:22rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.5rem;margin-top:0}
label{display:block;margin-top:1rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.6rem;margin-top:.3rem;border:1px solid #8a94a6;border-radius:4px;font-size:1rem}
input:focus,button:focus,a:focus{outline:3px solid #2f6fde;outline-offset:2px}
button,.provider{display:block;width:100%;box-sizing:border-box;margin-top:1.5rem;padding:.7rem;border:0;border-radius:4px;background:#2f55c7;color:#fff;font-size:1rem;text-align:center;text-decoration:none;cursor:pointer}
.providers{list-style:none;padding:0;margin:1rem 0 0}
.provider{background:#3b4252;margin-top:.75rem}
button.secondary{background:#3b4252}
.error{background:#fde8e8;color:#8a1c1c;padding:.75rem;border-radius:4px}
`

export function sendHtml(reply: FastifyReply, status: number, html: string, csp = LOGIN_PAGE_CSP): FastifyReply {
  return reply
    .code(status)
    .header('content-security-policy', csp)
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'same-origin')
    .header('x-content-type-options', 'nosniff')
    .type('text/html; charset=utf-8')
    .send(html)
}
