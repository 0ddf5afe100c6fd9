/**
 * The texts of the gateway's emails: plain text plus an HTML part that says the same, with
 * absolute links built from `public_url` (a mail client has no base URL to resolve against).
 */
import { ACCOUNT_TOKEN_TTL_MS } from './account-tokens.js'
import type { MailMessage } from './mailer.js'

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string)

/** The link a token is mailed in: `public_url` + path, the token as the only query parameter. */
export function accountLink(publicUrl: string, path: '/auth/password/reset' | '/auth/email/verify', token: string): string {
  const url = new URL(path, publicUrl)
  url.searchParams.set('token', token)
  return url.href
}

function html(paragraphs: readonly string[], link?: { href: string; label: string }): string {
  const body = paragraphs.map((p) => `<p>${escape(p)}</p>`)
  if (link) body.splice(1, 0, `<p><a href="${escape(link.href)}">${escape(link.label)}</a></p>`)
  return `<!doctype html><html lang="en"><body style="font-family:system-ui,sans-serif;color:#1d2433">${body.join('')}</body></html>`
}

export function resetEmail(publicUrl: string, to: string, token: string): MailMessage {
  const link = accountLink(publicUrl, '/auth/password/reset', token)
  const minutes = ACCOUNT_TOKEN_TTL_MS.password_reset / 60_000
  const intro = `Someone asked to reset the password of the account ${to} at ${new URL(publicUrl).host}. To choose a new password, open this link within ${minutes} minutes:`
  const outro = 'The link works once. If you did not ask for this, ignore this email: your password stays as it is.'
  return {
    kind: 'reset',
    to,
    subject: 'Reset your password',
    text: `${intro}\n\n${link}\n\n${outro}\n`,
    html: html([intro, outro], { href: link, label: 'Choose a new password' }),
  }
}

export function verificationEmail(publicUrl: string, to: string, token: string): MailMessage {
  const link = accountLink(publicUrl, '/auth/email/verify', token)
  const hours = ACCOUNT_TOKEN_TTL_MS.email_verification / 3_600_000
  const intro = `Confirm that ${to} is your email address for your account at ${new URL(publicUrl).host} by opening this link within ${hours} hours:`
  const outro = 'The link works once. If you did not create this account, ignore this email.'
  return {
    kind: 'verification',
    to,
    subject: 'Confirm your email address',
    text: `${intro}\n\n${link}\n\n${outro}\n`,
    html: html([intro, outro], { href: link, label: 'Confirm my email address' }),
  }
}

export function passwordChangedEmail(publicUrl: string, to: string): MailMessage {
  const signIn = new URL('/auth/login', publicUrl).href
  const intro = `The password of your account ${to} at ${new URL(publicUrl).host} was just changed, and every session of the account was signed out.`
  const outro = 'If that was not you, reset your password now from the sign-in page, and tell your administrator.'
  return {
    kind: 'password_changed',
    to,
    subject: 'Your password was changed',
    text: `${intro}\n\n${signIn}\n\n${outro}\n`,
    html: html([intro, outro], { href: signIn, label: 'Go to the sign-in page' }),
  }
}
