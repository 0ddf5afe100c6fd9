/**
 * HTML form posts next to the JSON API: recognising them, reading their fields, and what a
 * refused one says. A browser form sends every field as text; a field sent twice arrives as
 * a list and counts as absent.
 */
import type { FastifyRequest } from 'fastify'
import { GatehouseError } from '../errors.js'
import { toGatehouseError } from './error-handler.js'

export const FORM = 'application/x-www-form-urlencoded'

export function isForm(request: FastifyRequest): boolean {
  return (request.headers['content-type'] ?? '').toLowerCase().startsWith(FORM)
}

/** The text of one field, or '' when it is absent, repeated or not text. */
export function field(body: unknown, name: string): string {
  if (typeof body !== 'object' || body === null) return ''
  const value = (body as Record<string, unknown>)[name]
  return typeof value === 'string' ? value : ''
}

/** A form body schema: the named text fields, each at most `maxLength`; `required` ones must be present. */
export function formBodySchema(fields: Record<string, string>, required: readonly string[] = [], maxLength = 4096) {
  return {
    type: 'object',
    required: [...required],
    properties: Object.fromEntries(Object.entries(fields).map(([name, description]) => [name, { type: 'string', maxLength, description }])),
    additionalProperties: false,
  } as const
}

/** The error a failed schema validation stands for, in words a form can show. */
export function formValidationError(request: FastifyRequest): GatehouseError | null {
  if (!request.validationError) return null
  const err = toGatehouseError(request.validationError)
  return new GatehouseError('GH_VALIDATION', 'The form was incomplete or a field was too long. Check each field and send it again.', {
    details: err.details as Record<string, unknown> | undefined,
  })
}

/** GH_VALIDATION about one field, with the message the form shows. */
export function invalidField(fieldName: string, message: string): GatehouseError {
  return new GatehouseError('GH_VALIDATION', message, { details: { field: fieldName } })
}
