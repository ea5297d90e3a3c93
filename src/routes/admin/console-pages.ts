// The admin console's pages behind the sign-in (console.ts) other than tenants and registrations
// (console-registrations.ts) and webhooks (console-webhooks.ts): the home page (what needs
// attention), the audit trail, key rotation and the apps' own credentials. Pages without a session go to the sign-in page; forms need the
// session and its CSRF token (SessionArea.requireForm).
import type { FastifyInstance } from 'fastify'
import { readAttention } from '../../services/admin-attention.js'
import { auditCursorSince, readAudit } from '../../services/audit.js'
import type { KeyRotation } from '../../services/key-rotation.js'
import type { OperatorIdentity } from '../../services/operator-auth.js'
import { renderAudit } from '../../views/admin-audit.js'
import { renderCredentials } from '../../views/admin-credentials.js'
import { renderHome } from '../../views/admin-home.js'
import { renderKeys } from '../../views/admin-keys.js'
import { sendPage } from '../browser.js'
import { notices, type SessionArea } from '../browser-session.js'
import { consoleHelpers, errorPages, html, htmlPage, optional, redirect } from './console-common.js'
import { consoleRegistrationRoutes } from './console-registrations.js'
import { consoleTenantLabelRoute } from './console-tenant-label.js'
import { credentialView } from './credentials-api.js'
import { AUDIT_CURSOR_PATTERN, csrfFormSchema, emptyQuery } from './schemas.js'

const NOTICES = notices({
  rotation_started: 'Key rotation started.',
  rotation_running: 'A key rotation pass is already running.',
})
type NoticeKey = (typeof NOTICES.doneSchema.enum)[number]
const doneQuery = NOTICES.doneQuery
const noticeOf = NOTICES.of
/** Registrations needing consent listed on the home page. */
const HOME_LISTED = 10

/** The console's pages and forms, on the console's session area. */
export function consolePageRoutes(
  app: FastifyInstance,
  area: SessionArea<OperatorIdentity>,
  keyRotation: KeyRotation,
): void {
  const { contextOf, requirePageSession, operatorActor } = consoleHelpers(app, area)
  consoleRegistrationRoutes(app, area)
  consoleTenantLabelRoute(app, area)

  const credentialRows = async () => {
    const now = app.clock()
    const { expiryWarningMs } = app.config.credentials
    return (await app.services.credentials.status()).map((s) => credentialView(s, now, expiryWarningMs))
  }

  // The first page after sign-in: what needs attention (services/admin-attention.ts).
  app.get(
    '/admin/home',
    {
      config: html,
      preHandler: requirePageSession,
      schema: { querystring: emptyQuery, response: { ...htmlPage, ...redirect, ...errorPages } },
    },
    async (request, reply) => {
      const [attention, credentials] = await Promise.all([
        readAttention(app.store, app.clock(), HOME_LISTED),
        credentialRows(),
      ])
      return sendPage(
        reply,
        200,
        renderHome(contextOf(request), {
          ...attention,
          credentialsNeedingAttention: credentials.filter(
            (row) => row.expiringSoon || row.failing !== undefined,
          ).length,
        }),
      )
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
            cursor: { ...optional(AUDIT_CURSOR_PATTERN), maxLength: 64 },
            before: { ...optional(AUDIT_CURSOR_PATTERN), maxLength: 64 },
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
      // The page's tenants by label: one read for the whole page.
      const tenantIds = new Set(
        page.items.flatMap((item) => (item.tenantId === undefined ? [] : [item.tenantId])),
      )
      const labels = await app.store.tenantLabels.get([...tenantIds])
      return sendPage(
        reply,
        200,
        renderAudit(contextOf(request), {
          items: page.items,
          labels,
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
      const rows = await credentialRows()
      const warningDays = app.config.credentials.expiryWarningMs / 86_400_000
      return sendPage(reply, 200, renderCredentials(contextOf(request), rows, warningDays))
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
