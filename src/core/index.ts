/** The framework-free core: users, passwords, sessions, login protection, permissions and the audit trail. */

export { AuditLog, type AuditEntry, type AuditEvent, type AuditEventType } from './audit.js'
export { ManualClock, systemClock, type Clock } from './clock.js'
export { constantTimeEqual, randomToken, sha256 } from './crypto.js'
export { MAX_EMAIL_LENGTH, normalizeEmail } from './email.js'
export { LoginThrottle, type LoginThrottleOptions } from './login-throttle.js'
export {
  DEFAULT_HASH_QUEUE,
  DEFAULT_HASH_QUEUE_TIMEOUT_MS,
  PasswordHasher,
  type Argon2Params,
  type PasswordHasherOptions,
} from './password-hasher.js'
export { checkPassword, MAX_PASSWORD_LENGTH, passwordLength, type PasswordPolicy } from './password-policy.js'
export { ALL_PERMISSIONS, hasPermission, permissionsFor } from './permissions.js'
export { Semaphore, type SemaphoreOptions } from './semaphore.js'
export {
  MAX_REFRESH_INTERVAL_MS,
  MAX_USER_AGENT_LENGTH,
  SessionService,
  type ActiveSession,
  type AuthMethod,
  type CreatedSession,
  type Session,
  type SessionServiceOptions,
} from './sessions.js'
export {
  MAX_NAME_LENGTH,
  MAX_PAGE_SIZE,
  UserService,
  type AuditContext,
  type ManagedUser,
  type RegisterInput,
  type RegisterOptions,
  type User,
  type UserPage,
  type UserServiceOptions,
} from './users.js'
