/**
 * What a user secret may hold (SPEC §5: at most 4 KiB): text that goes into one HTTP header
 * unchanged. Refused rather than encoded, so that the upstream reads exactly what was stored.
 */
import { GatehouseError } from '../../errors.js'

/** 4 KiB: the value is visible ASCII, so characters and bytes are the same count. */
export const MAX_SECRET_BYTES = 4096

/** Tab, space and visible ASCII: what an HTTP field value carries unchanged through any parser. */
const FIELD_VALUE = /^[\t\x20-\x7e]*$/

/** `value` when it can be stored and sent as it is; GH_VALIDATION (`details.field: value`, `reason`) otherwise. */
export function checkSecretValue(value: unknown): string {
  if (typeof value !== 'string') throw invalid('type', `value must be a string, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`)
  if (value === '') throw invalid('empty', 'value must not be empty; DELETE the secret to remove it')
  if (Buffer.byteLength(value, 'utf8') > MAX_SECRET_BYTES) throw invalid('too_long', `value must be at most ${MAX_SECRET_BYTES} bytes (4 KiB)`)
  if (!FIELD_VALUE.test(value)) {
    throw invalid('characters', 'value must be printable ASCII (spaces and tabs allowed): control characters and other characters cannot travel in an HTTP header')
  }
  // Header parsers drop surrounding whitespace: the upstream would not get what was stored.
  if (value.trim() !== value) throw invalid('whitespace', 'value must not start or end with a space or tab')
  return value
}

function invalid(reason: string, message: string): GatehouseError {
  return new GatehouseError('GH_VALIDATION', message, { details: { field: 'value', reason } })
}
