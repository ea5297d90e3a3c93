// One catalogue of error codes → HTTP status, and one handler that renders them. Every JSON error
// body is a single line, `{"error":{"code","message"},"message","request_id"}`, because the
// XSOAR client shows the first one-line `{…}` of an error body as `code: message`.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

export const ERROR_CATALOGUE = {
  invalid_request: 400,
  invalid_scope: 400,
  unknown_app: 400,
  unauthorized: 401,
  unknown_registration: 401,
  invalid_key: 401,
  stale_token: 401,
  replayed_token: 401,
  token_mismatch: 401,
  revoked: 401,
  consent_required: 401,
  csrf_failed: 403,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  internal_error: 500,
  broker_misconfigured: 502,
  upstream_error: 502,
  upstream_unavailable: 503,
  upstream_throttled: 503,
  not_ready: 503,
  store_unavailable: 503,
  upstream_timeout: 504,
} as const satisfies Record<string, number>

export type ErrorCode = keyof typeof ERROR_CATALOGUE

export interface BrokerErrorOptions {
  cause?: unknown
  /** Seconds; sent as `Retry-After`. */
  retryAfter?: number
  /** Extra, non-secret fields merged into the `error` object (e.g. `consent_url`). */
  details?: Record<string, string | number | boolean | null>
}

export class BrokerError extends Error {
  override readonly name = 'BrokerError'
  readonly code: ErrorCode
  readonly statusCode: number
  readonly retryAfter: number | undefined
  readonly details: Record<string, string | number | boolean | null> | undefined

  constructor(code: ErrorCode, message: string, options: BrokerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.statusCode = ERROR_CATALOGUE[code]
    this.retryAfter = options.retryAfter
    this.details = options.details
  }
}

export function isBrokerError(value: unknown): value is BrokerError {
  return value instanceof BrokerError
}

export interface ErrorBody {
  error: { code: string; message: string; [extra: string]: string | number | boolean | null }
  message: string
  request_id: string
}

/** JSON schema of every error body, for route response schemas. */
export const errorBodySchema = {
  type: 'object',
  required: ['error', 'message', 'request_id'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
      additionalProperties: true,
    },
    message: { type: 'string' },
    request_id: { type: 'string' },
  },
} as const

export function errorBody(error: BrokerError, requestId: string): ErrorBody {
  return {
    error: { ...error.details, code: error.code, message: error.message },
    message: error.message,
    request_id: requestId,
  }
}

/** Maps anything thrown inside a request to a BrokerError; unknown errors become a generic 500. */
export function toBrokerError(error: unknown): BrokerError {
  if (isBrokerError(error)) return error
  const fastifyError = error as Partial<FastifyError> | undefined
  if (fastifyError?.validation) {
    const context = fastifyError.validationContext ?? 'request'
    const message = fastifyError.message ?? 'is invalid'
    // Fastify's own messages already start with the context (`querystring/limit must be …`).
    const named = message.startsWith(`${context}/`) || message.startsWith(`${context} `)
    return new BrokerError('invalid_request', (named ? message : `${context} ${message}`).trim(), {
      cause: error,
    })
  }
  switch (fastifyError?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BrokerError('payload_too_large', 'request body is too large', { cause: error })
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new BrokerError('invalid_request', fastifyError.message ?? 'request body is invalid', {
        cause: error,
      })
  }
  if (fastifyError?.statusCode === 400 && typeof fastifyError.message === 'string') {
    // e.g. malformed JSON: Fastify's own 400s carry a safe message
    return new BrokerError('invalid_request', 'request body is not valid JSON', { cause: error })
  }
  if (fastifyError?.statusCode === 404) return new BrokerError('not_found', 'not found', { cause: error })
  if (isStoreOutage(error)) {
    return new BrokerError('store_unavailable', 'the broker cannot reach its store; retry shortly', {
      cause: error,
      retryAfter: 5,
    })
  }
  return new BrokerError('internal_error', 'internal error; quote the request_id to the operator', {
    cause: error,
  })
}

const OUTAGE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
])

/**
 * Redis unreachable (ioredis gives up after its retries, or the socket failed): a transient 503 the
 * caller may retry, not a broker bug.
 */
/** The store (Redis) is unreachable: refused, dropped, timed out, or out of reconnect attempts. */
export function isStoreOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (error.name === 'MaxRetriesPerRequestError') return true
  if (error.message === 'Connection is closed.' || error.message.startsWith("Stream isn't writeable"))
    return true
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && OUTAGE_CODES.has(code)
}

export type HtmlErrorRenderer = (error: BrokerError, request: FastifyRequest) => string

/**
 * The one error handler. Routes that render HTML set `config.html = true`; the rest get JSON.
 * 5xx causes are logged (they are ours to fix); 4xx are the caller's and logged at info.
 */
export function makeErrorHandler(renderHtml: HtmlErrorRenderer) {
  return function brokerErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply) {
    const brokerError = toBrokerError(error)
    if (brokerError.statusCode >= 500) {
      request.log.error({ err: brokerError.cause ?? brokerError, code: brokerError.code }, 'request failed')
    } else {
      request.log.info({ code: brokerError.code, reason: brokerError.message }, 'request rejected')
    }
    if (brokerError.retryAfter !== undefined)
      reply.header('retry-after', String(Math.max(1, Math.ceil(brokerError.retryAfter))))
    reply.header('cache-control', 'no-store')
    reply.status(brokerError.statusCode)
    const wantsHtml = (request.routeOptions.config as { html?: boolean } | undefined)?.html === true
    if (wantsHtml) {
      return reply.type('text/html; charset=utf-8').send(renderHtml(brokerError, request))
    }
    return reply
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(errorBody(brokerError, request.id)))
  }
}
