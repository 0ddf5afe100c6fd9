/**
 * The frame of the gateway's account pages (sign-up, password reset, the account page): the
 * sign-in page's look and headers, a stylesheet for what those pages add, and the one script
 * they use (copying a new token), served as a file so that the CSP allows no inline script.
 */
import type { FastifyReply } from 'fastify'
import { escapeHtml, LOGIN_PAGE_CSP, sendHtml } from './login-page.js'

/** The account page's policy: the sign-in page's plus scripts from the gateway's own files. */
export const ACCOUNT_PAGE_CSP = LOGIN_PAGE_CSP.replace("default-src 'none';", "default-src 'none'; script-src 'self';")

/** The account page's policy plus fetch() to the gateway's own endpoints: what the passkey script needs. */
export const PASSKEY_PAGE_CSP = ACCOUNT_PAGE_CSP.replace("script-src 'self';", "script-src 'self'; connect-src 'self';")

export interface PageOptions {
  title: string
  /** Already escaped HTML of the page's content, below the heading. */
  body: string
  /** The wide layout of the account page. */
  wide?: boolean
  /** Loads /auth/assets/account.js (the copy button). */
  script?: boolean
  /** More tags for the head (the passkey scripts); the caller sends the CSP that allows them. */
  head?: string
}

export function renderPage(options: PageOptions): string {
  const script = (options.script ? '\n<script src="/auth/assets/account.js" defer></script>' : '') + (options.head ? `\n${options.head}` : '')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(options.title)} · Gatehouse</title>
<link rel="stylesheet" href="/auth/assets/login.css">
<link rel="stylesheet" href="/auth/assets/account.css">${script}
</head>
<body>
<main${options.wide ? ' class="wide"' : ''}>
<h1>${escapeHtml(options.title)}</h1>
${options.body}
</main>
</body>
</html>
`
}

export function sendPage(reply: FastifyReply, status: number, html: string, options: { script?: boolean; csp?: string } = {}): FastifyReply {
  return sendHtml(reply, status, html, options.csp ?? (options.script ? ACCOUNT_PAGE_CSP : LOGIN_PAGE_CSP))
}

/** An error message announced to assistive technology; `id` lets a form point at it. */
export function alertHtml(message: string | undefined, id = 'form-error'): string {
  return message ? `<p class="error" role="alert" id="${id}">${escapeHtml(message)}</p>` : ''
}

/** A confirmation of what just happened. */
export function noticeHtml(message: string | undefined): string {
  return message ? `<p class="notice" role="status">${escapeHtml(message)}</p>` : ''
}

export const ACCOUNT_CSS = `main.wide{max-width:46rem}
.notice{background:#e6f4ea;color:#1e4620;padding:.75rem;border-radius:4px}
.links{margin:1.25rem 0 0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:.5rem 1.25rem}
.links a,a.inline{color:#2f55c7}
.hint{color:#4a5468;font-size:.9rem;margin:.3rem 0 0}
section{border-top:1px solid #d8dce3;margin-top:2rem;padding-top:.5rem}
h2{font-size:1.15rem}
table{width:100%;border-collapse:collapse;font-size:.9rem;margin-top:.5rem}
th,td{text-align:left;padding:.45rem .35rem;border-bottom:1px solid #e3e6eb;vertical-align:top}
td form{margin:0}
button.small{display:inline-block;width:auto;margin:0;padding:.35rem .7rem;font-size:.85rem;white-space:nowrap}
td code{white-space:nowrap}
button.secondary{background:#3b4252}
button.danger{background:#b42318}
.badge{display:inline-block;background:#e3ebfd;color:#1d3f9e;border-radius:3px;padding:0 .35rem;font-size:.8rem;margin-left:.3rem}
fieldset{border:1px solid #d8dce3;border-radius:4px;margin-top:1rem;padding:.5rem 1rem}
legend{font-weight:600}
fieldset label{display:flex;align-items:center;gap:.5rem;font-weight:400;margin-top:.4rem}
input[type=checkbox]{width:auto;margin:0}
select{width:100%;box-sizing:border-box;padding:.6rem;margin-top:.3rem;border:1px solid #8a94a6;border-radius:4px;font-size:1rem;background:#fff}
select:focus{outline:3px solid #2f6fde;outline-offset:2px}
.token{display:flex;gap:.5rem;align-items:flex-end}
.token input{font-family:ui-monospace,monospace}
.token button{width:auto;margin:0;white-space:nowrap}
.grow{flex:1}
.token-box{background:#fff8e1;border:1px solid #e0c36c;border-radius:6px;padding:1rem;margin-top:1rem}
.token-box label{margin-top:0}
.qr svg{width:12rem;height:12rem;display:block;margin:.5rem 0}
.recovery-codes{columns:2;font-size:1.05rem}
.actions{display:flex;gap:.75rem;flex-wrap:wrap;align-items:center}
.actions button{width:auto}
code{font-family:ui-monospace,monospace}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
`

/**
 * Progressive enhancement of the page that shows a new token: the copy button is hidden
 * until this runs; without it the token is still there to select and copy.
 */
export const ACCOUNT_JS = `'use strict';
document.querySelectorAll('button[data-copy]').forEach(function (button) {
  var field = document.getElementById(button.getAttribute('data-copy'));
  if (!field || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener('click', function () {
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = 'Copied';
    }, function () {
      field.select();
      button.textContent = 'Press Ctrl+C to copy';
    });
  });
});
`

/** What a refused form says, by the error's code; the core's own message where it is about the input. */
export function formMessage(err: { code: string; statusCode: number; message: string }): string {
  if (err.statusCode >= 500) return 'This is unavailable right now. Try again shortly.'
  switch (err.code) {
    case 'GH_RATE_LIMITED':
      return 'Too many attempts. Wait a moment, then try again.'
    case 'GH_CSRF':
      return 'The form was sent from another site and was refused. Open this page again and retry.'
    case 'GH_PAYLOAD_TOO_LARGE':
      return 'What you entered is too long.'
    case 'GH_EMAIL_TAKEN':
      return 'An account with this email address already exists. Sign in, or reset its password.'
    case 'GH_REGISTRATION_CLOSED':
      return 'Sign-up is closed here. Ask an administrator for an account.'
    default:
      return err.message
  }
}
