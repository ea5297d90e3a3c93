// The console's tenants and registrations: the lists, one registration, and the revocations. A
// revocation is never one click: "Revoke…" opens a confirmation page (GET) showing what will be
// revoked, and only its form — the session's CSRF token (SessionArea.requireForm) and a required
// reason — revokes (POST), audited with that reason.
import type { FastifyInstance } from 'fastify'
import {
  listRegistrations,
  previewTenantRevocation,
  readRegistrationAsOperator,
  summarizeTenants,
} from '../../services/admin-queries.js'
import type { OperatorIdentity } from '../../services/operator-auth.js'
import { REGISTRATION_STATUSES, type RegistrationStatus } from '../../store/types.js'
import {
  renderRegistration,
  renderRevokeRegistration,
  renderRevokeTenant,
} from '../../views/admin-registration.js'
import { renderRegistrations, renderTenants } from '../../views/admin-registrations.js'
import { sendPage } from '../browser.js'
import { notices, type SessionArea } from '../browser-session.js'
import { consoleHelpers, errorPages, html, htmlPage, optional, redirect } from './console-common.js'
import {
  APP_SLUG_PATTERN,
  DECIMAL_COUNT_PATTERN,
  emptyQuery,
  reasonSchema,
  registrationIdParams,
  revokeFormSchema,
  TENANT_ID_PATTERN,
  tenantIdParams,
} from './schemas.js'

const NOTICES = notices({
  revoked: 'The registration is revoked.',
  already_revoked: 'The registration was already revoked; its original revocation is kept.',
  tenant_revoked: 'The tenant’s registrations are revoked.',
  label_saved: 'The tenant’s label is saved.',
})
type NoticeKey = (typeof NOTICES.doneSchema.enum)[number]
const doneQuery = NOTICES.doneQuery
/**
 * The notice after a tenant revocation: how many were revoked when the redirect's `count` is a
 * whole number (the schema takes decimal digits only), else the notice without a number.
 */
function tenantRevokedNotice(count: string | undefined): { notice?: string } {
  const revoked = count === undefined ? Number.NaN : Number(count)
  if (!Number.isSafeInteger(revoked) || revoked < 0) return NOTICES.of('tenant_revoked')
  return { notice: `${revoked} registration${revoked === 1 ? '' : 's'} revoked.` }
}
/** Registrations listed on a tenant's confirmation page, and how many it reads at most to count. */
const TENANT_PREVIEW = { shown: 20, read: 50 } as const

/** The console's tenant and registration pages and the revocation forms. */
export function consoleRegistrationRoutes(app: FastifyInstance, area: SessionArea<OperatorIdentity>): void {
  const appSlugs = app.config.apps.map((a) => a.slug)
  const { contextOf, requirePageSession, operatorActor } = consoleHelpers(app, area)
  const { revocation } = app.services
  const readAsOperator = (request: Parameters<typeof contextOf>[0], id: string) =>
    readRegistrationAsOperator(
      app.store,
      id,
      { operator: area.of(request).data.operator, via: 'console' },
      request.log,
    )

  app.get<{ Querystring: { app?: string; cursor?: string } }>(
    '/admin/tenants',
    {
      config: { ...html, logQuery: ['app', 'cursor'] },
      preHandler: requirePageSession,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { app: optional(APP_SLUG_PATTERN), cursor: { type: 'string', maxLength: 512 } },
        },
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const appFilter = request.query.app || undefined
      const cursor = request.query.cursor || undefined
      const page = await summarizeTenants(app.store, {
        ...(appFilter === undefined ? {} : { app: appFilter }),
        ...(cursor === undefined ? {} : { cursor }),
        limit: 50,
      })
      return sendPage(
        reply,
        200,
        renderTenants(contextOf(request), {
          tenants: page.tenants,
          ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }),
          apps: appSlugs,
          ...(appFilter === undefined ? {} : { app: appFilter }),
        }),
      )
    },
  )

  app.get<{
    Querystring: {
      tenant?: string
      app?: string
      status?: string
      cursor?: string
      done?: NoticeKey
      count?: string
    }
  }>(
    '/admin/registrations',
    {
      config: { ...html, logQuery: ['tenant', 'app', 'status', 'cursor', 'done', 'count'] },
      preHandler: requirePageSession,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            tenant: optional(TENANT_ID_PATTERN),
            app: optional(APP_SLUG_PATTERN),
            status: { type: 'string', enum: ['', ...REGISTRATION_STATUSES] },
            cursor: { type: 'string', maxLength: 512 },
            done: doneQuery.properties.done,
            count: { type: 'string', pattern: DECIMAL_COUNT_PATTERN },
          },
        },
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const tenant = request.query.tenant ? request.query.tenant.toLowerCase() : undefined
      const appFilter = request.query.app || undefined
      const status = (request.query.status || undefined) as RegistrationStatus | undefined
      const cursor = request.query.cursor || undefined
      const page = await listRegistrations(app.store, {
        ...(tenant === undefined ? {} : { tenant }),
        ...(appFilter === undefined ? {} : { app: appFilter }),
        ...(status === undefined ? {} : { status }),
        ...(cursor === undefined ? {} : { cursor }),
        limit: 50,
      })
      const { done, count } = request.query
      return sendPage(
        reply,
        200,
        renderRegistrations(contextOf(request), {
          items: page.items,
          ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }),
          filter: {
            ...(tenant === undefined ? {} : { tenant }),
            ...(appFilter === undefined ? {} : { app: appFilter }),
            ...(status === undefined ? {} : { status }),
          },
          apps: appSlugs,
          ...(done === 'tenant_revoked' ? tenantRevokedNotice(count) : NOTICES.of(done)),
        }),
      )
    },
  )

  app.get<{ Params: { id: string }; Querystring: { done?: NoticeKey } }>(
    '/admin/registrations/:id',
    {
      config: { ...html, logQuery: ['done'] },
      preHandler: requirePageSession,
      schema: {
        params: registrationIdParams,
        querystring: doneQuery,
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const registration = await readAsOperator(request, request.params.id)
      return sendPage(
        reply,
        200,
        renderRegistration(contextOf(request), { registration, ...NOTICES.of(request.query.done) }),
      )
    },
  )

  // The confirmation page: what will be revoked, and the form that asks for the reason.
  app.get<{ Params: { id: string } }>(
    '/admin/registrations/:id/revoke',
    {
      config: html,
      preHandler: requirePageSession,
      schema: {
        params: registrationIdParams,
        querystring: emptyQuery,
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const registration = await readAsOperator(request, request.params.id)
      return sendPage(reply, 200, renderRevokeRegistration(contextOf(request), registration))
    },
  )

  app.post<{ Params: { id: string }; Body: { csrf: string; reason: string } }>(
    '/admin/registrations/:id/revoke',
    {
      config: html,
      preValidation: area.requireForm,
      schema: {
        params: registrationIdParams,
        querystring: emptyQuery,
        body: revokeFormSchema,
        response: { ...redirect, ...errorPages, 409: { type: 'string' } },
      },
    },
    async (request, reply) => {
      const result = await revocation.registration(
        request.params.id,
        { actor: operatorActor(request), reason: request.body.reason },
        request.log,
      )
      const done: NoticeKey = result.alreadyRevoked ? 'already_revoked' : 'revoked'
      return reply.redirect(`/admin/registrations/${encodeURIComponent(request.params.id)}?done=${done}`, 303)
    },
  )

  app.get<{ Params: { tenantId: string }; Querystring: { app?: string } }>(
    '/admin/tenants/:tenantId/revoke',
    {
      config: { ...html, logQuery: ['app'] },
      preHandler: requirePageSession,
      schema: {
        params: tenantIdParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { app: optional(APP_SLUG_PATTERN) },
        },
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const tenantId = request.params.tenantId.toLowerCase()
      const appFilter = request.query.app || undefined
      const preview = await previewTenantRevocation(app.store, tenantId, appFilter, TENANT_PREVIEW)
      return sendPage(
        reply,
        200,
        renderRevokeTenant(contextOf(request), {
          tenantId,
          ...(appFilter === undefined ? {} : { app: appFilter }),
          ...preview,
        }),
      )
    },
  )

  app.post<{ Params: { tenantId: string }; Body: { csrf: string; reason: string; app?: string } }>(
    '/admin/tenants/:tenantId/revoke',
    {
      config: html,
      preValidation: area.requireForm,
      schema: {
        params: tenantIdParams,
        querystring: emptyQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['reason'],
          properties: { csrf: { type: 'string' }, reason: reasonSchema, app: optional(APP_SLUG_PATTERN) },
        },
        response: { ...redirect, ...errorPages, 409: { type: 'string' } },
      },
    },
    async (request, reply) => {
      const tenantId = request.params.tenantId.toLowerCase()
      const appFilter = request.body.app || undefined
      const result = await revocation.tenant(
        tenantId,
        {
          actor: operatorActor(request),
          reason: request.body.reason,
          ...(appFilter === undefined ? {} : { app: appFilter }),
        },
        request.log,
      )
      const query = new URLSearchParams({
        tenant: tenantId,
        done: 'tenant_revoked',
        count: String(result.revoked.length),
      })
      if (appFilter !== undefined) query.set('app', appFilter)
      return reply.redirect(`/admin/registrations?${query.toString()}`, 303)
    },
  )
}
