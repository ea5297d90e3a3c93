// The console's tenant label form (POST /admin/tenants/{tid}/label): the session's CSRF token and
// the new label; the same service, checks and audit event as PATCH /admin/api/tenants/{tenantId}.
import type { FastifyInstance } from 'fastify'
import type { OperatorIdentity } from '../../services/operator-auth.js'
import { setTenantLabel } from '../../services/tenant-labels.js'
import type { SessionArea } from '../browser-session.js'
import { errorPages, html, redirect } from './console-common.js'
import { emptyQuery, tenantIdParams, tenantLabelSchema } from './schemas.js'

/** Registers the label form's POST route. */
export function consoleTenantLabelRoute(app: FastifyInstance, area: SessionArea<OperatorIdentity>): void {
  app.post<{ Params: { tenantId: string }; Body: { csrf: string; label: string } }>(
    '/admin/tenants/:tenantId/label',
    {
      config: html,
      preValidation: area.requireForm,
      schema: {
        params: tenantIdParams,
        querystring: emptyQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['label'],
          properties: { csrf: { type: 'string' }, label: tenantLabelSchema },
        },
        response: { ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const { tenantId } = await setTenantLabel(
        app.store,
        request.params.tenantId,
        request.body.label,
        area.of(request).data.operator,
        request.log,
      )
      const query = new URLSearchParams({ tenant: tenantId, done: 'label_saved' })
      return reply.redirect(`/admin/registrations?${query.toString()}`, 303)
    },
  )
}
