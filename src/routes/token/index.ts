// POST /obtain-token: the XSOAR MicrosoftApiModule's token endpoint (see the obtain-token
// protocol). The route parses (a JSON body only, its schema strict: no coercion), sets the JSON
// API's security headers, counts the request by app and outcome, and answers within the response
// deadline; every check after the schema, and their order, is services/obtain-token.ts's. Errors
// are the one-line JSON of errors.ts.
import { Ajv } from 'ajv'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { withDeadline } from '../../abortable.js'
import { invalidRequest, responseDeadlinePassed, toBrokerError } from '../../errors.js'
import type { ObtainTokenBody } from '../../services/obtain-token.js'
import { acceptJsonBodiesOnly } from '../json-bodies.js'
import { obtainTokenBodySchema, obtainTokenResponseSchemas } from './schemas.js'

/**
 * Headroom kept under the response deadline for serialising and writing the reply, and for timers
 * that fire late on a busy CPU: 5 % of the deadline, at least 250 ms.
 */
export function deadlineMarginMs(responseDeadlineMs: number): number {
  return Math.max(250, Math.round(responseDeadlineMs * 0.05))
}

export async function tokenRoutes(app: FastifyInstance): Promise<void> {
  const { config, metrics } = app
  const { obtainToken } = app.services
  const clock = app.clock
  const knownApps = new Set(config.apps.map((a) => a.slug))
  const budgetMs = config.tokens.responseDeadlineMs - deadlineMarginMs(config.tokens.responseDeadlineMs)

  // Strict validation for this route: no type coercion, unknown fields left alone. String bounds
  // count UTF-16 code units, as `.length` does (`unicode: false`): Ajv's default counts code points
  // by walking every string of every body, which cost each request more than the rest of its
  // validation. These bounds limit sizes, and a character outside the BMP counting twice only makes
  // one stricter for text no valid request holds. Ajv calls the option deprecated, once per
  // instance; that notice is dropped, every other word from Ajv goes to the log. Should an Ajv
  // release drop the option, the route test on the bounds (obtain-token-route.test.ts) fails.
  const ajv = new Ajv({
    allErrors: false,
    coerceTypes: false,
    useDefaults: false,
    removeAdditional: false,
    unicode: false,
    logger: {
      log: (...parts: unknown[]) => app.log.debug({ ajv: parts.map(String) }, 'schema compiler'),
      warn: (...parts: unknown[]) => {
        if (!String(parts[0]).startsWith('DEPRECATED: option unicode.'))
          app.log.warn({ ajv: parts.map(String) }, 'schema compiler')
      },
      error: (...parts: unknown[]) => app.log.error({ ajv: parts.map(String) }, 'schema compiler'),
    },
  })
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema))
  acceptJsonBodiesOnly(app)

  app.post(
    '/obtain-token',
    {
      bodyLimit: 16 * 1024,
      attachValidation: true,
      schema: { body: obtainTokenBodySchema, response: obtainTokenResponseSchemas },
      // This JSON endpoint sends the API's smaller set instead of the pages' (security-headers.ts).
      config: { securityHeaders: 'api' },
      // Every failure is counted here, by the code it is answered with: the handler's own and those
      // raised before it runs (invalid JSON, an empty body, 413, a wrong content type).
      onError: (request, _reply, error, done) => {
        metrics.countObtainToken(appLabel(request), toBrokerError(error).code)
        done()
      },
    },
    // A plain function returning the service's promise (raced against the deadline): no async
    // wrappers of its own, each of which would cost every request a promise and a microtask.
    (request: FastifyRequest, reply) => {
      if (request.validationError) {
        throw invalidRequest(`request body ${describeValidation(request.validationError)}`)
      }
      // Measured from the request's arrival (before the body was read and parsed), as the caller's
      // wait is.
      const now = clock()
      const deadlineAt = now - reply.elapsedTime + budgetMs
      const answering = obtainToken.obtain(
        {
          body: request.body as ObtainTokenBody,
          clientIp: request.ip,
          clientName: header(request, 'x-content-name'),
          clientVersion: header(request, 'x-content-version'),
        },
        deadlineAt,
      )
      // (the clock read again: obtain's synchronous part, on a cache hit most of its work, has run)
      return withDeadline(answering, deadlineAt - clock(), () => responseDeadlinePassed(5)).then((answer) => {
        metrics.countObtainToken(appLabel(request), 'success')
        return answer
      })
    },
  )

  /** The `app` label: a hosted app's slug, else `unknown` (never free text from the request). */
  function appLabel(request: FastifyRequest): string {
    const appName = (request.body as { app_name?: unknown } | undefined)?.app_name
    return typeof appName === 'string' && knownApps.has(appName) ? appName : 'unknown'
  }
}

function describeValidation(
  error: Error & { validation?: Array<{ instancePath?: string; message?: string }> },
): string {
  const first = error.validation?.[0]
  if (first === undefined) return 'is invalid'
  const where = first.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : 'body'
  return `${where} ${first.message ?? 'is invalid'}`.replace(/^body /, '')
}

function header(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name]
  const text = Array.isArray(value) ? value[0] : value
  return text === undefined || text === '' ? undefined : text
}
