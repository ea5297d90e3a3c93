// The answers of the OpenAPI document that no route states itself: those of the HTTP layer (Node's
// refusals, the connection cap), of the JSON-only body parsers, of the router's parameter bound and
// of the operator token check, and the headers answers carry. Each is stated here once and added to
// an operation by what the operation is (its method, path parameters and security), so the document
// lists every status the server really answers without a status list copied into each route.
// Documentation only: the routes' own schemas, and so what the server sends, are untouched.
import { ERROR_CATALOGUE, type ErrorCode, errorBodySchema } from '../errors.js'

/** What the added answers of an operation depend on. */
export interface OperationShape {
  /** The route's method(s). */
  method: string | readonly string[]
  /** The route's URL pattern (`/admin/api/registrations/:id`). */
  url: string
  /** The operation's security requirements, as documented. */
  security?: ReadonlyArray<Record<string, unknown>>
  /** MAX_CONNECTIONS_PER_IP is set: a connection past it is answered 503 before any request. */
  connectionCap: boolean
}

/** The methods Fastify reads a body for (`bodywith`): a wrong type or size is refused before the route. */
const BODY_METHODS = new Set(['DELETE', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'QUERY'])

const REQUEST_ID_HEADER = {
  type: 'string',
  description:
    "The request's id (the caller's well-formed `X-Request-Id`, else generated); also the body's `request_id` and in every log line of the request",
} as const

const RETRY_AFTER_HEADER = {
  type: 'integer',
  minimum: 1,
  description: 'Seconds to wait before retrying, with the codes whose documentation says so',
} as const

const WWW_AUTHENTICATE_HEADER = {
  type: 'string',
  description: 'With a missing or wrong operator token: `Bearer realm="consent-broker operators"`',
} as const

/** The statuses whose answers may carry `Retry-After` (rate limits, outages, timeouts). */
const RETRY_AFTER_STATUSES = new Set(['429', '503', '504'])

/**
 * The catalogued codes the server may answer `operation` with before (or instead of) its route:
 *  - any request: `request_timeout` (headers and body not arrived within REQUEST_TIMEOUT_MS) and
 *    `headers_too_large` (Node's clientError), `too_many_connections` when the cap is set;
 *  - a method with a body: `payload_too_large` and `unsupported_media_type` (JSON only);
 *  - path parameters: `uri_too_long` (longer than the router accepts);
 *  - the operator token: `unauthorized`, `rate_limited` (too many wrong tokens from the address)
 *    and `store_unavailable` (the throttle lives in the store).
 * A malformed request (bytes that are not HTTP) names no operation; an unknown path (404) or a wrong
 * method (405) is not an operation of the document either, so none is added here.
 */
function layerCodes(operation: OperationShape): ErrorCode[] {
  const codes: ErrorCode[] = ['request_timeout', 'headers_too_large']
  if (operation.connectionCap) codes.push('too_many_connections')
  const methods = typeof operation.method === 'string' ? [operation.method] : operation.method
  if (methods.some((method) => BODY_METHODS.has(method.toUpperCase()))) {
    codes.push('payload_too_large', 'unsupported_media_type')
  }
  if (operation.url.split('/').some((segment) => segment.startsWith(':'))) codes.push('uri_too_long')
  if (isOperatorAuthenticated(operation)) codes.push('unauthorized', 'rate_limited', 'store_unavailable')
  return codes
}

function isOperatorAuthenticated(operation: OperationShape): boolean {
  return (operation.security ?? []).some((requirement) => Object.hasOwn(requirement, 'operatorToken'))
}

type ResponseSchema = Record<string, unknown>

/**
 * `responses` (a route's `schema.response`) with the answers of `layerCodes(operation)` added (a
 * status the route already lists keeps its schema) and the headers every answer carries declared:
 * `X-Request-Id` on all, `Retry-After` on 429, 503 and 504, `WWW-Authenticate` on an operator
 * operation's 401. A new object: the route's schemas are shared and stay as they are.
 */
export function withLayerResponses(
  responses: Readonly<Record<string, unknown>> | undefined,
  operation: OperationShape,
): Record<string, ResponseSchema> {
  const result: Record<string, ResponseSchema> = {}
  for (const [status, schema] of Object.entries(responses ?? {})) result[status] = { ...(schema as object) }
  const added = new Map<string, ErrorCode[]>()
  for (const code of layerCodes(operation)) {
    const status = String(ERROR_CATALOGUE[code].status)
    added.set(status, [...(added.get(status) ?? []), code])
  }
  for (const [status, codes] of added) {
    result[status] ??= {
      ...errorBodySchema,
      // The response's description, kept out of the body's schema.
      'x-response-description': codes
        .map((code) => `\`${code}\`: ${ERROR_CATALOGUE[code].message}`)
        .join('; '),
    }
  }
  const operatorAuthenticated = isOperatorAuthenticated(operation)
  for (const [status, schema] of Object.entries(result)) {
    schema.headers = {
      ...(schema.headers as object | undefined),
      'X-Request-Id': REQUEST_ID_HEADER,
      ...(RETRY_AFTER_STATUSES.has(status) ? { 'Retry-After': RETRY_AFTER_HEADER } : {}),
      ...(status === '401' && operatorAuthenticated ? { 'WWW-Authenticate': WWW_AUTHENTICATE_HEADER } : {}),
    }
  }
  return result
}
