// Factories of the failures the HTTP layer answers before (or instead of) a route: the framework's
// and Node's own refusals and the connection cap. Kept apart from factories.ts (the routes' and
// services' failures); both build from the one catalogue.
import { BrokerError, withCause } from './broker-error.js'
import { ERROR_CATALOGUE } from './catalogue.js'
import { invalidRequest } from './factories.js'

/** 415 `unsupported_media_type`: the body's content type has no parser on this route. */
export function unsupportedMediaType(cause?: unknown): BrokerError {
  return new BrokerError(
    'unsupported_media_type',
    ERROR_CATALOGUE.unsupported_media_type.message,
    withCause(cause),
  )
}

/** 414 `uri_too_long`: a path parameter is longer than the router accepts. */
export function uriTooLong(cause?: unknown): BrokerError {
  return new BrokerError('uri_too_long', ERROR_CATALOGUE.uri_too_long.message, withCause(cause))
}

/** 400: the URL's path is not validly percent-encoded (not echoed). */
export function malformedUrl(cause?: unknown): BrokerError {
  return invalidRequest('the URL is not validly percent-encoded', cause)
}

/** 408 `request_timeout`: headers and body did not arrive within REQUEST_TIMEOUT_MS. */
export function requestTimedOut(): BrokerError {
  return new BrokerError('request_timeout', ERROR_CATALOGUE.request_timeout.message)
}

/** 431 `headers_too_large`: the request headers passed Node's limit. */
export function headersTooLarge(): BrokerError {
  return new BrokerError('headers_too_large', ERROR_CATALOGUE.headers_too_large.message)
}

/** 400: bytes that are not an HTTP request. */
export function malformedHttp(): BrokerError {
  return invalidRequest('the request is not valid HTTP')
}

/** 400: a CONNECT request (this server is no proxy). */
export function connectNotServed(): BrokerError {
  return invalidRequest('CONNECT is not served: this server is not a proxy')
}

/** 400: an HTTP/1.1 request without a Host header (RFC 9112 §3.2 makes it invalid). */
export function hostHeaderMissing(): BrokerError {
  return invalidRequest('an HTTP/1.1 request needs a Host header')
}

/** 503 `too_many_connections`: the address already holds MAX_CONNECTIONS_PER_IP connections. */
export function tooManyConnections(): BrokerError {
  return new BrokerError('too_many_connections', ERROR_CATALOGUE.too_many_connections.message, {
    retryAfter: 1,
  })
}
