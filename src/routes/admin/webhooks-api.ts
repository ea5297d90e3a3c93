// The webhook endpoint API under /admin/api/webhooks (registered inside the operator API, so its
// bearer-token check runs first): add an endpoint (its `whsec_` secret answered once), list,
// remove, list an endpoint's deliveries, redeliver a message.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errorBodySchema } from '../../errors.js'
import type { Delivery } from '../../store/webhook-types.js'
import { emptyQuery, errorResponses } from './schemas.js'
import {
  addEndpointBodySchema,
  deliverySchema,
  endpointIdParams,
  endpointSchema,
  redeliverParams,
} from './webhooks-schemas.js'

export interface WebhookApiOptions {
  /** The authenticated operator of a request (the operator API's hook ran). */
  operatorOf: (request: FastifyRequest) => string
}

const common = { tags: ['webhooks'], security: [{ operatorToken: [] }] }

/** A delivery as the API shows it: everything but the body (the event is in the receiver's hands). */
function deliveryView(delivery: Delivery) {
  const { body: _body, ...view } = delivery
  return view
}

export async function webhookApiRoutes(app: FastifyInstance, options: WebhookApiOptions): Promise<void> {
  const { endpoints } = app.services.webhooks
  const operator = (request: FastifyRequest) => ({
    kind: 'operator' as const,
    name: options.operatorOf(request),
  })

  app.post<{ Body: { url: string; events?: string[] } }>(
    '/admin/api/webhooks',
    {
      schema: {
        ...common,
        summary: 'Add a webhook endpoint; answers its id and signing secret (shown only this once)',
        querystring: emptyQuery,
        body: addEndpointBodySchema,
        response: {
          201: {
            type: 'object',
            additionalProperties: false,
            required: ['id', 'secret', 'endpoint'],
            properties: {
              id: { type: 'string' },
              secret: { type: 'string', description: 'whsec_…: verify signatures with it; not shown again' },
              endpoint: endpointSchema,
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { endpoint, secret } = await endpoints.add(
        {
          url: request.body.url,
          ...(request.body.events === undefined ? {} : { events: request.body.events }),
        },
        operator(request),
      )
      reply.code(201)
      return { id: endpoint.id, secret, endpoint }
    },
  )

  app.get(
    '/admin/api/webhooks',
    {
      schema: {
        ...common,
        summary: 'Every webhook endpoint (secrets are never shown again)',
        querystring: emptyQuery,
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['endpoints'],
            properties: { endpoints: { type: 'array', items: endpointSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async () => ({ endpoints: await endpoints.list() }),
  )

  app.delete<{ Params: { id: string } }>(
    '/admin/api/webhooks/:id',
    {
      schema: {
        ...common,
        summary: 'Remove a webhook endpoint and its pending deliveries',
        params: endpointIdParams,
        querystring: emptyQuery,
        response: { 204: { type: 'null', description: 'removed' }, 404: errorBodySchema, ...errorResponses },
      },
    },
    async (request, reply) => {
      await endpoints.remove(request.params.id, operator(request))
      reply.code(204)
      return null
    },
  )

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/admin/api/webhooks/:id/deliveries',
    {
      config: { logQuery: ['limit'] },
      schema: {
        ...common,
        summary: "An endpoint's latest deliveries, newest first: status, attempts, next retry, last answer",
        params: endpointIdParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['deliveries'],
            properties: { deliveries: { type: 'array', items: deliverySchema } },
          },
          404: errorBodySchema,
          ...errorResponses,
        },
      },
    },
    async (request) => ({
      deliveries: (await endpoints.deliveries(request.params.id, request.query.limit ?? 50)).map(
        deliveryView,
      ),
    }),
  )

  app.post<{ Params: { id: string; messageId: string } }>(
    '/admin/api/webhooks/:id/deliveries/:messageId/redeliver',
    {
      schema: {
        ...common,
        summary: 'Deliver a message to the endpoint again now, with the same message id',
        params: redeliverParams,
        querystring: emptyQuery,
        response: {
          202: {
            type: 'object',
            additionalProperties: false,
            required: ['messageId', 'status'],
            properties: { messageId: { type: 'string' }, status: { type: 'string', enum: ['pending'] } },
          },
          404: errorBodySchema,
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      await endpoints.redeliver(request.params.id, request.params.messageId, operator(request))
      reply.code(202)
      return { messageId: request.params.messageId, status: 'pending' }
    },
  )
}
