// /healthz (liveness) and /readyz (readiness: the store answers and the instance is not shutting down).
import type { FastifyInstance } from 'fastify'
import { errorBodySchema, notReady, shuttingDown } from '../errors.js'

const statusSchema = {
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string' } },
} as const

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  // Liveness: the process answers. Never touches Redis, so a Redis outage doesn't get us killed.
  app.get('/healthz', { schema: { response: { 200: statusSchema } } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ok' }
  })

  // Readiness: configuration loaded (we would not be here otherwise) and the store answers.
  app.get(
    '/readyz',
    { schema: { response: { 200: statusSchema, 503: errorBodySchema } } },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store')
      // Shutting down: unready first, so load balancers stop sending before we stop accepting.
      if (app.drain.draining) throw shuttingDown()
      try {
        await app.store.ping()
      } catch (cause) {
        throw notReady(cause)
      }
      return { status: 'ready' }
    },
  )
}
