// The admin console, `/admin`: server-rendered pages, usable without JavaScript. An operator signs in
// with their operator token and gets a server-side session (routes/browser-session.ts; cookie:
// HttpOnly, SameSite=Strict, signed, path /admin). Every state-changing form carries the session's
// CSRF token, checked in preValidation — before the body is validated — so a forged or replayed
// form is refused as such.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { randomToken } from '../../crypto/tokens.js'
import { BrokerError } from '../../errors.js'
import { summarizeTenants } from '../../services/admin-queries.js'
import { auditCursorSince, readAudit } from '../../services/audit.js'
import type { KeyRotation } from '../../services/key-rotation.js'
import { type OperatorIdentity, operatorForToken } from '../../services/operator-auth.js'
import { revokeRegistration, revokeTenant } from '../../services/revocation.js'
import { REGISTRATION_STATUSES, type RegistrationStatus } from '../../store/types.js'
import {
  type ConsoleContext,
  renderAudit,
  renderKeys,
  renderRegistration,
  renderRegistrations,
  renderSignIn,
  renderTenants,
} from '../../views/admin.js'
import { enforceRateLimit, readSignedCookie, requireFormCsrf, sendPage } from '../browser.js'
import { notices, SessionArea } from '../browser-session.js'
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

export interface AdminConsoleOptions {
  keyRotation: KeyRotation
}

/** The console's session cookie. */
export const CONSOLE_COOKIE = 'cb_admin'
/** The sign-in form's double-submit CSRF cookie, before there is a session. */
export const SIGN_IN_COOKIE = 'cb_admin_sign_in'
const CONSOLE_PATH = '/admin'
const SIGN_IN_TTL_MS = 15 * 60_000
const SIGN_IN_ATTEMPTS_PER_MINUTE = 10

const html = { html: true }
const htmlPage = { 200: { type: 'string' } } as const
const redirect = { 303: { type: 'null' } } as const
const errorPages = {
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

export async function adminConsoleRoutes(app: FastifyInstance, options: AdminConsoleOptions): Promise<void> {
  const { keyRotation } = options
  const area = new SessionArea<OperatorIdentity>({
    sessions: app.browserSessions.console,
    cookie: { name: CONSOLE_COOKIE, sameSite: 'strict', path: () => CONSOLE_PATH },
    secure: app.config.secureCookies,
    logFields: (session) => ({ operator: session.operator }),
    expiredMessage: 'your console session is missing or has expired; sign in again at /admin',
  })
  // Every console response: never cached, and the session (if any) looked up once.
  area.install(app)
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

  const deps = (request: FastifyRequest) => ({ store: app.store, clock: app.clock, log: request.log })

  const renderSignInPage = async (reply: FastifyReply, status: number, error?: string) => {
    const csrf = randomToken()
    reply.setCookie(SIGN_IN_COOKIE, csrf, {
      path: CONSOLE_PATH,
      httpOnly: true,
      sameSite: 'strict',
      secure: app.config.secureCookies,
      signed: true,
      maxAge: Math.floor(SIGN_IN_TTL_MS / 1000),
    })
    return sendPage(reply, status, renderSignIn({ csrf, ...(error === undefined ? {} : { error }) }))
  }

  app.get(
    '/admin',
    { config: html, schema: { querystring: emptyQuery, response: { ...redirect, ...errorPages } } },
    async (request, reply) =>
      reply.redirect(area.current(request) !== undefined ? '/admin/tenants' : '/admin/sign-in', 303),
  )

  app.get(
    '/admin/sign-in',
    {
      config: html,
      schema: { querystring: emptyQuery, response: { ...htmlPage, ...redirect, ...errorPages } },
    },
    async (request, reply) => {
      if (area.current(request) !== undefined) return reply.redirect('/admin/tenants', 303)
      return renderSignInPage(reply, 200)
    },
  )

  app.post<{ Body: { token?: string; csrf?: string } }>(
    '/admin/sign-in',
    {
      config: html,
      schema: {
        querystring: emptyQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { token: { type: 'string', maxLength: 512 }, csrf: { type: 'string', maxLength: 256 } },
        },
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
      // Login CSRF: the form must come from our own sign-in page (double-submit, signed cookie).
      preValidation: async (request) =>
        requireFormCsrf(
          request,
          readSignedCookie(request, SIGN_IN_COOKIE),
          'the sign-in form expired or did not come from this site; reload it and try again',
        ),
    },
    async (request, reply) => {
      await enforceRateLimit(
        app.store.rateLimiter,
        `admin-sign-in:${request.ip}`,
        SIGN_IN_ATTEMPTS_PER_MINUTE,
        60_000,
        'too many sign-in attempts; wait a minute',
      )
      const operator = operatorForToken(app.config, request.body.token)
      if (operator === undefined) {
        request.log.info({ ip: request.ip }, 'console sign-in refused')
        return renderSignInPage(reply, 401, 'That token is not an operator token.')
      }
      await area.signIn(request, reply, { operator })
      reply.clearCookie(SIGN_IN_COOKIE, { path: CONSOLE_PATH })
      return reply.redirect('/admin/tenants', 303)
    },
  )

  app.post<{ Body: { csrf?: string } }>(
    '/admin/sign-out',
    {
      config: html,
      schema: {
        querystring: emptyQuery,
        body: csrfFormSchema,
        response: { ...redirect, ...errorPages },
      },
      preValidation: area.requireForm,
    },
    async (request, reply) => {
      await area.signOut(request, reply)
      return reply.redirect('/admin/sign-in', 303)
    },
  )

  app.get<{ Querystring: { app?: string } }>(
    '/admin/tenants',
    {
      config: html,
      preHandler: requirePageSession,
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { app: optional(APP_SLUG_PATTERN) },
        },
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const appFilter = request.query.app || undefined
      const tenants = await summarizeTenants(app.store, appFilter === undefined ? {} : { app: appFilter })
      return sendPage(
        reply,
        200,
        renderTenants(contextOf(request), {
          tenants,
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
      config: html,
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
      const page = await app.store.registrations.list({
        ...(tenant === undefined ? {} : { tenantId: tenant }),
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
      config: html,
      preHandler: requirePageSession,
      schema: {
        params: registrationIdParams,
        querystring: doneQuery,
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
    },
    async (request, reply) => {
      const registration = await app.store.registrations.getMeta(request.params.id)
      if (registration === null)
        throw new BrokerError('not_found', `registration ${request.params.id} not found`)
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
      const result = await revokeRegistration(deps(request), request.params.id, {
        actor: operatorActor(request),
        reason: request.body.reason,
      })
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
      const result = await revokeTenant(deps(request), tenantId, {
        actor: operatorActor(request),
        reason: request.body.reason,
        ...(appFilter === undefined ? {} : { app: appFilter }),
      })
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
      config: html,
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

  app.get<{ Querystring: { done?: NoticeKey } }>(
    '/admin/keys',
    {
      config: html,
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
