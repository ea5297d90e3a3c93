// Tenant self-service, `/{app}/manage`: a tenant administrator signs in at Microsoft (the consent
// flow's sign-in, `purpose: 'manage'`, back through the one redirect URI `/callback`), then sees and
// revokes the registrations of their own tenant for this app.
//
// The tenant comes from the validated ID token and lives in the server-side session; no tenant id
// is ever read from a form, a query or a path. A registration id of another tenant is "not found".
// The session cookie is SameSite=Lax, not Strict: it is set at the end of a redirect chain that
// started at Microsoft (cross-site), and browsers withhold Strict cookies on the next navigation of
// such a chain. Every form carries the session's CSRF token, checked before body validation.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CloudName } from '../../clouds.js'
import { appClouds, findApp } from '../../config.js'
import type { VerifiedIdToken } from '../../entra/types.js'
import { BrokerError } from '../../errors.js'
import type { SessionData } from '../../services/admin-session.js'
import { actorLabel, recordAudit } from '../../services/audit.js'
import { revokeRegistration, revokeTenant } from '../../services/revocation.js'
import {
  holdsAdminRole,
  MANAGE_SESSION_TTL_MS,
  manageSessions,
  type TenantAdminIdentity,
  tenantAdminActor,
  tenantRegistrations,
} from '../../services/tenant-admin.js'
import { roleNames } from '../../views/consent-pages.js'
import { renderManagePage, renderManageSignIn } from '../../views/manage.js'
import {
  appSlugSchema,
  csrfFormSchema,
  emptyQuery,
  REGISTRATION_ID_PATTERN,
  revokeFormSchema,
} from '../admin/schemas.js'
import { readSignedCookie, refuseCrossSiteForm, requireFormCsrf, sendPage } from '../browser.js'
import {
  cloudFormSchema,
  consentFlowFor,
  FLOW_COOKIE,
  flowCookieOptions,
  limitConsentTraffic,
} from './index.js'

export const MANAGE_COOKIE = 'cb_manage'

const manageCookiePath = (slug: string) => `/${slug}/manage`

const html = { html: true }
const htmlPage = { type: 'string' } as const
const pages = {
  200: htmlPage,
  400: htmlPage,
  401: htmlPage,
  403: htmlPage,
  404: htmlPage,
  409: htmlPage,
  429: htmlPage,
  500: htmlPage,
  502: htmlPage,
  503: htmlPage,
} as const
const redirect = { 303: { type: 'null' } } as const
const appParams = {
  type: 'object',
  additionalProperties: false,
  required: ['app'],
  properties: { app: appSlugSchema },
} as const

const NOTICES = {
  revoked: 'The registration is revoked. Integrations using it get no more access tokens.',
  already_revoked: 'That registration was already revoked.',
  revoked_all: "Your tenant's registrations are revoked. Integrations using them get no more access tokens.",
  signed_in: 'Signed in.',
} as const
type NoticeKey = keyof typeof NOTICES

type ManageSession = SessionData<TenantAdminIdentity>
const sessionsOf = new WeakMap<FastifyRequest, { id: string; session: ManageSession }>()

/** What the consent flow hands over after a tenant administrator signed in for `/{app}/manage`. */
export interface ManageSignIn {
  app: string
  cloud: CloudName
  user: VerifiedIdToken
}

/**
 * Called by the `/callback` route when a `manage` sign-in completed: opens the session and sends the
 * administrator to the manage page.
 */
export async function completeManageSignIn(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  signIn: ManageSignIn,
): Promise<FastifyReply> {
  // The flow checked the role already; checked again here so this entry point can't be misused.
  if (!holdsAdminRole(app.config, signIn.user.wids)) {
    throw new BrokerError('forbidden', 'only a tenant administrator can manage registrations')
  }
  const identity: TenantAdminIdentity = {
    app: signIn.app,
    cloud: signIn.cloud,
    tenantId: signIn.user.tid.toLowerCase(),
    oid: signIn.user.oid,
    name: signIn.user.preferredUsername,
  }
  const { id } = await manageSessions(app.store, app.clock).create(identity)
  reply.setCookie(MANAGE_COOKIE, id, {
    path: manageCookiePath(signIn.app),
    httpOnly: true,
    sameSite: 'lax',
    secure: app.config.secureCookies,
    signed: true,
    maxAge: Math.floor(MANAGE_SESSION_TTL_MS / 1000),
  })
  await recordAudit(app.store, request.log, {
    type: 'tenant_admin.signed_in',
    actor: actorLabel(tenantAdminActor(identity)),
    tenantId: identity.tenantId,
    app: identity.app,
    detail: { cloud: identity.cloud, name: identity.name },
  })
  return reply.header('cache-control', 'no-store').redirect(`/${signIn.app}/manage?done=signed_in`, 303)
}

export async function manageRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app
  const sessions = manageSessions(app.store, app.clock)
  const flow = consentFlowFor(app)
  const publicOrigin = new URL(config.publicUrl).origin

  const hostedApp = (slug: string) => {
    const hosted = findApp(config, slug)
    if (hosted === undefined) throw new BrokerError('not_found', `no app named "${slug}"`)
    return hosted
  }

  /** Looks up the session of this app's manage pages; a session of another app doesn't count. */
  const loadSession = async (request: FastifyRequest) => {
    const slug = (request.params as { app?: string }).app
    const id = readSignedCookie(request, MANAGE_COOKIE)
    if (slug === undefined || id === undefined) return
    const session = await sessions.read(id)
    if (session !== null && session.app === slug) {
      sessionsOf.set(request, { id, session })
      request.log = request.log.child({ tenantId: session.tenantId, tenantAdmin: session.oid })
    }
  }

  app.addHook('preHandler', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
  })

  /** Forms: this app's session and its CSRF token, checked before the body is validated. */
  const requireFormSession = async (request: FastifyRequest) => {
    await loadSession(request)
    const entry = sessionsOf.get(request)
    if (entry === undefined) {
      throw new BrokerError('unauthorized', 'your session is missing or has expired; sign in again')
    }
    requireFormCsrf(request, entry.session.csrf)
  }

  const deps = (request: FastifyRequest) => ({ store: app.store, clock: app.clock, log: request.log })

  app.get<{ Params: { app: string }; Querystring: { done?: NoticeKey } }>(
    '/:app/manage',
    {
      config: html,
      schema: {
        params: appParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { done: { type: 'string', enum: Object.keys(NOTICES) } },
        },
        response: pages,
      },
    },
    async (request, reply) => {
      const hosted = hostedApp(request.params.app)
      await loadSession(request)
      const entry = sessionsOf.get(request)
      if (entry === undefined) {
        return sendPage(
          reply,
          200,
          renderManageSignIn({
            app: hosted,
            clouds: appClouds(hosted),
            roleNames: roleNames(config.adminRoleIds),
          }),
        )
      }
      const { session } = entry
      const done = request.query.done
      return sendPage(
        reply,
        200,
        renderManagePage({
          app: hosted,
          cloud: session.cloud,
          tenantId: session.tenantId,
          adminName: session.name,
          csrf: session.csrf,
          registrations: await tenantRegistrations(app.store, session),
          ...(done === undefined ? {} : { notice: NOTICES[done] }),
        }),
      )
    },
  )

  app.post<{ Params: { app: string }; Body: { cloud?: string } | undefined }>(
    '/:app/manage/sign-in',
    {
      config: html,
      schema: {
        params: appParams,
        querystring: emptyQuery,
        body: cloudFormSchema,
        response: { ...pages, ...redirect },
      },
    },
    async (request, reply) => {
      refuseCrossSiteForm(request, publicOrigin, 'the sign-in must be started from this site')
      hostedApp(request.params.app)
      // A sign-in is a flow start: same per-IP budget (and counter) as the consent pages.
      await limitConsentTraffic(app, request, 'too many sign-in attempts from this address; try again later')
      const outcome = await flow.start(request.params.app, request.body?.cloud, request.log, 'manage')
      if (outcome.kind === 'failed') {
        throw new BrokerError(
          outcome.failure.status >= 500 ? 'upstream_unavailable' : 'invalid_request',
          'the sign-in could not be started; try again in a moment',
        )
      }
      reply.setCookie(FLOW_COOKIE, outcome.flowHandle, flowCookieOptions(config))
      return reply.redirect(outcome.location, 303)
    },
  )

  app.post<{ Params: { app: string; id: string }; Body: { csrf: string; reason: string } }>(
    '/:app/manage/registrations/:id/revoke',
    {
      config: html,
      preValidation: requireFormSession,
      schema: {
        params: {
          type: 'object',
          additionalProperties: false,
          required: ['app', 'id'],
          properties: {
            app: appParams.properties.app,
            id: { type: 'string', pattern: REGISTRATION_ID_PATTERN },
          },
        },
        querystring: emptyQuery,
        body: revokeFormSchema,
        response: { ...pages, ...redirect },
      },
    },
    async (request, reply) => {
      const { session } = sessionsOf.get(request)!
      const result = await revokeRegistration(deps(request), request.params.id, {
        actor: tenantAdminActor(session),
        reason: request.body.reason,
        scope: { tenantId: session.tenantId, app: session.app },
      })
      const done: NoticeKey = result.alreadyRevoked ? 'already_revoked' : 'revoked'
      return reply.redirect(`/${session.app}/manage?done=${done}`, 303)
    },
  )

  app.post<{ Params: { app: string }; Body: { csrf: string; reason: string } }>(
    '/:app/manage/revoke-all',
    {
      config: html,
      preValidation: requireFormSession,
      schema: {
        params: appParams,
        querystring: emptyQuery,
        body: revokeFormSchema,
        response: { ...pages, ...redirect },
      },
    },
    async (request, reply) => {
      const { session } = sessionsOf.get(request)!
      await revokeTenant(deps(request), session.tenantId, {
        actor: tenantAdminActor(session),
        reason: request.body.reason,
        app: session.app,
      })
      return reply.redirect(`/${session.app}/manage?done=revoked_all`, 303)
    },
  )

  app.post<{ Params: { app: string }; Body: { csrf?: string } }>(
    '/:app/manage/sign-out',
    {
      config: html,
      preValidation: requireFormSession,
      schema: {
        params: appParams,
        querystring: emptyQuery,
        body: csrfFormSchema,
        response: { ...pages, ...redirect },
      },
    },
    async (request, reply) => {
      const { id, session } = sessionsOf.get(request)!
      await sessions.destroy(id)
      reply.clearCookie(MANAGE_COOKIE, { path: manageCookiePath(session.app) })
      await recordAudit(app.store, request.log, {
        type: 'tenant_admin.signed_out',
        actor: actorLabel(tenantAdminActor(session)),
        tenantId: session.tenantId,
        app: session.app,
        detail: { cloud: session.cloud },
      })
      return reply.redirect(`/${session.app}/manage`, 303)
    },
  )
}
