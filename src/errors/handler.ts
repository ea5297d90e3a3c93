// The one handler: everything a request fails with — a BrokerError from a service, Fastify's own
// parser and validation errors, a store outage, a route that does not exist, a wrong method, a
// bug — becomes a catalogued code here and is answered the same way: one line of JSON on API
// paths, a page on browser paths, `Retry-After` and `Allow` where the catalogue's code calls for
// them, never cached.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { isStoreFact } from '../store/store-facts.js'
import { BrokerError, errorBody } from './broker-error.js'
import {
  bodyNotJson,
  internalError,
  invalidRequest,
  methodNotAllowed,
  notFound,
  payloadTooLarge,
  routeNotFound,
  storeFactError,
  storeUnavailable,
} from './factories.js'
import { malformedUrl, unsupportedMediaType, uriTooLong } from './transport-factories.js'

/** Socket-level failures of the store connection. */
const OUTAGE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
])

/**
 * The store (Redis) is unreachable: refused, dropped, out of reconnect attempts, or hung (ioredis
 * rejects a command that got no answer within `commandTimeout` with "Command timed out"). A
 * transient 503 the caller may retry, not a broker bug.
 */
export function isStoreOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  if (error.name === 'MaxRetriesPerRequestError') return true
  if (
    error.message === 'Connection is closed.' ||
    error.message === 'Command timed out' ||
    error.message.startsWith("Stream isn't writeable")
  )
    return true
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && OUTAGE_CODES.has(code)
}

/**
 * Maps anything thrown inside a request to a BrokerError: BrokerErrors pass through, a store's
 * refusal (StoreFact) becomes its catalogued code, Fastify's
 * validation and body-parser errors become `invalid_request` / `payload_too_large`, store outages
 * `store_unavailable`, and everything else a generic `internal_error` whose message reveals nothing.
 */
export function toBrokerError(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error
  if (isStoreFact(error)) return storeFactError(error)
  const fastifyError = error as Partial<FastifyError> | undefined
  if (fastifyError?.validation) {
    const context = fastifyError.validationContext ?? 'request'
    const message = fastifyError.message ?? 'is invalid'
    // Fastify's own messages already start with the context (`querystring/limit must be …`).
    const named = message.startsWith(`${context}/`) || message.startsWith(`${context} `)
    return invalidRequest((named ? message : `${context} ${message}`).trim(), error)
  }
  switch (fastifyError?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return payloadTooLarge(error)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return unsupportedMediaType(error)
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return uriTooLong(error)
    case 'FST_ERR_BAD_URL':
      return malformedUrl(error)
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return invalidRequest(fastifyError.message ?? 'request body is invalid', error)
  }
  // e.g. malformed JSON: Fastify's own 400s carry a safe message
  if (fastifyError?.statusCode === 400 && typeof fastifyError.message === 'string') return bodyNotJson(error)
  if (fastifyError?.statusCode === 404) return notFound(error)
  if (isStoreOutage(error)) return storeUnavailable(error)
  return internalError(error)
}

/** Renders the page of an error on a browser path. */
export type HtmlErrorRenderer = (error: BrokerError, request: FastifyRequest) => string

/** What the one handler needs to know about the app. */
export interface ErrorHandlerOptions {
  /** True for the machine-facing paths, which always answer JSON (e.g. `/obtain-token`); default none. */
  isApiPath?: (path: string) => boolean
  /** Called for every store outage a request failed with (e.g. to count it). */
  onStoreOutage?: (error: unknown) => void
}

/** The path of a request URL, without its query. */
export function pathOf(url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/**
 * Whether the error of `request` renders as a page: never on an API path, nor for a request with a
 * JSON body (an API client, e.g. an integration posting to a mistyped token URL: no browser form
 * sends one); on other paths when the route says so (`config.html`) or no route matched (a browser
 * asked for a page that is not there).
 */
function rendersPage(request: FastifyRequest, isApiPath: (path: string) => boolean): boolean {
  if (isApiPath(pathOf(request.url))) return false
  if (sendsJson(request)) return false
  return request.is404 || (request.routeOptions.config as { html?: boolean } | undefined)?.html === true
}

/** Whether the request's body is declared JSON (`application/json`, any parameters, any case). */
function sendsJson(request: FastifyRequest): boolean {
  const type = request.headers['content-type']
  return typeof type === 'string' && /^\s*application\/json\s*(;|$)/i.test(type)
}

/**
 * The one error handler (for `setErrorHandler`); `renderHtml` draws the page of a browser path's
 * error. 5xx causes are logged at error (they are ours to fix) unless expected (shutting down: debug);
 * 4xx are the caller's, at info.
 */
export function makeErrorHandler(renderHtml: HtmlErrorRenderer, options: ErrorHandlerOptions = {}) {
  const { isApiPath = () => false, onStoreOutage } = options
  return function brokerErrorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply) {
    const brokerError = toBrokerError(error)
    // Counted whatever the code says: a readiness probe answers not_ready for the same outage.
    const outage = isStoreOutage(error) ? error : brokerError.cause
    if (onStoreOutage !== undefined && isStoreOutage(outage)) onStoreOutage(outage)
    if (brokerError.statusCode >= 500 && brokerError.expected) {
      request.log.debug({ code: brokerError.code, reason: brokerError.message }, 'request refused')
    } else if (brokerError.statusCode >= 500) {
      request.log.error({ err: brokerError.cause ?? brokerError, code: brokerError.code }, 'request failed')
    } else {
      request.log.info({ code: brokerError.code, reason: brokerError.message }, 'request rejected')
    }
    if (brokerError.retryAfter !== undefined)
      reply.header('retry-after', String(Math.max(1, Math.ceil(brokerError.retryAfter))))
    const allow = brokerError.code === 'method_not_allowed' ? brokerError.details?.allow : undefined
    if (typeof allow === 'string') reply.header('allow', allow)
    reply.header('cache-control', 'no-store')
    reply.status(brokerError.statusCode)
    if (rendersPage(request, isApiPath)) {
      return reply.type('text/html; charset=utf-8').send(renderHtml(brokerError, request))
    }
    return reply
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(errorBody(brokerError, request.id)))
  }
}

/** A route as registered: its methods and URL pattern (`/admin/api/registrations/:id`). */
export interface RouteShape {
  method: string | string[]
  url: string
}

/**
 * The app's routes by path, to tell "no such path" (404) from "not with this method" (405, with
 * `Allow`). Among the patterns a path matches, the most specific (fewest parameters) decide, the
 * way the router picks a static route over `/:app`: `GET /obtain-token` is 405 (POST only), not
 * the `/:app` page. A parameter given its values (`app`: the hosted slugs) matches those only, so
 * `POST /obtain-tokn` (a typo of the token URL) is 404, not "use GET" on a page that isn't there.
 */
export class RouteTable {
  readonly #routes: Array<{ url: string; pattern: RegExp; params: number; methods: string[] }> = []
  readonly #paramValues: Readonly<Record<string, ReadonlySet<string>>>

  /** `paramValues`: the only values a path parameter of that name takes (e.g. `app` → the slugs). */
  constructor(paramValues: Readonly<Record<string, ReadonlySet<string>>> = {}) {
    this.#paramValues = paramValues
  }

  /** Records a route (from an `onRoute` hook). */
  add(route: RouteShape): void {
    const methods = Array.isArray(route.method) ? route.method : [route.method]
    const segments = route.url.split('/').map((segment) => {
      if (segment.startsWith(':')) return `(?<${segment.slice(1).replace(/\W/g, '_')}>[^/]+)`
      if (segment === '*') return '.*'
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    })
    const params = route.url.split('/').filter((segment) => segment.startsWith(':') || segment === '*').length
    this.#routes.push({ url: route.url, pattern: new RegExp(`^${segments.join('/')}/?$`), params, methods })
  }

  /** The most specific routes matching `path` (see the class); empty when none matches. */
  #matching(path: string): Array<{ url: string; methods: string[] }> {
    let best = Number.POSITIVE_INFINITY
    let found: Array<{ url: string; methods: string[] }> = []
    for (const route of this.#routes) {
      const match = route.pattern.exec(path)
      if (match === null || !this.#takes(match.groups)) continue
      if (route.params < best) {
        best = route.params
        found = []
      }
      if (route.params === best) found.push(route)
    }
    return found
  }

  /** Whether every constrained parameter holds one of its values. */
  #takes(groups: Record<string, string> | undefined): boolean {
    if (groups === undefined) return true
    for (const [name, value] of Object.entries(groups)) {
      if (this.#paramValues[name] !== undefined && !this.#paramValues[name].has(value)) return false
    }
    return true
  }

  /** The methods the most specific routes matching `path` answer; empty when none matches. */
  allowedMethods(path: string): string[] {
    return methodsOf(this.#matching(path))
  }

  /**
   * The error for a request no route answered: 405 when the path exists for other methods, else
   * 404. Neither repeats the request's path (the caller's text, shown on a page of this origin):
   * the 405 names the route as declared (`/{app}`).
   */
  notFoundError(method: string, path: string): BrokerError {
    const matching = this.#matching(path)
    const allowed = methodsOf(matching)
    if (allowed.length > 0 && !allowed.includes(method)) {
      return methodNotAllowed(method, declared(matching[0]!.url), allowed)
    }
    return routeNotFound(method, path)
  }
}

/** The methods of `routes`, each once, sorted (the `Allow` header's list). */
function methodsOf(routes: ReadonlyArray<{ methods: string[] }>): string[] {
  return [...new Set(routes.flatMap((route) => route.methods))].sort()
}

/** A route's URL as the docs write it: `/admin/api/registrations/{id}`. */
function declared(url: string): string {
  return url.replace(/:(\w+)/g, '{$1}')
}
