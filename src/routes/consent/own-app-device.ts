// The device code method of a tenant's own app registration, over HTTP: starting it (called by the
// own-app form's POST when `method=device_code`) and its page `GET /{app}/own-app/device/{flow}`,
// which any instance serves. The browser that started the flow holds a secret in a signed cookie;
// the flow id in the URL alone opens nothing. The flow itself lives in services/device-code-flow.ts.
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { OwnAppInput } from '../../services/own-app.js'
import { renderDeviceCodePage } from '../../views/own-app-device.js'
import { readSignedCookie, sendPage } from '../browser.js'
import { flowCookieOptions, sendFailurePage } from './flow-start.js'
import { RESULT_COOKIE, RESULT_COOKIE_PATH } from './index.js'
import { htmlPage, noParams, redirect } from './schemas.js'

/** The secret of the browser that starts device code flows (reused by its later flows). */
export const DEVICE_BROWSER_COOKIE = 'cb_device_browser'

const deviceParams = {
  type: 'object',
  required: ['app', 'flow'],
  additionalProperties: false,
  properties: {
    app: { type: 'string', minLength: 1, maxLength: 200 },
    flow: { type: 'string', minLength: 1, maxLength: 64 },
  },
} as const

/** The browser cookie: sent to the own-app form and the device pages of this app only. */
function browserCookie(app: FastifyInstance, slug: string): CookieSerializeOptions {
  return { ...flowCookieOptions(app.config), path: `/${slug}/own-app`, maxAge: 3_600 }
}

/**
 * Starts a device code flow for the own-app form's POST: on to its page with the browser cookie
 * set, or the failure page (nothing stored).
 */
export async function startDeviceCode(
  app: FastifyInstance,
  request: FastifyRequest,
  reply: FastifyReply,
  slug: string,
  cloud: string | undefined,
  ownApp: OwnAppInput,
): Promise<FastifyReply> {
  const outcome = await app.services.deviceCodeFlow.start(
    slug,
    cloud,
    { tenantId: ownApp.tenantId, clientId: ownApp.clientId },
    readSignedCookie(request, DEVICE_BROWSER_COOKIE),
    request.log,
  )
  if (outcome.kind === 'failed') {
    return sendFailurePage(app, request, reply, outcome.failure)
  }
  reply.setCookie(DEVICE_BROWSER_COOKIE, outcome.browserSecret, browserCookie(app, slug))
  return reply
    .header('cache-control', 'no-store')
    .redirect(`/${encodeURIComponent(slug)}/own-app/device/${outcome.flowId}`, 303)
}

export async function ownAppDeviceRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app
  const flow = app.services.deviceCodeFlow
  const resultCookie: CookieSerializeOptions = { ...flowCookieOptions(config), path: RESULT_COOKIE_PATH }

  app.get<{ Params: { app: string; flow: string } }>(
    '/:app/own-app/device/:flow',
    {
      config: { html: true },
      // A HEAD must not collect an ended flow (Fastify's automatic HEAD would run this handler).
      exposeHeadRoute: false,
      schema: {
        params: deviceParams,
        querystring: noParams,
        response: {
          200: htmlPage,
          303: redirect,
          400: htmlPage,
          403: htmlPage,
          404: htmlPage,
          409: htmlPage,
          502: htmlPage,
          503: htmlPage,
        },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store')
      const view = await flow.view(
        request.params.app,
        request.params.flow,
        readSignedCookie(request, DEVICE_BROWSER_COOKIE),
      )
      switch (view.kind) {
        case 'pending':
          return sendPage(
            reply,
            200,
            renderDeviceCodePage({
              app: view.app,
              cloud: view.cloud,
              userCode: view.userCode,
              verificationUri: view.verificationUri,
              minutesLeft: view.minutesLeft,
              refreshSeconds: view.refreshSeconds,
            }),
          )
        case 'completed':
          // The same one-time result page as the browser method (Post/Redirect/Get).
          reply.setCookie(RESULT_COOKIE, view.resultHandle, resultCookie)
          return reply.redirect('/result', 303)
        case 'failed':
          return sendFailurePage(app, request, reply, view.failure)
      }
    },
  )
}
