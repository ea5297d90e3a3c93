// buildApp: one Fastify instance with every plugin and route, never listening (tests inject). It
// builds the services once (services/create-services.ts), decorates them as `app.services`, starts
// their background work when the app is ready and stops it when the app closes.
import { randomUUID } from 'node:crypto'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'
import type { Config } from './config.js'
import {
  answerConnectRequests,
  capConnectionsPerAddress,
  makeClientErrorHandler,
} from './connection-guard.js'
import type { AppCredentials } from './entra/app-credentials.js'
import type { IdentityProvider } from './entra/types.js'
import { hostHeaderMissing, makeErrorHandler, pathOf, RouteTable } from './errors.js'
import { createLogger, logRequestCompleted } from './logger.js'
import { createMetrics, type Metrics } from './metrics.js'
import { adminRoutes } from './routes/admin/index.js'
import { consentRoutes } from './routes/consent/index.js'
import { manageRoutes } from './routes/consent/manage.js'
import { ownAppRoutes } from './routes/consent/own-app.js'
import { healthRoutes } from './routes/health.js'
import { metricsRoutes } from './routes/metrics.js'
import { isApiPath, registerOpenApi } from './routes/openapi.js'
import { requireOperator } from './routes/operator-token.js'
import { staticRoutes } from './routes/static.js'
import { tokenRoutes } from './routes/token/index.js'
import { schemaErrorMessage } from './routes/validation-messages.js'
import { apiSecurityHeaders, documentSecurityHeaders } from './security-headers.js'
import {
  appCredentialsFor,
  createServices,
  type Services,
  startServices,
  stopServices,
} from './services/create-services.js'
import { closeConnectionsWhileClosing, type Drain, idleGraceMs } from './shutdown.js'
import type { Store } from './store/types.js'
import { renderErrorPage } from './views/error-page.js'

export interface AppDependencies {
  store: Store
  idp: IdentityProvider
  /** A logger instance (tests pass one writing to memory); default: pino on stdout at config.logLevel. */
  logger?: FastifyBaseLogger
  metrics?: Metrics
  /** Epoch ms; injectable so tests can move time. */
  clock?: () => number
  /** The apps' credentials the identity provider authenticates with (see broker.ts); default: from config. */
  credentials?: AppCredentials
}

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    store: Store
    idp: IdentityProvider
    metrics: Metrics
    clock: () => number
    /** Every service, built once per app (services/create-services.ts). */
    services: Services
    /** Shutdown: unready from the signal on, then closing (shutdown.ts). */
    drain: Drain
  }
  interface FastifyContextConfig {
    /** Render errors of this route as an HTML page instead of JSON. */
    html?: boolean
    /**
     * The query parameters whose values may appear in this route's log lines (known-safe names
     * only); every other parameter is left out of the logged URL. Default: none.
     */
    logQuery?: readonly string[]
    /** `api`: the JSON API's smaller set of security headers instead of the pages' (security-headers.ts). */
    securityHeaders?: 'api'
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

// The registrations gauge: the store keeps counts by status (a scan only until an upgraded store's
// indexes are rebuilt); scrapes from every instance still share one count per interval
// (METRICS_REGISTRATIONS_INTERVAL_SECONDS).
function sampleEvery<T>(intervalMs: number, compute: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined
  return () => {
    const now = Date.now()
    if (last === undefined || now - last.at >= intervalMs) {
      const value = compute()
      last = { at: now, value }
      // A failed count is not kept: the next scrape tries again.
      value.catch(() => {
        if (last?.value === value) last = undefined
      })
    }
    return last.value
  }
}

export async function buildApp(config: Config, deps: AppDependencies): Promise<FastifyInstance> {
  const logger = deps.logger ?? (createLogger(config.logLevel) as FastifyBaseLogger)
  const documentHeaders = documentSecurityHeaders(config)
  const apiHeaders = apiSecurityHeaders(config)
  // Set once the metrics exist; the framework's own errors (below) reach it before any route runs.
  let handleError: ReturnType<typeof makeErrorHandler> | undefined
  const { requestTimeoutMs, keepAliveTimeoutMs } = config.http
  const app = Fastify({
    loggerInstance: logger,
    // Our own completion line (onResponse below) replaces Fastify's request logging.
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: false,
    genReqId: (request) => {
      const incoming = request.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID()
    },
    trustProxy: config.trustProxy,
    bodyLimit: 16 * 1024,
    // A request arriving on an open connection while closing is answered, not refused (shutdown.ts).
    return503OnClosing: false,
    // Path parameters up to the longest id any route accepts (registration ids: 128 characters);
    // find-my-way's default of 100 answered 414 to valid ids before their schema could speak.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    // Bounded request time: headers and body must arrive within REQUEST_TIMEOUT_MS (a slow-body or
    // never-finished-headers client is cut off, answered 408 by the client-error handler), checked
    // often enough that the bound holds to within a tenth of it (at most 1 s late).
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    http: {
      headersTimeout: requestTimeoutMs,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(requestTimeoutMs / 10))),
      // Node's own refusal of an HTTP/1.1 request without Host is an empty 400 with no request id or
      // headers; the onRequest hook below refuses it through the one handler instead.
      requireHostHeader: false,
    },
    clientErrorHandler: makeClientErrorHandler(documentHeaders, logger),
    // A refused pattern in words, not as its regular expression; an unknown property by the ones taken
    // (routes/validation-messages.ts).
    schemaErrorFormatter: schemaErrorMessage,
    // The router's own refusals (a path parameter over 256 characters, a malformed percent-encoding)
    // go through the one handler with the broker's headers, instead of Fastify's echoing JSON.
    frameworkErrors: async (error, request, reply) => {
      reply.headers(documentHeaders)
      reply.header('x-request-id', request.id)
      let refused: unknown = error
      // Under the operator API a caller without a valid token learns nothing, not even this.
      const path = pathOf(request.url)
      if (path === '/admin/api' || path.startsWith('/admin/api/')) {
        try {
          await requireOperator(app, request, reply)
        } catch (unauthorized) {
          refused = unauthorized
        }
      }
      return handleError?.(refused, request, reply)
    },
  }) as unknown as FastifyInstance
  capConnectionsPerAddress(app.server, {
    maxPerAddress: config.http.maxConnectionsPerIp,
    headers: documentHeaders,
    log: logger,
  })
  answerConnectRequests(app.server, documentHeaders, logger)

  const clock = deps.clock ?? Date.now
  const credentials = deps.credentials ?? appCredentialsFor(config, deps.store, app.log, clock)
  const metrics =
    deps.metrics ??
    createMetrics({
      credentialExpiries: () => credentials.expirySeconds(),
      collectRegistrations: sampleEvery(config.registrationsGaugeIntervalMs, () =>
        deps.store.registrations.countByStatus(),
      ),
      probeReady: () => deps.store.ping(),
      countWebhooksPending: () => deps.store.webhooks.countPending(),
    })

  app.decorate('config', config)
  app.decorate('store', deps.store)
  app.decorate('idp', deps.idp)
  app.decorate('metrics', metrics)
  app.decorate('clock', clock)
  const services = createServices({
    config,
    store: deps.store,
    idp: deps.idp,
    metrics,
    clock,
    log: app.log,
    credentials,
  })
  app.decorate('services', services)
  const stopCountingFailures = credentials.onFailure(({ app: slug, cloud, credential, code }) =>
    metrics.appCredentialFailures.inc({ app: slug, cloud, credential, code }),
  )
  app.addHook('onReady', async () => {
    // A warning, not a failure: the instance stays ready while the operator rotates.
    credentials.warnExpiring(config.credentials.expiryWarningMs)
    startServices(services)
  })
  app.addHook('onClose', async () => {
    stopCountingFailures()
    await stopServices(services)
  })

  app.decorate(
    'drain',
    closeConnectionsWhileClosing(app, {
      graceMs: idleGraceMs({
        shutdownTimeoutMs: config.shutdownTimeoutMs,
        shutdownDrainMs: config.shutdownDrainMs,
        responseDeadlineMs: config.tokens.responseDeadlineMs,
      }),
    }),
  )
  // The request id and the security headers (security-headers.ts) on every answer, set first so
  // every failure keeps them; one completion line per request, with the request id, never a
  // secret. Plain callbacks, and one hook for both headers: each hook, and an async one's promise
  // and microtask, costs every request on every route.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    reply.headers(request.routeOptions.config.securityHeaders === 'api' ? apiHeaders : documentHeaders)
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
      done(hostHeaderMissing())
      return
    }
    done()
  })
  app.addHook('onResponse', logRequestCompleted)

  // Every failure goes through the one handler, including requests no route answers. A request
  // that failed because Redis could not be reached (refused, dropped or hung) is counted there.
  handleError = makeErrorHandler(renderErrorPage, {
    isApiPath,
    onStoreOutage: () => metrics.redisErrors.inc({ operation: 'command' }),
  })
  app.setErrorHandler(handleError)
  // `:app` is only ever a hosted app's slug: another first segment is no page, so no 405 for it.
  const routes = new RouteTable({ app: new Set(config.apps.map((a) => a.slug)) })
  app.addHook('onRoute', (route) => routes.add(route))
  app.setNotFoundHandler(async (request, reply) => {
    const path = pathOf(request.url)
    // Under the operator API a caller without a valid token learns nothing, not even which paths
    // and methods exist.
    if (path === '/admin/api' || path.startsWith('/admin/api/')) await requireOperator(app, request, reply)
    throw routes.notFoundError(request.method, path)
  })

  // Before any route: the OpenAPI generator collects routes as they are added.
  await registerOpenApi(app)
  await app.register(staticRoutes)
  await app.register(healthRoutes)
  await app.register(metricsRoutes)
  await app.register(tokenRoutes)
  await app.register(browserRoutes)
  return app
}

/**
 * The routes with cookies (the console, consent pages, tenant self-service), in one encapsulated
 * scope with the cookie plugin: its onSend hook (writing the cookies a reply sets) then runs for
 * these answers only, not for obtain-token, health or metrics. Cookies are parsed when a route reads
 * one (routes/browser.ts), not by the plugin's hook on every request. The pages' forms are parsed
 * in this scope only; the operator API under it takes JSON alone (routes/json-bodies.ts).
 */
async function browserRoutes(app: FastifyInstance): Promise<void> {
  await app.register(cookie, { secret: app.config.cookieSecret, hook: false })
  await app.register(formbody, { bodyLimit: 16 * 1024 })
  await app.register(adminRoutes)
  // Tenant self-service `/:app/manage…`, before the consent routes' `/:app` catch-all.
  await app.register(manageRoutes)
  // Last: consent routes own `/:app`, a catch-all for app slugs.
  await app.register(consentRoutes)
  await app.register(ownAppRoutes)
}
