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
import { appClouds, type Config, findApp } from '../../config.js'
import type { VerifiedIdToken } from '../../entra/types.js'
import {
  appNotFound,
  manageSessionMissing,
  manageSignInNotStarted,
  notTenantAdministrator,
} from '../../errors.js'
import { replaceOwnAppSecret } from '../../services/own-app-secret.js'
import {
  holdsAdminRole,
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
import { sendPage } from '../browser.js'
import { notices, SessionArea } from '../browser-session.js'
import {
  cloudFormSchema,
  FLOW_COOKIE,
  flowCookieOptions,
  limitConsentTraffic,
  startFormGuard,
} from './flow-start.js'

/** The manage pages' session cookie; its path is the app's `/{app}/manage`. */
export const MANAGE_COOKIE = 'cb_manage'

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
/** `/:app/manage/registrations/:id/…`: the app's slug and one registration id. */
const registrationParams = {
  type: 'object',
  additionalProperties: false,
  required: ['app', 'id'],
  properties: {
    app: appParams.properties.app,
    id: { type: 'string', pattern: REGISTRATION_ID_PATTERN },
  },
} as const

const NOTICES = notices({
  revoked: 'The registration is revoked. Integrations using it get no more access tokens.',
  already_revoked: 'That registration was already revoked.',
  revoked_all: "Your tenant's registrations are revoked. Integrations using them get no more access tokens.",
  signed_in: 'Signed in.',
  secret_replaced:
    "Your app's client secret is replaced. Integrations keep their ID, Token and Key; the broker now uses the new secret.",
  secret_rejected:
    'Microsoft refused that client secret, so nothing changed. Paste the Value of a current secret (Certificates & secrets), not its Secret ID.',
  secret_not_applicable: 'That registration has no client secret of your own app to replace.',
})
type NoticeKey = (typeof NOTICES.doneSchema.enum)[number]

/**
 * The manage pages' sessions in the browser: a session counts only on the pages of the app it was
 * opened for.
 */
export function manageSessionArea(app: FastifyInstance): SessionArea<TenantAdminIdentity> {
  return new SessionArea<TenantAdminIdentity>({
    sessions: app.services.sessions.manage,
    cookie: { name: MANAGE_COOKIE, sameSite: 'lax', path: (identity) => `/${identity.app}/manage` },
    secure: app.config.secureCookies,
    accepts: (session, request) => session.app === (request.params as { app?: string }).app,
    logFields: (session) => ({ tenantId: session.tenantId, tenantAdmin: session.oid }),
    sessionMissing: manageSessionMissing,
  })
}

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
  area: SessionArea<TenantAdminIdentity>,
  config: Pick<Config, 'adminRoleIds'>,
  request: FastifyRequest,
  reply: FastifyReply,
  signIn: ManageSignIn,
): Promise<FastifyReply> {
  // The flow checked the role already; checked again here so this entry point can't be misused.
  if (!holdsAdminRole(config, signIn.user.wids)) {
    throw notTenantAdministrator()
  }
  await area.signIn(request, reply, {
    app: signIn.app,
    cloud: signIn.cloud,
    tenantId: signIn.user.tid.toLowerCase(),
    oid: signIn.user.oid,
    name: signIn.user.preferredUsername,
  })
  return reply.header('cache-control', 'no-store').redirect(`/${signIn.app}/manage?done=signed_in`, 303)
}

export async function manageRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app
  const area = manageSessionArea(app)
  area.install(app)
  const flow = app.services.consentFlow
  const formGuard = startFormGuard(app)

  const hostedApp = (slug: string) => {
    const hosted = findApp(config, slug)
    if (hosted === undefined) throw appNotFound(slug)
    return hosted
  }

  const { revocation } = app.services

  app.get<{ Params: { app: string }; Querystring: { done?: NoticeKey } }>(
    '/:app/manage',
    {
      config: { ...html, logQuery: ['done'] },
      schema: {
        params: appParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { done: NOTICES.doneSchema },
        },
        response: pages,
      },
    },
    async (request, reply) => {
      const hosted = hostedApp(request.params.app)
      const current = area.current(request)
      if (current === undefined) {
        return sendPage(
          reply,
          200,
          renderManageSignIn({
            app: hosted,
            clouds: appClouds(hosted),
            roleNames: roleNames(config.adminRoleIds),
            csrf: formGuard.issue(request, reply),
          }),
        )
      }
      const session = current.data
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
          ...NOTICES.of(request.query.done),
        }),
      )
    },
  )

  app.post<{ Params: { app: string }; Body: { cloud?: string } | undefined }>(
    '/:app/manage/sign-in',
    {
      config: html,
      preValidation: formGuard.check('the sign-in must be started from this site'),
      schema: {
        params: appParams,
        querystring: emptyQuery,
        body: cloudFormSchema,
        response: { ...pages, ...redirect },
      },
    },
    async (request, reply) => {
      hostedApp(request.params.app)
      // A sign-in is a flow start: same per-IP budget (and counter) as the consent pages.
      await limitConsentTraffic(app, request, 'too many sign-in attempts from this address; try again later')
      const outcome = await flow.start(request.params.app, request.body?.cloud, request.log, 'manage')
      if (outcome.kind === 'failed') {
        throw manageSignInNotStarted(outcome.failure.status)
      }
      // The session this browser had ends here: its cookie reaches this path, not /callback, where
      // the new one is opened, so a sign-in never leaves two sessions for one browser.
      if (area.current(request) !== undefined) await area.signOut(request, reply)
      reply.setCookie(FLOW_COOKIE, outcome.flowHandle, flowCookieOptions(config))
      return reply.redirect(outcome.location, 303)
    },
  )

  app.post<{ Params: { app: string; id: string }; Body: { csrf: string; reason: string } }>(
    '/:app/manage/registrations/:id/revoke',
    {
      config: html,
      preValidation: area.requireForm,
      schema: {
        params: registrationParams,
        querystring: emptyQuery,
        body: revokeFormSchema,
        response: { ...pages, ...redirect },
      },
    },
    async (request, reply) => {
      const session = area.of(request).data
      const result = await revocation.registration(
        request.params.id,
        {
          actor: tenantAdminActor(session),
          reason: request.body.reason,
          scope: { tenantId: session.tenantId, app: session.app },
        },
        request.log,
      )
      const done: NoticeKey = result.alreadyRevoked ? 'already_revoked' : 'revoked'
      return reply.redirect(`/${session.app}/manage?done=${done}`, 303)
    },
  )

  // The tenant's own app: its client secret replaced (checked with Microsoft first), same Key.
  app.post<{ Params: { app: string; id: string }; Body: { csrf: string; client_secret: string } }>(
    '/:app/manage/registrations/:id/client-secret',
    {
      config: html,
      preValidation: area.requireForm,
      schema: {
        params: registrationParams,
        querystring: emptyQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['client_secret'],
          properties: {
            csrf: { type: 'string' },
            client_secret: { type: 'string', minLength: 1, maxLength: 512 },
          },
        },
        response: { ...pages, ...redirect },
      },
    },
    async (request, reply) => {
      const session = area.of(request).data
      const outcome = await replaceOwnAppSecret(
        { config, store: app.store, idp: app.idp, log: request.log },
        {
          id: request.params.id,
          tenantId: session.tenantId,
          app: session.app,
          clientSecret: request.body.client_secret,
          actor: tenantAdminActor(session),
        },
      )
      const done: NoticeKey = `secret_${outcome}` as const
      return reply.redirect(`/${session.app}/manage?done=${done}`, 303)
    },
  )

  app.post<{ Params: { app: string }; Body: { csrf: string; reason: string } }>(
    '/:app/manage/revoke-all',
    {
      config: html,
      preValidation: area.requireForm,
      schema: {
        params: appParams,
        querystring: emptyQuery,
        body: revokeFormSchema,
        response: { ...pages, ...redirect },
      },
    },
    async (request, reply) => {
      const session = area.of(request).data
      await revocation.tenant(
        session.tenantId,
        {
          actor: tenantAdminActor(session),
          reason: request.body.reason,
          app: session.app,
        },
        request.log,
      )
      return reply.redirect(`/${session.app}/manage?done=revoked_all`, 303)
    },
  )

  app.post<{ Params: { app: string }; Body: { csrf?: string } }>(
    '/:app/manage/sign-out',
    {
      config: html,
      preValidation: area.requireForm,
      schema: {
        params: appParams,
        querystring: emptyQuery,
        body: csrfFormSchema,
        response: { ...pages, ...redirect },
      },
    },
    async (request, reply) => {
      const { data: session } = await area.signOut(request, reply)
      return reply.redirect(`/${session.app}/manage`, 303)
    },
  )
}
