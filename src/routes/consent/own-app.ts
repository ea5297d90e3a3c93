// A tenant's own app registration: the page that says what to configure (`GET /{app}/own-app`) and
// the form that starts the flow with that app (`POST /{app}/own-app`). The browser method is the
// hosted flow (services/consent-flow.ts) with the tenant's app in place of the hosted app; the
// device code method and its page are in own-app-device.ts.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { CLOUD_NAMES } from '../../clouds.js'
import { findApp } from '../../config.js'
import { parseOwnAppInput } from '../../services/own-app.js'
import { renderOwnAppPage } from '../../views/own-app.js'
import {
  FLOW_COOKIE,
  flowCookieOptions,
  limitConsentTraffic,
  sendFailurePage,
  startFormGuard,
  startFormPageRoute,
} from './flow-start.js'
import { ownAppDeviceRoutes, startDeviceCode } from './own-app-device.js'
import { appParams, flowStartResponses, noParams } from './schemas.js'

/** The own-app form. GUIDs are checked again (trimmed) by the service, which names what is wrong. */
const ownAppFormSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['tenant_id', 'client_id', 'method'],
  properties: {
    tenant_id: { type: 'string', maxLength: 64 },
    client_id: { type: 'string', maxLength: 64 },
    client_secret: { type: 'string', maxLength: 512 },
    method: { type: 'string', enum: ['authorization_code', 'device_code'] },
    cloud: { type: 'string', enum: [...CLOUD_NAMES, ''] },
    csrf: { type: 'string', maxLength: 256 },
  },
} as const

interface OwnAppForm {
  tenant_id: string
  client_id: string
  client_secret?: string
  method: 'authorization_code' | 'device_code'
  cloud?: string
  csrf?: string
}

export async function ownAppRoutes(app: FastifyInstance): Promise<void> {
  const { config } = app
  const flow = app.services.consentFlow
  // The same CSRF guard as the hosted start form (signed double-submit cookie, Fetch Metadata).
  const formGuard = startFormGuard(app)
  const flowCookie = flowCookieOptions(config)
  const limit = (request: FastifyRequest) =>
    limitConsentTraffic(app, request, 'too many authorization attempts from this address; try again later')

  startFormPageRoute(app, '/:app/own-app', formGuard, (page) =>
    renderOwnAppPage({ ...page, redirectUri: `${config.publicUrl}/callback` }),
  )

  app.post<{ Params: { app: string }; Body: OwnAppForm }>(
    '/:app/own-app',
    {
      config: { html: true },
      preHandler: limit,
      preValidation: formGuard.check('the authorization must be started from this site'),
      schema: {
        params: appParams,
        querystring: noParams,
        body: ownAppFormSchema,
        response: flowStartResponses,
      },
    },
    async (request, reply) => {
      const hosted = findApp(config, request.params.app)
      if (hosted === undefined) return reply.callNotFound()
      const body = request.body
      const device = body.method === 'device_code'
      // The device code method is a public client: a secret typed in anyway is neither used nor kept.
      const ownApp = parseOwnAppInput(
        {
          tenantId: body.tenant_id,
          clientId: body.client_id,
          clientSecret: device ? undefined : body.client_secret,
        },
        !device,
      )
      if (ownApp === undefined) {
        const failure = { reason: 'own_app_invalid', status: 400, app: hosted, purpose: 'consent' } as const
        return sendFailurePage(app, request, reply, failure)
      }
      if (device) return startDeviceCode(app, request, reply, hosted.slug, body.cloud, ownApp)
      const outcome = await flow.start(hosted.slug, body.cloud, request.log, 'consent', ownApp)
      if (outcome.kind === 'failed') {
        return sendFailurePage(app, request, reply, outcome.failure)
      }
      reply.setCookie(FLOW_COOKIE, outcome.flowHandle, flowCookie)
      return reply.header('cache-control', 'no-store').redirect(outcome.location, 303)
    },
  )
  await ownAppDeviceRoutes(app)
}
