/**
 * The page a browser sees when an OpenID Connect sign-in cannot finish (SPEC §5): what went
 * wrong, in words, the stable error code for support, and a link back to the login page
 * that keeps `next`. Same look and headers as the login page, no script.
 */
import { escapeHtml } from './login-page.js'

export interface SignInErrorPageOptions {
  message: string
  code: string
  reason?: string
  /** A safe local path, kept for the next attempt. */
  next: string
}

export function renderSignInErrorPage(options: SignInErrorPageOptions): string {
  const loginHref = `/auth/login${options.next === '/' ? '' : `?next=${encodeURIComponent(options.next)}`}`
  const code = options.reason ? `${options.code} (${options.reason})` : options.code
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in failed · Gatehouse</title>
<link rel="stylesheet" href="/auth/assets/login.css">
</head>
<body>
<main>
<h1>Sign-in failed</h1>
<p class="error" role="alert">${escapeHtml(options.message)}</p>
<p><a class="provider" href="${escapeHtml(loginHref)}">Back to sign in</a></p>
<p><small>Error code: <code>${escapeHtml(code)}</code></small></p>
</main>
</body>
</html>
`
}
