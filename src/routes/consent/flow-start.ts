// What the pages that start a consent-flow sign-in share — the consent start (`/{app}/start`), the
// own-app form (`/{app}/own-app`) and the manage sign-in (`/{app}/manage/sign-in`) — with the one
// callback the flows end at: the form page's route, the form that picks the cloud, its CSRF guard,
// the flow cookie and the per-client-IP budget.
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { CLOUD_NAMES, type CloudName } from '../../clouds.js'
import { type AppConfig, appClouds, type Config, findApp } from '../../config.js'
import { randomToken } from '../../crypto/tokens.js'
import type { ConsentFailure } from '../../services/consent-flow-types.js'
import { renderFailurePage } from '../../views/consent-pages.js'
import {
  enforceRateLimit,
  readSignedCookie,
  refuseCrossSiteForm,
  requireFormCsrf,
  sendPage,
} from '../browser.js'
import { appParams, htmlPage, noParams } from './schemas.js'

/** Carries `<app>.<flow id>`; read only by the callback. */
export const FLOW_COOKIE = 'cb_consent_flow'
/** The flow cookie is sent to the callback only. */
export const FLOW_COOKIE_PATH = '/callback'

/** The form that starts a flow (consent or manage sign-in): the chosen cloud, empty for the default. */
export const cloudFormSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    cloud: { type: 'string', enum: [...CLOUD_NAMES, ''] },
    csrf: { type: 'string', maxLength: 256 },
  },
} as const

/** How long a start form's CSRF token stays good (the page may sit open a while before its click). */
const FORM_CSRF_TTL_MS = 2 * 3_600_000

/**
 * The CSRF guard of the forms that start a flow, on top of Fetch Metadata (which older browsers
 * don't send): a double-submit token. The page sets a signed cookie and echoes its value in a
 * hidden field; the post must carry both. One token per browser (reused while it is good), so two
 * open tabs both work. The cookie is `__Host-` prefixed when PUBLIC_URL is https (Path=/, Secure,
 * no Domain: a sibling subdomain can't plant one), plain `cb_form` on the http loopback demo.
 */
export function startFormGuard(app: FastifyInstance) {
  const { config } = app
  const publicOrigin = new URL(config.publicUrl).origin
  const name = config.secureCookies ? '__Host-cb_form' : 'cb_form'
  return {
    /** The token for the page's form; sets (or keeps) its cookie. */
    issue(request: FastifyRequest, reply: FastifyReply): string {
      const current = readSignedCookie(request, name)
      if (current !== undefined && /^[A-Za-z0-9_-]{43}$/.test(current)) return current
      const csrf = randomToken()
      reply.setCookie(name, csrf, {
        path: '/',
        httpOnly: true,
        sameSite: 'strict',
        secure: config.secureCookies,
        signed: true,
        maxAge: Math.floor(FORM_CSRF_TTL_MS / 1000),
      })
      return csrf
    },
    /** preValidation of the post: not cross-site (Fetch Metadata, Origin), and the token matches. */
    check(message: string) {
      return async (request: FastifyRequest): Promise<void> => {
        refuseCrossSiteForm(request, publicOrigin, message)
        requireFormCsrf(
          request,
          readSignedCookie(request, name),
          'the form expired or did not come from this site; reload the page and try again',
        )
      }
    },
  }
}

/** What a hosted app's start-form page is rendered with. */
export interface StartFormPage {
  app: AppConfig
  /** The clouds the app is offered in, the default first. */
  clouds: readonly CloudName[]
  /** The form's CSRF token (its signed cookie is set with the page). */
  csrf: string
}

/**
 * `GET <path>` (a path with `:app`): the page of a form that starts a flow for a hosted app (the
 * consent start page, the own-app page). Not an app: the one not-found handler answers (a page
 * here; JSON and 405 for `GET /obtain-token` and the other API paths the pattern also matches).
 */
export function startFormPageRoute(
  app: FastifyInstance,
  path: string,
  guard: ReturnType<typeof startFormGuard>,
  render: (page: StartFormPage) => string,
): void {
  app.get<{ Params: { app: string } }>(
    path,
    {
      config: { html: true },
      schema: { params: appParams, querystring: noParams, response: { 200: htmlPage, 404: htmlPage } },
    },
    async (request, reply) => {
      const hosted = findApp(app.config, request.params.app)
      if (hosted === undefined) return reply.callNotFound()
      const page = { app: hosted, clouds: appClouds(hosted), csrf: guard.issue(request, reply) }
      return sendPage(reply, 200, render(page))
    },
  )
}

/** A failed flow's page (consent, own app, device code, manage sign-in), with its status. */
export function sendFailurePage(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  failure: ConsentFailure,
): FastifyReply {
  return sendPage(
    reply,
    failure.status,
    renderFailurePage({ failure, adminRoleIds: app.config.adminRoleIds, requestId: request.id }),
  )
}

/** The flow cookie, read by the callback whichever page (consent start, manage sign-in) set it. */
export function flowCookieOptions(config: Config): CookieSerializeOptions {
  return {
    path: FLOW_COOKIE_PATH,
    httpOnly: true,
    sameSite: 'lax',
    secure: config.secureCookies,
    signed: true,
    maxAge: Math.floor(config.consent.flowTtlMs / 1000),
  }
}

/**
 * Starting flows (consent or manage sign-in) and hitting the callback cost server-side state and
 * identity-provider calls: one budget per client IP, across instances.
 */
export function limitConsentTraffic(app: FastifyInstance, request: FastifyRequest, message: string) {
  return enforceRateLimit(
    app.store.rateLimiter,
    `consent-ip:${request.ip}`,
    app.config.consent.rateLimitPerIp,
    app.config.consent.rateLimitWindowMs,
    message,
  )
}
