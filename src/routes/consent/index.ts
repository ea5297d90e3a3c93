// Consent pages: app list, start page, start (POST), the OAuth callback and the one-time result.
// Thin: cookies and HTTP here, the flow in services/consent-flow.ts, markup in views/.
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { findApp } from '../../config.js'
import { statusOf } from '../../errors.js'
import type { CallbackQuery, ConsentFailure } from '../../services/consent-flow-types.js'
import { MAX_QUERY_LENGTH, renderAppListPage } from '../../views/app-list.js'
import { renderStartPage } from '../../views/consent-pages.js'
import { renderResultGonePage, renderResultPage } from '../../views/consent-result-pages.js'
import { renderProofWaitingPage } from '../../views/consent-waiting.js'
import { readSignedCookie, sendPage } from '../browser.js'
import {
  cloudFormSchema,
  FLOW_COOKIE,
  FLOW_COOKIE_PATH,
  flowCookieOptions,
  limitConsentTraffic,
  sendFailurePage,
  startFormGuard,
  startFormPageRoute,
} from './flow-start.js'
import { completeManageSignIn, manageSessionArea } from './manage.js'
import { appParams, flowStartResponses, htmlPage, noParams, redirect } from './schemas.js'

/** The waiting page of an admin-consent proof (under the flow cookie's path). */
export const PROOF_STATUS_PATH = '/callback/status'

/** Carries the id of the one-time result; read only by the result page. */
export const RESULT_COOKIE = 'cb_consent_result'
/** The result cookie is sent to the result page only. */
export const RESULT_COOKIE_PATH = '/result'

const text = (maxLength: number) => ({ type: 'string', maxLength }) as const
/** The home page's search form: words to find in integration and app names. */
const appSearchQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { q: text(MAX_QUERY_LENGTH) },
} as const

const callbackQuerySchema = {
  type: 'object',
  // Entra adds more (session_state, scope, error_uri, trace ids …): accepted, ignored.
  additionalProperties: true,
  properties: {
    code: text(8192),
    state: text(512),
    error: text(256),
    error_description: text(4096),
    error_subcode: text(256),
    admin_consent: text(16),
    tenant: text(256),
    scope: text(4096),
    session_state: text(512),
  },
} as const

export async function consentRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app
  const flow = app.services.consentFlow
  const manageArea = manageSessionArea(app)
  const flowCookie = flowCookieOptions(config)
  const resultCookie: CookieSerializeOptions = { ...flowCookie, path: RESULT_COOKIE_PATH }
  const formGuard = startFormGuard(app)

  const sendFailure = (request: FastifyRequest, reply: FastifyReply, failure: ConsentFailure) =>
    sendFailurePage(app, request, reply, failure)

  const limitAuthorizations = (request: FastifyRequest) =>
    limitConsentTraffic(app, request, 'too many authorization attempts from this address; try again later')

  app.get<{ Querystring: { q?: string } }>(
    '/',
    {
      config: { html: true, logQuery: ['q'] },
      schema: { querystring: appSearchQuery, response: { 200: htmlPage } },
    },
    async (request, reply) => sendPage(reply, 200, renderAppListPage(config.apps, request.query.q ?? '')),
  )

  startFormPageRoute(app, '/:app', formGuard, (page) =>
    renderStartPage({
      ...page,
      adminRoleIds: config.adminRoleIds,
      flowMinutes: Math.round(config.consent.flowTtlMs / 60_000),
    }),
  )

  app.post<{ Params: { app: string }; Body: { cloud?: string } | undefined }>(
    '/:app/start',
    {
      config: { html: true },
      preValidation: formGuard.check('the authorization must be started from this site'),
      preHandler: limitAuthorizations,
      schema: {
        params: appParams,
        querystring: noParams,
        body: cloudFormSchema,
        response: flowStartResponses,
      },
    },
    async (request, reply) => {
      const outcome = await flow.start(request.params.app, request.body?.cloud, request.log)
      if (outcome.kind === 'failed') return sendFailure(request, reply, outcome.failure)
      reply.setCookie(FLOW_COOKIE, outcome.flowHandle, flowCookie)
      return reply.header('cache-control', 'no-store').redirect(outcome.location, 303)
    },
  )

  app.get<{ Querystring: CallbackQuery }>(
    '/callback',
    {
      // Never code, state or session_state (bearer values), nor error_description (free text).
      config: { html: true, logQuery: ['error', 'error_subcode', 'admin_consent', 'tenant'] },
      // Fastify's automatic HEAD would run this handler and end the flow: HEAD is 405 here.
      exposeHeadRoute: false,
      preHandler: limitAuthorizations,
      schema: {
        querystring: callbackQuerySchema,
        response: {
          303: redirect,
          400: htmlPage,
          403: htmlPage,
          409: htmlPage,
          429: htmlPage,
          500: htmlPage,
          502: htmlPage,
          503: htmlPage,
        },
      },
    },
    async (request, reply) => {
      const outcome = await flow.callback(readSignedCookie(request, FLOW_COOKIE), request.query, request.log)
      reply.header('cache-control', 'no-store')
      switch (outcome.kind) {
        case 'redirect':
          reply.setCookie(FLOW_COOKIE, outcome.flowHandle, flowCookie)
          return reply.redirect(outcome.location, 303)
        case 'completed':
          reply.clearCookie(FLOW_COOKIE, { path: FLOW_COOKIE_PATH })
          reply.setCookie(RESULT_COOKIE, outcome.resultHandle, resultCookie)
          // Post/Redirect/Get: the result page's URL carries nothing, and a reload can't re-run this.
          return reply.redirect('/result', 303)
        case 'failed':
          // A callback that was not this browser's flow leaves the flow (and its cookie) alone.
          if (outcome.flowKept !== true) reply.clearCookie(FLOW_COOKIE, { path: FLOW_COOKIE_PATH })
          return sendFailure(request, reply, outcome.failure)
        case 'manage-signed-in':
          reply.clearCookie(FLOW_COOKIE, { path: FLOW_COOKIE_PATH })
          return completeManageSignIn(manageArea, config, request, reply, outcome)
        case 'proving':
          // The proof goes on in the background: the browser waits on a page that reloads itself
          // (Post/Redirect/Get, so a reload never re-runs this callback).
          reply.setCookie(FLOW_COOKIE, outcome.flowHandle, flowCookie)
          return reply.redirect(PROOF_STATUS_PATH, 303)
      }
    },
  )

  // The waiting page of an admin-consent proof, under the flow cookie's path so the cookie that
  // names the proof reaches it. Each reload is one store read; no rate limit of its own.
  app.get(
    PROOF_STATUS_PATH,
    {
      config: { html: true },
      exposeHeadRoute: false,
      schema: {
        querystring: noParams,
        response: {
          200: htmlPage,
          303: redirect,
          400: htmlPage,
          403: htmlPage,
          409: htmlPage,
          500: htmlPage,
          502: htmlPage,
          503: htmlPage,
        },
      },
    },
    async (request, reply) => {
      const flowHandle = readSignedCookie(request, FLOW_COOKIE)
      const status = await flow.proofStatus(flowHandle, request.log)
      reply.header('cache-control', 'no-store')
      switch (status.kind) {
        case 'pending': {
          const slug = flowHandle?.slice(0, flowHandle.indexOf('.'))
          const proving = slug === undefined ? undefined : findApp(config, slug)
          const budgetSeconds = Math.round(config.consent.proofBudgetMs / 1000)
          return sendPage(reply, 200, renderProofWaitingPage(proving, budgetSeconds))
        }
        case 'completed':
          reply.clearCookie(FLOW_COOKIE, { path: FLOW_COOKIE_PATH })
          reply.setCookie(RESULT_COOKIE, status.resultHandle, resultCookie)
          return reply.redirect('/result', 303)
        case 'failed':
          reply.clearCookie(FLOW_COOKIE, { path: FLOW_COOKIE_PATH })
          return sendFailure(request, reply, status.failure)
        case 'unknown': {
          // The cookie is left alone: it may name a sign-in still in progress, which a link to this
          // page from another site (SameSite=Lax sends the cookie) must not end. An expired one is
          // refused by /callback and expires by itself.
          const reason = flowHandle === undefined ? 'session_missing' : 'session_expired'
          const slug = flowHandle?.slice(0, flowHandle.indexOf('.'))
          return sendFailure(request, reply, {
            reason,
            status: statusOf(reason),
            app: slug === undefined ? undefined : findApp(config, slug),
            purpose: 'consent',
          })
        }
      }
    },
  )

  // HEAD answers whether the result is still there and never takes it (Fastify's automatic HEAD
  // would run the GET handler, and the browser's GET would then find the Key gone).
  app.head(
    '/result',
    {
      config: { html: true },
      schema: { querystring: noParams, response: { 200: htmlPage, 410: htmlPage } },
    },
    async (request, reply) => {
      const present = await flow.hasResult(readSignedCookie(request, RESULT_COOKIE))
      return sendPage(reply, present ? 200 : 410, '')
    },
  )

  app.get(
    '/result',
    {
      config: { html: true },
      exposeHeadRoute: false,
      schema: { querystring: noParams, response: { 200: htmlPage, 410: htmlPage } },
    },
    async (request, reply) => {
      const result = await flow.takeResult(readSignedCookie(request, RESULT_COOKIE))
      reply.clearCookie(RESULT_COOKIE, { path: RESULT_COOKIE_PATH })
      if (result === null) return sendPage(reply, 410, renderResultGonePage())
      return sendPage(reply, 200, renderResultPage(result))
    },
  )
}
