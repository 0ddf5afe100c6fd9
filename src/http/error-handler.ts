/**
 * Renders every error the gateway answers itself as `{ statusCode, code, error, message }`
 * (SPEC §5), including fastify's own (validation, body size, content type) and 404s.
 * A 5xx never exposes the underlying message: it may name an internal address.
 */
import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { GatehouseError, errorCodes, type ErrorCode } from '../errors.js'
import { isBreakerOpen } from '../resilience/circuit-breaker.js'
import { isDependencyOutage } from '../resilience/outage.js'

export interface ErrorBody {
  statusCode: number
  code: ErrorCode
  error: string
  message: string
  [detail: string]: unknown
}

export function errorBody(err: GatehouseError): ErrorBody {
  return {
    ...(err.details ?? {}),
    statusCode: err.statusCode,
    code: err.code,
    error: STATUS_CODES[err.statusCode] ?? 'Error',
    message: err.statusCode >= 500 ? errorCodes[err.code].message : err.message,
  }
}

export function sendError(reply: FastifyReply, err: GatehouseError): FastifyReply {
  if (err.retryAfter !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(err.retryAfter))))
  if (err.statusCode === 401) reply.header('www-authenticate', 'Bearer realm="gatehouse"')
  return reply.code(err.statusCode).type('application/json; charset=utf-8').send(errorBody(err))
}

/** Maps fastify's own error codes to ours; anything unknown is an internal error. */
export function toGatehouseError(err: FastifyError | Error): GatehouseError {
  if (err instanceof GatehouseError) return err
  const fastifyError = err as Partial<FastifyError>
  if (fastifyError.validation) {
    const problems = fastifyError.validation.map((v) => {
      const path = (v.instancePath || '').replace(/^\//, '').replace(/\//g, '.')
      const missing = typeof v.params?.missingProperty === 'string' ? v.params.missingProperty : undefined
      const extra = typeof v.params?.additionalProperty === 'string' ? v.params.additionalProperty : undefined
      const field = missing ?? extra ?? path
      const what = extra ? 'is not an accepted field' : missing ? 'is required' : (v.message ?? 'is invalid')
      return { field: field || fastifyError.validationContext || 'body', message: `${field || 'body'} ${what}`.trim() }
    })
    return new GatehouseError('GH_VALIDATION', problems.map((p) => p.message).join('; '), { details: { problems } })
  }
  switch (fastifyError.code) {
    case 'FST_ERR_BAD_URL':
      return new GatehouseError('GH_BAD_PATH', 'The request path is not a valid URL')
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new GatehouseError('GH_VALIDATION', 'A path parameter is too long')
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatehouseError('GH_PAYLOAD_TOO_LARGE')
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatehouseError('GH_UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GatehouseError('GH_VALIDATION', 'Invalid Content-Length')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GatehouseError('GH_VALIDATION', 'The JSON body is empty')
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new GatehouseError('GH_VALIDATION', 'The body is not valid JSON')
  }
  if (err instanceof SyntaxError || fastifyError.statusCode === 400) {
    return new GatehouseError('GH_VALIDATION', 'The body is not valid JSON')
  }
  if (fastifyError.statusCode === 413) return new GatehouseError('GH_PAYLOAD_TOO_LARGE')
  if (fastifyError.statusCode === 415) return new GatehouseError('GH_UNSUPPORTED_MEDIA_TYPE')
  if (isBreakerOpen(err)) return new GatehouseError('GH_UNAVAILABLE', undefined, { cause: err, retryAfter: err.retryAfter })
  if (isDependencyOutage(err)) return new GatehouseError('GH_UNAVAILABLE', undefined, { cause: err, retryAfter: 1 })
  return new GatehouseError('GH_INTERNAL', undefined, { cause: err })
}

/**
 * For fastify's `frameworkErrors` option: errors the router raises before any route or hook
 * runs (a malformed percent-encoding, a path parameter over `maxParamLength`). Without it
 * fastify answers them with its own body, without our code or the request id.
 */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  // No hook runs for these answers: set what the hooks would have.
  reply.header('x-request-id', request.id).header('cache-control', 'no-store')
  void sendError(reply, toGatehouseError(err))
}

export function registerErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const mapped = toGatehouseError(err)
    if (mapped.statusCode >= 500) request.log.error({ err }, 'request failed')
    return sendError(reply, mapped)
  })
  app.setNotFoundHandler((_request, reply) => sendError(reply, new GatehouseError('GH_NOT_FOUND')))
}
