// BrokerError, the one error type a request fails with, and the one-line JSON body it renders as.
// Every JSON error body is a single line, `{"error":{"code","message",…details},"message","request_id"}`,
// because the XSOAR client shows the first one-line `{…}` of an error body as `code: message`.
import { type ErrorCode, statusOf } from './catalogue.js'

/** Non-secret fields merged into the `error` object of the body (e.g. `consent_url`). */
export type ErrorDetails = Record<string, string | number | boolean | null>

/** What a factory may add to a BrokerError beyond its code and message. */
export interface BrokerErrorOptions {
  /** The underlying failure, logged for 5xx answers; never sent to the caller. */
  cause?: unknown
  /** Seconds; sent as `Retry-After` (rounded up, at least 1). */
  retryAfter?: number
  /** Extra, non-secret fields merged into the `error` object (e.g. `consent_url`). */
  details?: ErrorDetails
  /**
   * A 5xx that is the instance's announced state rather than a fault (the readiness probe while
   * shutting down): logged at debug instead of error, since a probe asks every few seconds.
   */
  expected?: boolean
}

/** The options carrying `cause` when there is one (the factories' `cause?` argument). */
export function withCause(cause: unknown): BrokerErrorOptions {
  return cause === undefined ? {} : { cause }
}

/**
 * A failure answered to the caller: a catalogued code (which fixes the HTTP status), a message
 * safe to show, and optionally `Retry-After` and details. Build one through a factory of
 * `src/errors/` (factories.ts, token-factories.ts, transport-factories.ts), not with `new`, so every
 * message of a code is stated once.
 */
export class BrokerError extends Error {
  override readonly name = 'BrokerError'
  /** The catalogued code, sent as `error.code`. */
  readonly code: ErrorCode
  /** The HTTP status the catalogue gives `code`. */
  readonly statusCode: number
  /** Seconds, sent as `Retry-After`; undefined sends none. */
  readonly retryAfter: number | undefined
  /** Extra fields of the body's `error` object. */
  readonly details: ErrorDetails | undefined
  /** An announced state, not a fault: not logged at error (see BrokerErrorOptions). */
  readonly expected: boolean

  constructor(code: ErrorCode, message: string, options: BrokerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.statusCode = statusOf(code)
    this.retryAfter = options.retryAfter
    this.details = options.details
    this.expected = options.expected === true
  }
}

/** True for a BrokerError (from this module). */
export function isBrokerError(value: unknown): value is BrokerError {
  return value instanceof BrokerError
}

/** The JSON body of every error answer. */
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

/** The body for `error` answered to request `requestId`; details never override code or message. */
export function errorBody(error: BrokerError, requestId: string): ErrorBody {
  return {
    error: { ...error.details, code: error.code, message: error.message },
    message: error.message,
    request_id: requestId,
  }
}
