// The admin console's pages behind the sign-in (console.ts): tenants, registrations (list, one,
// revoke), the audit trail, key rotation and the apps' own credentials. Pages without a session go to the sign-in page; forms
// need the session and its CSRF token (SessionArea.requireForm).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  listRegistrations,
  readRegistrationAsOperator,
  summarizeTenants,
} from '../../services/admin-queries.js'
import { auditCursorSince, readAudit } from '../../services/audit.js'
import type { KeyRotation } from '../../services/key-rotation.js'
import type { OperatorIdentity } from '../../services/operator-auth.js'
import { REGISTRATION_STATUSES, type RegistrationStatus } from '../../store/types.js'
import {
  type ConsoleContext,
  renderAudit,
  renderKeys,
  renderRegistration,
  renderRegistrations,
  renderTenants,
} from '../../views/admin.js'
import { renderCredentials } from '../../views/admin-credentials.js'
import { sendPage } from '../browser.js'
import { notices, type SessionArea } from '../browser-session.js'
import { credentialView } from './credentials-api.js'
import {
  APP_SLUG_PATTERN,
  csrfFormSchema,
  emptyQuery,
  reasonSchema,
  registrationIdParams,
  revokeFormSchema,
  TENANT_ID_PATTERN,
  tenantIdParams,
} from './schemas.js'

/** Route config of every console route: errors answer as an HTML page. */
export const html = { html: true }
/** The 200 of a console page. */
export const htmlPage = { 200: { type: 'string' } } as const
/** The 303 of a redirect. */
export const redirect = { 303: { type: 'null' } } as const
/** The error pages a console route may answer. */
export const errorPages = {
  400: { type: 'string' },
  401: { type: 'string' },
  403: { type: 'string' },
  404: { type: 'string' },
  429: { type: 'string' },
  500: { type: 'string' },
} as const
const optional = (pattern: string) => ({
  type: 'string',
  pattern: `^(?:${pattern.replace(/^\^|\$$/g, '')})?$`,
})

const NOTICES = notices({
  revoked: 'The registration is revoked.',
  already_revoked: 'The registration was already revoked; its original revocation is kept.',
  tenant_revoked: 'The tenant’s registrations are revoked.',
  rotation_started: 'Key rotation started.',
  rotation_running: 'A key rotation pass is already running.',
})
type NoticeKey = (typeof NOTICES.doneSchema.enum)[number]
const doneQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { done: NOTICES.doneSchema },
} as const
const noticeOf = NOTICES.of

/** The console's pages and forms, on the console's session area. */
export function consolePageRoutes(
  app: FastifyInstance,
  area: SessionArea<OperatorIdentity>,
  keyRotation: KeyRotation,
): void {
  const appSlugs = app.config.apps.map((a) => a.slug)

  const contextOf = (request: FastifyRequest): ConsoleContext => {
    const { data } = area.of(request)
    return { operator: data.operator, csrf: data.csrf }
  }

  /** Pages: without a session, go to the sign-in page. */
  const requirePageSession = async (request: FastifyRequest, reply: FastifyReply) => {
    if (area.current(request) === undefined) return reply.redirect('/admin/sign-in', 303)
    return undefined
  }

  const operatorActor = (request: FastifyRequest) => ({
    kind: 'operator' as const,
    name: area.of(request).data.operator,
  })

  const { revocation } = app.services

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
      count?: number
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
            count: { type: 'integer', minimum: 0 },
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
          ...(done === 'tenant_revoked' && count !== undefined
            ? { notice: `${count} registration${count === 1 ? '' : 's'} revoked.` }
            : noticeOf(done)),
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
      const registration = await readRegistrationAsOperator(
        app.store,
        request.params.id,
        { operator: area.of(request).data.operator, via: 'console' },
        request.log,
      )
      return sendPage(
        reply,
        200,
        renderRegistration(contextOf(request), { registration, ...noticeOf(request.query.done) }),
      )
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
        {
          actor: operatorActor(request),
          reason: request.body.reason,
        },
        request.log,
      )
      const done: NoticeKey = result.alreadyRevoked ? 'already_revoked' : 'revoked'
      return reply.redirect(`/admin/registrations/${encodeURIComponent(request.params.id)}?done=${done}`, 303)
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

  const AUDIT_WINDOWS = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 } as const

  // Newest first by default (`before` pages back); a time window reads oldest first from its start
  // (`cursor` pages forward), as the API's `since` does.
  app.get<{ Querystring: { cursor?: string; before?: string; window?: keyof typeof AUDIT_WINDOWS } }>(
    '/admin/audit',
    {
      config: { ...html, logQuery: ['cursor', 'before', 'window'] },
      preHandler: requirePageSession,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            cursor: { type: 'string', pattern: '^(\\d+-\\d+)?$', maxLength: 64 },
            before: { type: 'string', pattern: '^(\\d+-\\d+)?$', maxLength: 64 },
            window: { type: 'string', enum: Object.keys(AUDIT_WINDOWS) },
          },
        },
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const window = request.query.window
      const forward = window !== undefined || Boolean(request.query.cursor)
      const cursor = forward
        ? window === undefined
          ? request.query.cursor
          : auditCursorSince(app.clock() - AUDIT_WINDOWS[window])
        : request.query.before || undefined
      const page = await readAudit(app.store, {
        ...(cursor === undefined ? {} : { cursor }),
        limit: 100,
        order: forward ? 'asc' : 'desc',
      })
      return sendPage(
        reply,
        200,
        renderAudit(contextOf(request), {
          items: page.items,
          order: forward ? 'asc' : 'desc',
          ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }),
          ...(cursor === undefined ? {} : { cursor }),
          ...(window === undefined ? {} : { window }),
        }),
      )
    },
  )

  app.get(
    '/admin/credentials',
    {
      config: html,
      preHandler: requirePageSession,
      schema: { querystring: emptyQuery, response: { ...htmlPage, ...redirect, ...errorPages } },
    },
    async (request, reply) => {
      const now = app.clock()
      const { expiryWarningMs } = app.config.credentials
      const rows = (await app.services.credentials.status()).map((s) =>
        credentialView(s, now, expiryWarningMs),
      )
      return sendPage(reply, 200, renderCredentials(contextOf(request), rows, expiryWarningMs / 86_400_000))
    },
  )

  app.get<{ Querystring: { done?: NoticeKey } }>(
    '/admin/keys',
    {
      config: { ...html, logQuery: ['done'] },
      preHandler: requirePageSession,
      schema: {
        querystring: doneQuery,
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      return sendPage(
        reply,
        200,
        renderKeys(contextOf(request), {
          rotation: await keyRotation.status(),
          ...noticeOf(request.query.done),
        }),
      )
    },
  )

  app.post<{ Body: { csrf?: string } }>(
    '/admin/keys/rotate',
    {
      config: html,
      preValidation: area.requireForm,
      schema: {
        querystring: emptyQuery,
        body: csrfFormSchema,
        response: { ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const { started } = await keyRotation.start(operatorActor(request))
      return reply.redirect(`/admin/keys?done=${started ? 'rotation_started' : 'rotation_running'}`, 303)
    },
  )
}
