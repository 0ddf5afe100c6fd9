/**
 * Every error the gateway answers itself, with its stable code and HTTP status.
 * The core throws these; the HTTP layer renders them as `{ statusCode, code, error, message }`.
 */

export const errorCodes = {
  GH_VALIDATION: { status: 400, message: 'The request is invalid' },
  GH_BAD_PATH: { status: 400, message: 'The request path is not allowed' },
  GH_AMBIGUOUS_CREDENTIALS: { status: 400, message: 'More than one credential was sent' },
  GH_INVALID_CREDENTIALS: { status: 401, message: 'Invalid email or password' },
  GH_UNAUTHENTICATED: { status: 401, message: 'Authentication is required' },
  GH_FORBIDDEN: { status: 403, message: 'Forbidden' },
  GH_CSRF: { status: 403, message: 'Cross-site request refused' },
  GH_REGISTRATION_CLOSED: { status: 403, message: 'Registration is closed' },
  GH_EMAIL_UNVERIFIED: { status: 403, message: 'The email address is not verified yet' },
  GH_MFA_REQUIRED: { status: 403, message: 'This needs a sign-in with a second factor' },
  GH_MFA_ENROLMENT_REQUIRED: { status: 403, message: 'Set up a second factor first, at /auth/account' },
  GH_TOKEN_INVALID: { status: 400, message: 'The link is invalid, expired or already used' },
  GH_OIDC_INVALID: { status: 400, message: 'The sign-in response from the provider is not valid' },
  GH_OIDC_REFUSED: { status: 403, message: 'Sign-in with this provider was refused' },
  GH_NOT_FOUND: { status: 404, message: 'Not found' },
  GH_METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed' },
  GH_EMAIL_TAKEN: { status: 409, message: 'This email is already registered' },
  GH_PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large' },
  GH_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported content type' },
  GH_RATE_LIMITED: { status: 429, message: 'Too many requests' },
  GH_INTERNAL: { status: 500, message: 'Internal error' },
  GH_BAD_GATEWAY: { status: 502, message: 'The upstream could not be reached' },
  GH_UNAVAILABLE: { status: 503, message: 'A dependency is unavailable' },
  GH_OVERLOADED: { status: 503, message: 'The gateway is overloaded, retry later' },
  GH_OIDC_UNAVAILABLE: { status: 503, message: 'The sign-in provider is unavailable, retry later' },
  GH_GATEWAY_TIMEOUT: { status: 504, message: 'The upstream did not answer in time' },
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof errorCodes

export class GatehouseError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  /** Extra machine-readable fields merged into the JSON body (e.g. `missing_permission`). */
  readonly details: Readonly<Record<string, unknown>> | undefined
  /** Seconds, for 429 and 503 answers. */
  readonly retryAfter: number | undefined
  /**
   * Why, in a word, for the log only (`wrong_password`, `locked`): never sent to the client,
   * whose answer must not tell an unknown email from a wrong password.
   */
  readonly reason: string | undefined

  constructor(
    code: ErrorCode,
    message?: string,
    options: {
      details?: Record<string, unknown>
      retryAfter?: number
      cause?: unknown
      /** Another status than the code's own, where a transport cannot carry that one (forward auth behind nginx). */
      status?: number
      /** For the log only (why a login failed), never sent to the client. */
      reason?: string
    } = {},
  ) {
    super(message ?? errorCodes[code].message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'GatehouseError'
    this.code = code
    this.statusCode = options.status ?? errorCodes[code].status
    this.details = options.details
    this.retryAfter = options.retryAfter
    this.reason = options.reason
  }
}

export function isGatehouseError(err: unknown): err is GatehouseError {
  return err instanceof GatehouseError
}
