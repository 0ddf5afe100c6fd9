/**
 * JSON schemas of the /auth API: they validate requests (no extra fields, no type
 * coercion) and serialise responses (only the listed fields ever leave the gateway).
 */

export const errorSchema = {
  $id: 'Error',
  description: 'An error the gateway answers itself; `code` is stable (GH_VALIDATION, GH_FORBIDDEN, …)',
  type: 'object',
  required: ['statusCode', 'code', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
  additionalProperties: true,
} as const

export const userSchema = {
  $id: 'User',
  type: 'object',
  required: ['id', 'email', 'name', 'roles', 'email_verified', 'created_at'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    email: { type: 'string' },
    name: { type: ['string', 'null'] },
    roles: { type: 'array', items: { type: 'string' } },
    email_verified: { type: 'boolean', description: 'the user followed a verification link, or an OIDC provider vouched for the address' },
    created_at: { type: 'string', format: 'date-time' },
  },
  additionalProperties: false,
} as const

export const meSchema = {
  $id: 'Me',
  type: 'object',
  required: ['id', 'email', 'name', 'roles', 'email_verified', 'permissions', 'mfa', 'auth'],
  properties: {
    ...userSchema.properties,
    permissions: { type: 'array', items: { type: 'string' } },
    mfa: {
      type: 'object',
      required: ['totp', 'passkeys'],
      properties: { totp: { type: 'boolean' }, passkeys: { type: 'integer', description: 'How many passkeys are registered' } },
      additionalProperties: false,
    },
    auth: {
      type: 'object',
      required: ['method', 'expires_at', 'amr'],
      properties: {
        method: { type: 'string', enum: ['session', 'pat', 'jwt'] },
        expires_at: { type: ['string', 'null'], format: 'date-time' },
        amr: { type: 'array', items: { type: 'string', enum: ['pwd', 'oidc', 'otp', 'hwk', 'rcv', 'user', 'pat', 'jwt'] } },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} as const

export const sessionSchema = {
  $id: 'Session',
  type: 'object',
  required: ['id', 'created_at', 'last_seen_at', 'expires_at', 'ip', 'user_agent', 'current'],
  properties: {
    id: { type: 'string' },
    method: { type: 'string', enum: ['pwd', 'oidc', 'hwk'], description: 'The first factor' },
    amr: { type: 'array', items: { type: 'string' }, description: 'Every factor used' },
    created_at: { type: 'string', format: 'date-time' },
    last_seen_at: { type: 'string', format: 'date-time' },
    expires_at: { type: 'string', format: 'date-time' },
    ip: { type: ['string', 'null'] },
    user_agent: { type: ['string', 'null'] },
    current: { type: 'boolean' },
  },
  additionalProperties: false,
} as const

// Bounds here only keep absurd input away from the core, which applies the real policy
// (128 code points for passwords, 254 characters for emails) with precise messages.
const email = { type: 'string', minLength: 1, maxLength: 1024 } as const
const password = { type: 'string', minLength: 1, maxLength: 4096 } as const
const name = { type: ['string', 'null'], maxLength: 1024 } as const

export const registerBody = {
  type: 'object',
  required: ['email', 'password'],
  properties: { email, password, name },
  additionalProperties: false,
} as const

export const loginBody = {
  type: 'object',
  required: ['email', 'password'],
  // `next` is the hidden field of the HTML form; a JSON login ignores it.
  properties: { email, password, next: { type: 'string', maxLength: 4096 } },
  additionalProperties: false,
} as const

export const sessionStarted = {
  type: 'object',
  required: ['token', 'expires_at', 'user'],
  properties: {
    token: { type: 'string' },
    expires_at: { type: 'string', format: 'date-time' },
    user: { $ref: 'User#' },
    refresh_token: { type: 'string', description: 'With sessions.refresh_tokens: spend it at POST /auth/refresh' },
  },
  additionalProperties: false,
} as const

/** The password was right, and the user has a second factor: finish at POST /auth/login/mfa. */
export const mfaRequired = {
  type: 'object',
  required: ['mfa_required', 'mfa_token', 'methods'],
  properties: {
    mfa_required: { type: 'boolean', enum: [true] },
    mfa_token: { type: 'string', description: 'Single-use, valid 5 minutes: send it to POST /auth/login/mfa' },
    methods: { type: 'array', items: { type: 'string', enum: ['totp', 'webauthn', 'recovery'] } },
  },
  additionalProperties: false,
} as const

export const loginResponse = {
  description: 'A session; or, for a user with a second factor, what POST /auth/login/mfa needs',
  anyOf: [sessionStarted, mfaRequired],
} as const

export const totpEnrolment = {
  type: 'object',
  required: ['secret', 'otpauth_url', 'qr_svg'],
  properties: {
    secret: { type: 'string', description: 'Base32, to type into an authenticator app' },
    otpauth_url: { type: 'string' },
    qr_svg: { type: 'string', description: 'The otpauth URL as a QR code (an SVG document)' },
  },
  additionalProperties: false,
} as const

export const totpConfirmBody = {
  type: 'object',
  required: ['code'],
  properties: { code: { type: 'string', minLength: 1, maxLength: 16 } },
  additionalProperties: false,
} as const

export const recoveryCodes = {
  type: 'object',
  required: ['recovery_codes'],
  properties: { recovery_codes: { type: 'array', items: { type: 'string' }, description: 'Shown once; each works once' } },
  additionalProperties: false,
} as const

export const stepUpBody = {
  type: 'object',
  // Exactly one of code, recovery_code and webauthn (checked by the handler).
  properties: {
    code: { type: 'string', maxLength: 16 },
    recovery_code: { type: 'string', maxLength: 64 },
    webauthn: {
      anyOf: [{ type: 'object' }, { type: 'string', maxLength: 65536 }],
      description: 'A WebAuthn assertion (PublicKeyCredential as JSON; a form posts it as JSON text), for a challenge of POST /auth/login/step-up/webauthn/options',
    },
    next: { type: 'string', maxLength: 4096 },
  },
  additionalProperties: false,
} as const

export const stepUpResponse = {
  type: 'object',
  required: ['token', 'expires_at', 'amr'],
  properties: {
    token: { type: 'string', description: 'The new session token; the old one has ended' },
    expires_at: { type: 'string', format: 'date-time' },
    amr: { type: 'array', items: { type: 'string' } },
  },
  additionalProperties: false,
} as const

export const loginMfaBody = {
  type: 'object',
  required: ['mfa_token'],
  // Exactly one of code, recovery_code and webauthn (checked by the handler); `next` is the form's.
  properties: {
    mfa_token: { type: 'string', maxLength: 256 },
    code: { type: 'string', maxLength: 16 },
    recovery_code: { type: 'string', maxLength: 64 },
    webauthn: {
      anyOf: [{ type: 'object' }, { type: 'string', maxLength: 65536 }],
      description: 'A WebAuthn assertion (PublicKeyCredential as JSON; a form posts it as JSON text), for a challenge of POST /auth/login/mfa/webauthn/options',
    },
    next: { type: 'string', maxLength: 4096 },
  },
  additionalProperties: false,
} as const

export const refreshBody = {
  type: 'object',
  required: ['refresh_token'],
  properties: { refresh_token: { type: 'string', maxLength: 256 } },
  additionalProperties: false,
} as const

export const refreshResponse = {
  type: 'object',
  required: ['token', 'expires_at', 'refresh_token'],
  properties: {
    token: { type: 'string' },
    expires_at: { type: 'string', format: 'date-time' },
    refresh_token: { type: 'string', description: 'The next refresh token; the one sent is spent' },
  },
  additionalProperties: false,
} as const

export const patchMeBody = {
  type: 'object',
  required: ['name'],
  properties: { name },
  additionalProperties: false,
} as const

export const passwordBody = {
  type: 'object',
  required: ['current_password', 'new_password'],
  properties: { current_password: password, new_password: password },
  additionalProperties: false,
} as const

export const deleteMeBody = {
  type: 'object',
  required: ['password'],
  properties: { password },
  additionalProperties: false,
} as const

export const sessionList = {
  type: 'object',
  required: ['items', 'next_cursor'],
  properties: {
    items: { type: 'array', items: { $ref: 'Session#' } },
    next_cursor: { type: ['string', 'null'] },
  },
  additionalProperties: false,
} as const

export const adminUserSchema = {
  $id: 'AdminUser',
  type: 'object',
  required: [...userSchema.required, 'disabled'],
  properties: { ...userSchema.properties, disabled: { type: 'boolean' } },
  additionalProperties: false,
} as const

export const adminUserPage = {
  type: 'object',
  required: ['items', 'next_cursor'],
  properties: {
    items: { type: 'array', items: { $ref: 'AdminUser#' } },
    next_cursor: { type: ['string', 'null'] },
  },
  additionalProperties: false,
} as const

export const pageQuery = {
  type: 'object',
  properties: {
    limit: { type: 'string', pattern: '^(100|[1-9][0-9]?)$' },
    cursor: { type: 'string', minLength: 1, maxLength: 512 },
  },
  additionalProperties: false,
} as const

export const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
  additionalProperties: false,
} as const

export const adminPatchBody = {
  type: 'object',
  minProperties: 1,
  properties: {
    roles: { type: 'array', items: { type: 'string', minLength: 1, maxLength: 100 }, maxItems: 50, uniqueItems: true },
    disabled: { type: 'boolean' },
  },
  additionalProperties: false,
} as const

export const tokenSchema = {
  $id: 'Token',
  type: 'object',
  required: ['id', 'name', 'token', 'permissions', 'expires_at', 'last_used_at', 'created_at', 'expired'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    token: { type: 'string', description: 'masked: pat_abcd…wxyz' },
    permissions: { type: ['array', 'null'], items: { type: 'string' } },
    expires_at: { type: ['string', 'null'], format: 'date-time' },
    last_used_at: { type: ['string', 'null'], format: 'date-time' },
    created_at: { type: 'string', format: 'date-time' },
    expired: { type: 'boolean' },
  },
  additionalProperties: false,
} as const

export const createTokenBody = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 1024 },
    expires_in_days: { type: ['integer', 'null'], minimum: 1, maximum: 3650 },
    permissions: { type: ['array', 'null'], items: { type: 'string', minLength: 1, maxLength: 200 }, maxItems: 100 },
  },
  additionalProperties: false,
} as const

export const createdToken = {
  type: 'object',
  required: [...tokenSchema.required, 'mask'],
  properties: {
    ...tokenSchema.properties,
    token: { type: 'string', description: 'the token itself, shown only in this answer' },
    mask: { type: 'string' },
  },
  additionalProperties: false,
} as const

export const tokenList = {
  type: 'object',
  required: ['items', 'next_cursor'],
  properties: { items: { type: 'array', items: { $ref: 'Token#' } }, next_cursor: { type: ['string', 'null'] } },
  additionalProperties: false,
} as const

export const auditEventSchema = {
  $id: 'AuditEvent',
  type: 'object',
  required: ['id', 'type', 'user_id', 'email', 'ip', 'details', 'created_at'],
  properties: {
    id: { type: 'string', description: 'increasing with time' },
    type: { type: 'string', description: 'login.succeeded, login.failed (details.reason), login.locked, user.roles_changed, token.created, …' },
    user_id: { type: ['string', 'null'], description: 'the user the event is about; null for an unknown email' },
    email: { type: ['string', 'null'] },
    ip: { type: ['string', 'null'] },
    details: { type: 'object', additionalProperties: true, description: 'what changed; `actor_id` when an administrator did it' },
    created_at: { type: 'string', format: 'date-time' },
  },
  additionalProperties: false,
} as const

export const auditPage = {
  type: 'object',
  required: ['items', 'next_cursor'],
  properties: {
    items: { type: 'array', items: { $ref: 'AuditEvent#' } },
    next_cursor: { type: ['string', 'null'] },
  },
  additionalProperties: false,
} as const

export const auditQuery = {
  type: 'object',
  properties: {
    user: { type: 'string', minLength: 1, maxLength: 1024, description: 'a user id, or an email' },
    type: { type: 'string', minLength: 1, maxLength: 100, description: 'an event type (login.failed) or a family (login)' },
    cursor: { type: 'string', minLength: 1, maxLength: 64 },
    limit: { type: 'string', pattern: '^(100|[1-9][0-9]?)$' },
  },
  additionalProperties: false,
} as const

export const sharedSchemas = [errorSchema, userSchema, meSchema, sessionSchema, adminUserSchema, tokenSchema, auditEventSchema] as const

// Answers that are not JSON objects, and the error answers every endpoint shares; used as
// route response schemas, so they also serialise (the Error schema keeps documented extras
// such as `problems` or `missing_permission`).

/** Every 4xx and 5xx the gateway answers itself: `{statusCode, code, error, message}`. */
export const errorResponses = {
  '4xx': { $ref: 'Error#' },
  '5xx': { $ref: 'Error#' },
} as const

export const noContent = { type: 'null', description: 'No Content' } as const

export const htmlPage = (description: string) =>
  ({ description, content: { 'text/html': { schema: { type: 'string' } } } }) as const

/** A browser form's answer: the error as an HTML page; an API client's: the JSON error. */
export const jsonOrHtmlError = {
  description: 'An error: JSON `{statusCode, code, error, message}`, or the sign-in page again for a form post',
  content: { 'application/json': { schema: { $ref: 'Error#' } }, 'text/html': { schema: { type: 'string' } } },
} as const

export const loginPageQuery = {
  type: 'object',
  properties: {
    next: { type: 'string', description: 'Where to go after signing in: a local path; anything else becomes /' },
    notice: { type: 'string', description: 'A confirmation to show (registered, email_verified, password_reset, …); unknown ones are ignored' },
  },
  // Unknown parameters are ignored, as browsers and links may add any.
  additionalProperties: true,
} as const

export const cssAsset = {
  description: 'The sign-in page stylesheet',
  content: { 'text/css': { schema: { type: 'string' } } },
} as const

export const loginRedirect = {
  type: 'null',
  description: 'A form post signed in: see Other, to the safe `next` (a local path, else /)',
  headers: { location: { type: 'string' } },
} as const

export const signOutRedirect = {
  type: 'null',
  description: 'A form post signed out: see Other, to the login page',
  headers: { location: { type: 'string' } },
} as const

const componentHealth = {
  type: 'object',
  required: ['status', 'latency_ms'],
  properties: {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    latency_ms: { type: 'number' },
  },
  additionalProperties: false,
} as const

const healthComponents = {
  type: 'object',
  properties: { database: componentHealth, sessions: componentHealth },
  additionalProperties: componentHealth,
} as const

const upstreamServers = {
  type: 'object',
  description: "Each route's upstream servers by index (1, 2, …) in the configured order, never their addresses",
  additionalProperties: {
    type: 'array',
    items: {
      type: 'object',
      required: ['server', 'state'],
      properties: {
        server: { type: 'integer', minimum: 1 },
        state: { type: 'string', enum: ['up', 'ejected', 'unhealthy'], description: 'ejected: refused a connection (10 s); unhealthy: failing its health checks' },
      },
      additionalProperties: false,
    },
  },
} as const

export const healthResponse = {
  type: 'object',
  description: 'The gateway and its dependencies; 503 when one is unavailable (upstream servers do not change the status)',
  required: ['status', 'version', 'components'],
  properties: {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    version: { type: 'string' },
    components: healthComponents,
    upstreams: upstreamServers,
  },
  additionalProperties: false,
} as const

export const readinessResponse = {
  type: 'object',
  description: 'Ready to serve: every dependency answers; 503 otherwise',
  required: ['status', 'components'],
  properties: {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    components: healthComponents,
  },
  additionalProperties: false,
} as const

export const livenessResponse = {
  type: 'object',
  description: 'The process is alive (no dependency is checked)',
  required: ['status'],
  properties: { status: { type: 'string', enum: ['ok'] } },
  additionalProperties: false,
} as const

export const jwksResponse = {
  type: 'object',
  description: 'The public keys that verify X-Auth-Assertion (Ed25519, EdDSA)',
  required: ['keys'],
  properties: {
    keys: {
      type: 'array',
      items: {
        type: 'object',
        required: ['kty', 'crv', 'x', 'kid', 'alg', 'use'],
        properties: {
          kty: { type: 'string' },
          crv: { type: 'string' },
          x: { type: 'string' },
          kid: { type: 'string' },
          alg: { type: 'string' },
          use: { type: 'string' },
        },
        additionalProperties: true,
      },
    },
  },
  additionalProperties: false,
} as const
