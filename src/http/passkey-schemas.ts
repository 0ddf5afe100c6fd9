/**
 * JSON schemas of the passkey endpoints. The WebAuthn objects themselves (the options the
 * browser is given, the credential it answers with) are checked by @simplewebauthn/server;
 * here they are bounded in size and shape so that nothing absurd reaches it.
 */

const b64url = (maxLength: number) => ({ type: 'string', maxLength, pattern: '^[A-Za-z0-9_-]*={0,2}$' }) as const

/** `PublicKeyCredential.toJSON()` of a create() or get(), as @simplewebauthn/browser sends it. */
export const credentialJson = {
  type: 'object',
  description: 'The PublicKeyCredential the browser answered with (RegistrationResponseJSON or AuthenticationResponseJSON)',
  required: ['id', 'rawId', 'type', 'response'],
  properties: {
    id: b64url(1024),
    rawId: b64url(1024),
    type: { type: 'string', const: 'public-key' },
    response: {
      type: 'object',
      required: ['clientDataJSON'],
      properties: {
        clientDataJSON: b64url(8192),
        attestationObject: b64url(65536),
        authenticatorData: b64url(8192),
        signature: b64url(1024),
        userHandle: b64url(1024),
        transports: { type: 'array', maxItems: 10, items: { type: 'string', maxLength: 32 } },
        publicKeyAlgorithm: { type: 'integer' },
        publicKey: b64url(8192),
      },
      additionalProperties: false,
    },
    authenticatorAttachment: { type: 'string', maxLength: 32 },
    clientExtensionResults: { type: 'object', additionalProperties: true, maxProperties: 20 },
  },
  additionalProperties: false,
} as const

export const passkeySchema = {
  $id: 'Passkey',
  type: 'object',
  required: ['id', 'name', 'created_at', 'last_used_at', 'transports', 'backed_up'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    name: { type: 'string' },
    created_at: { type: 'string', format: 'date-time' },
    last_used_at: { type: ['string', 'null'], format: 'date-time' },
    transports: { type: 'array', items: { type: 'string' } },
    backed_up: { type: 'boolean', description: 'the authenticator says the credential is synced (a multi-device passkey)' },
  },
  additionalProperties: false,
} as const

export const passkeyList = {
  type: 'object',
  required: ['items', 'next_cursor'],
  properties: { items: { type: 'array', items: { $ref: 'Passkey#' } }, next_cursor: { type: 'null' } },
  additionalProperties: false,
} as const

export const registerPasskeyBody = {
  type: 'object',
  required: ['name', 'response'],
  properties: { name: { type: 'string', maxLength: 1024 }, response: credentialJson },
  additionalProperties: false,
} as const

/** An empty object, or no body at all. */
export const emptyBody = { type: ['object', 'null'], properties: {}, additionalProperties: false } as const

/** The options handed to navigator.credentials.create()/get(), as JSON (base64url for bytes). */
export const webauthnOptions = (description: string) =>
  ({ type: 'object', description, additionalProperties: true }) as const

export const passkeyLoginBody = {
  type: 'object',
  required: ['response'],
  properties: { response: credentialJson },
  additionalProperties: false,
} as const

export const passkeyIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 64 } },
  additionalProperties: false,
} as const

export const mfaPasskeyOptionsBody = {
  type: 'object',
  required: ['mfa_token'],
  properties: { mfa_token: { type: 'string', maxLength: 256, description: 'The mfa_token of the password step' } },
  additionalProperties: false,
} as const
