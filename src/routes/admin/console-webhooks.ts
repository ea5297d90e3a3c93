// The console's Webhooks page (views/admin-webhooks.ts) and its redeliver form, on the console's
// session area: pages without a session go to the sign-in page, the form needs the session's CSRF
// token (SessionArea.requireForm), like the console's other forms.
import type { FastifyInstance } from 'fastify'
import type { OperatorIdentity } from '../../services/operator-auth.js'
import { renderWebhooks } from '../../views/admin-webhooks.js'
import { sendPage } from '../browser.js'
import { notices, type SessionArea } from '../browser-session.js'
import { consoleHelpers, errorPages, html, htmlPage, redirect } from './console-common.js'
import { csrfFormSchema, emptyQuery } from './schemas.js'
import { redeliverParams } from './webhooks-schemas.js'

const NOTICES = notices({ redelivered: 'The message is queued for delivery again (same message id).' })
type NoticeKey = (typeof NOTICES.doneSchema.enum)[number]
/** Deliveries shown per endpoint. */
const DELIVERIES_SHOWN = 20

export function consoleWebhookRoutes(app: FastifyInstance, area: SessionArea<OperatorIdentity>): void {
  const { endpoints } = app.services.webhooks
  const { contextOf, requirePageSession } = consoleHelpers(app, area)

  app.get<{ Querystring: { done?: NoticeKey } }>(
    '/admin/webhooks',
    {
      config: { ...html, logQuery: ['done'] },
      preHandler: requirePageSession,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { done: NOTICES.doneSchema },
        },
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const list = await endpoints.list()
      const views = await Promise.all(
        list.map(async (endpoint) => ({
          endpoint,
          deliveries: await endpoints.deliveries(endpoint.id, DELIVERIES_SHOWN),
        })),
      )
      return sendPage(
        reply,
        200,
        renderWebhooks(contextOf(request), { endpoints: views, ...NOTICES.of(request.query.done) }),
      )
    },
  )

  app.post<{ Params: { id: string; messageId: string }; Body: { csrf?: string } }>(
    '/admin/webhooks/:id/deliveries/:messageId/redeliver',
    {
      config: html,
      preValidation: area.requireForm,
      schema: {
        params: redeliverParams,
        querystring: emptyQuery,
        body: csrfFormSchema,
        response: { ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      await endpoints.redeliver(request.params.id, request.params.messageId, {
        kind: 'operator',
        name: area.of(request).data.operator,
      })
      return reply.redirect('/admin/webhooks?done=redelivered', 303)
    },
  )
}
