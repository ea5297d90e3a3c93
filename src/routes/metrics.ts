// Prometheus exposition. Two ways to reach it, so an operator picks what fits their network:
//  - `GET /metrics` on the public listener, only with an operator token (`Authorization: Bearer`);
//  - a separate listener on METRICS_PORT without authentication, for a scrape network that the
//    public can't reach (never publish that port).
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'
import type { Registry } from 'prom-client'
import { errorBodySchema, metricsTokenRequired } from '../errors.js'
import { closeConnectionsWhileClosing } from '../shutdown.js'
import { requireOperator } from './operator-token.js'

const metricsSchema = {
  summary: 'Prometheus metrics (text exposition format)',
  description:
    'Requires an operator token. On the METRICS_PORT listener (when configured) no token is asked for.',
  tags: ['operations'],
  security: [{ operatorToken: [] }],
  response: {
    200: {
      description: 'Prometheus text format 0.0.4',
      content: { 'text/plain': { schema: { type: 'string' } } },
    },
    // Errors are the one-line JSON of every route; 401 and 429 (the operator token) are added to
    // the document with the HTTP layer's (openapi-responses.ts).
    503: errorBodySchema,
  },
} as const

async function exposition(registry: Registry): Promise<{ type: string; body: string }> {
  return { type: registry.contentType, body: await registry.metrics() }
}

/** `GET /metrics` on the main app, behind an operator token. */
export async function metricsRoutes(app: FastifyInstance): Promise<void> {
  app.get('/metrics', { schema: metricsSchema }, async (request, reply) => {
    reply.header('cache-control', 'no-store')
    await requireOperator(app, request, reply, {
      refused: metricsTokenRequired,
      acceptDuringStoreOutage: true,
    })
    const { type, body } = await exposition(app.metrics.registry)
    return reply.type(type).send(body)
  })
}

/**
 * The METRICS_PORT listener: `GET /metrics` only, no authentication, no request logging (scrapes
 * every few seconds would drown the logs). The caller listens and closes it.
 */
export function buildMetricsServer(registry: Registry, logger: FastifyBaseLogger): FastifyInstance {
  const server = Fastify({
    loggerInstance: logger.child({ listener: 'metrics' }),
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  }) as unknown as FastifyInstance
  // A scrape is repeated a few seconds later: its idle connections close at once, no grace.
  closeConnectionsWhileClosing(server, { graceMs: 0 })
  server.get('/metrics', { schema: { response: { 200: { type: 'string' } } } }, async (_request, reply) => {
    const { type, body } = await exposition(registry)
    return reply.header('cache-control', 'no-store').type(type).send(body)
  })
  server.setNotFoundHandler((_request, reply) => {
    return reply.code(404).type('text/plain; charset=utf-8').send('not found: try /metrics\n')
  })
  return server
}
