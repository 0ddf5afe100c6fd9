/**
 * What the sign-in and account pages confirm after a redirect (`?notice=` / `?done=`): a
 * fixed set of keys, so that a link can never make the gateway's page say something else.
 */
export const LOGIN_NOTICES = {
  registered: 'Your account is ready. Sign in.',
  verification_sent: 'If that address has an account waiting for confirmation, we sent it a new link. It works for 24 hours.',
  verify_required: 'Your account is created. We sent a link to your email address: open it to confirm the address, then sign in.',
  email_verified: 'Your email address is confirmed. Sign in.',
  verify_failed: 'That confirmation link is invalid, expired or already used. Sign in with your password to get a new one.',
  reset_sent: 'If that address has an account, we sent it a link to choose a new password. It works for 30 minutes.',
  password_reset: 'Your password is changed and every session was signed out. Sign in with the new password.',
  account_deleted: 'Your account is deleted.',
} as const

export const ACCOUNT_NOTICES = {
  name_saved: 'Your name is saved.',
  name_cleared: 'Your name is removed.',
  password_changed: 'Your password is changed. Your other sessions were signed out.',
  session_revoked: 'The session is signed out.',
  token_revoked: 'The token is revoked. It no longer works.',
  totp_removed: 'The authenticator app is turned off. Your other sessions were signed out.',
  secret_saved: 'The secret is saved. It is sent with your requests to that route from now on.',
  secret_removed: 'The secret is removed. It is no longer sent.',
  passkey_added: 'Your passkey is added. Your other sessions were signed out.',
  passkey_removed: 'The passkey is removed. Your other sessions were signed out.',
} as const

export function noticeOf<T extends Record<string, string>>(notices: T, key: unknown): string | undefined {
  return typeof key === 'string' && Object.hasOwn(notices, key) ? notices[key as keyof T] : undefined
}
