// Errors: the one catalogue (code → status, default message, rendering), BrokerError and its
// one-line JSON body, the factories every failure is built with, and the one handler that answers
// them. The pieces live in ./errors/; this module is what the rest of src/ imports.

export {
  BrokerError,
  type BrokerErrorOptions,
  type ErrorBody,
  type ErrorDetails,
  errorBody,
  errorBodySchema,
  isBrokerError,
} from './errors/broker-error.js'
export {
  type CatalogueEntry,
  CONSENT_FAILURE_REASONS,
  type ConsentFailureReason,
  ERROR_CATALOGUE,
  type ErrorCode,
  type ErrorRendering,
  isErrorCode,
  statusOf,
} from './errors/catalogue.js'
export * from './errors/factories.js'
export {
  type ErrorHandlerOptions,
  type HtmlErrorRenderer,
  isStoreOutage,
  makeErrorHandler,
  pathOf,
  type RouteShape,
  RouteTable,
  toBrokerError,
} from './errors/handler.js'
export * from './errors/token-factories.js'
export * from './errors/transport-factories.js'
