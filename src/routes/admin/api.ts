// The operator API, `/admin/api/*`: JSON in, JSON out, `Authorization: Bearer <operator token>`.
// Authentication runs in onRequest, before body parsing and validation, so a caller without a valid
// token learns nothing, not even whether its request was well-formed.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { errorBodySchema, invalidRequest, operatorUnknown } from '../../errors.js'
import {
  listRegistrations,
  readRegistrationAsOperator,
  summarizeTenants,
} from '../../services/admin-queries.js'
import type { KeyRotation } from '../../services/key-rotation.js'
import { setTenantLabel } from '../../services/tenant-labels.js'
import type { RegistrationStatus } from '../../store/types.js'
import { acceptJsonBodiesOnly, validateOperatorRequests } from '../json-bodies.js'
import { requireOperator } from '../operator-token.js'
import { auditApiRoute } from './audit-api.js'
import { credentialsApiRoute } from './credentials-api.js'
import {
  appSlugSchema,
  emptyQuery,
  errorResponses,
  pageLimitSchema,
  pageSchema,
  reasonBodySchema,
  registrationIdParams,
  registrationSchema,
  registrationStatusSchema,
  rotationStatusSchema,
  TENANT_ID_PATTERN,
  tenantIdParams,
  tenantLabelBodySchema,
  tenantRevokeBodySchema,
  tenantSummarySchema,
} from './schemas.js'
import { upgradeApiRoutes } from './upgrade-api.js'
import { webhookApiRoutes } from './webhooks-api.js'

export interface AdminApiOptions {
  keyRotation: KeyRotation
}

const operators = new WeakMap<FastifyRequest, string>()

/** The authenticated operator of a request that passed the API's onRequest hook. */
function operatorOf(request: FastifyRequest): string {
  const name = operators.get(request)
  if (name === undefined) throw operatorUnknown()
  return name
}

export async function adminApiRoutes(app: FastifyInstance, options: AdminApiOptions): Promise<void> {
  const { keyRotation } = options
  const { revocation } = app.services
  // Before any child scope is made: they take JSON alone too, validated as sent, unknown fields refused.
  acceptJsonBodiesOnly(app)
  validateOperatorRequests(app)

  app.addHook('onRequest', async (request, reply) => {
    reply.header('cache-control', 'no-store')
    const operator = await requireOperator(app, request, reply)
    operators.set(request, operator)
    request.log = request.log.child({ operator })
  })
  // An endpoint without a body schema takes no body: one sent anyway (`{"dryRun": true}` to start a
  // key rotation) is refused like an unknown field, not ignored. `{}` passes: some clients send an
  // empty object with every POST. (Schemas can't say this: Fastify validates an absent body too.)
  app.addHook('preValidation', (request, _reply, done) => {
    const body = request.body
    const sent = body !== undefined && body !== null
    const empty = sent && typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0
    if (sent && !empty && request.routeOptions.schema?.body === undefined) {
      done(invalidRequest('this endpoint takes no request body (send none, or {})'))
      return
    }
    done()
  })

  credentialsApiRoute(app)
  upgradeApiRoutes(app, operatorOf)

  await app.register(webhookApiRoutes, { operatorOf })

  app.get<{ Querystring: { app?: string; cursor?: string; limit?: number } }>(
    '/admin/api/tenants',
    {
      config: { logQuery: ['app', 'cursor', 'limit'] },
      schema: {
        summary:
          'Tenants with a registration, by tenant id, a page at a time: apps, counts by status, last token, last consent',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            app: appSlugSchema,
            cursor: { type: 'string', minLength: 1, maxLength: 512 },
            limit: pageLimitSchema,
          },
        },
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['tenants'],
            properties: {
              tenants: { type: 'array', items: tenantSummarySchema },
              nextCursor: { type: 'string', description: 'absent on the last page' },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { app: appSlug, cursor, limit } = request.query
      return summarizeTenants(app.store, {
        ...(appSlug === undefined ? {} : { app: appSlug }),
        ...(cursor === undefined ? {} : { cursor }),
        ...(limit === undefined ? {} : { limit }),
      })
    },
  )

  app.get<{
    Querystring: {
      tenant?: string
      app?: string
      status?: RegistrationStatus
      cursor?: string
      limit?: number
    }
  }>(
    '/admin/api/registrations',
    {
      config: { logQuery: ['tenant', 'app', 'status', 'cursor', 'limit'] },
      schema: {
        summary: 'Registrations, newest last, paged with a cursor that is stable under inserts',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            tenant: { type: 'string', pattern: TENANT_ID_PATTERN },
            app: appSlugSchema,
            status: registrationStatusSchema,
            cursor: { type: 'string', minLength: 1, maxLength: 512 },
            limit: pageLimitSchema,
          },
        },
        response: {
          200: pageSchema(registrationSchema, 'absent on the last page'),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      return listRegistrations(app.store, request.query)
    },
  )

  app.get<{ Params: { id: string } }>(
    '/admin/api/registrations/:id',
    {
      schema: {
        summary: 'One registration: metadata and usage, never a secret',
        params: registrationIdParams,
        querystring: emptyQuery,
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['registration'],
            properties: { registration: registrationSchema },
          },
          404: errorBodySchema,
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const reader = { operator: operatorOf(request), via: 'api' } as const
      return {
        registration: await readRegistrationAsOperator(app.store, request.params.id, reader, request.log),
      }
    },
  )

  app.post<{ Params: { id: string }; Body: { reason: string } }>(
    '/admin/api/registrations/:id/revoke',
    {
      schema: {
        summary: 'Revoke one registration (idempotent)',
        description:
          'Deletes the refresh token and cached access tokens; obtain-token answers 401 `revoked` at once on every instance. Revoking a revoked registration returns it unchanged, with the original detail.',
        params: registrationIdParams,
        querystring: emptyQuery,
        body: reasonBodySchema,
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['registration', 'alreadyRevoked'],
            properties: { registration: registrationSchema, alreadyRevoked: { type: 'boolean' } },
          },
          404: errorBodySchema,
          409: errorBodySchema,
          ...errorResponses,
        },
      },
    },
    async (request) => {
      return revocation.registration(
        request.params.id,
        {
          actor: { kind: 'operator', name: operatorOf(request) },
          reason: request.body.reason,
        },
        request.log,
      )
    },
  )

  app.post<{ Params: { tenantId: string }; Body: { reason: string; app?: string } }>(
    '/admin/api/tenants/:tenantId/revoke',
    {
      schema: {
        summary: "Revoke every registration of a tenant, or of one of the tenant's apps",
        params: tenantIdParams,
        querystring: emptyQuery,
        body: tenantRevokeBodySchema,
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['tenantId', 'revoked', 'alreadyRevoked'],
            properties: {
              tenantId: { type: 'string' },
              app: { type: 'string' },
              revoked: { type: 'array', items: registrationSchema },
              alreadyRevoked: { type: 'integer' },
            },
          },
          404: errorBodySchema,
          409: errorBodySchema,
          ...errorResponses,
        },
      },
    },
    async (request) => {
      return revocation.tenant(
        request.params.tenantId.toLowerCase(),
        {
          actor: { kind: 'operator', name: operatorOf(request) },
          reason: request.body.reason,
          ...(request.body.app === undefined ? {} : { app: request.body.app }),
        },
        request.log,
      )
    },
  )

  app.patch<{ Params: { tenantId: string }; Body: { label: string } }>(
    '/admin/api/tenants/:tenantId',
    {
      schema: {
        summary: "Set a tenant's label (audited)",
        description:
          "Replaces the tenant's label — by default the domain of the first consenting user — with the operator's; later consents never change it. The tenant must have a registration (404 otherwise). Leading and trailing spaces are trimmed.",
        params: tenantIdParams,
        querystring: emptyQuery,
        body: tenantLabelBodySchema,
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['tenantId', 'label'],
            properties: {
              tenantId: { type: 'string' },
              label: { type: 'string' },
              previous: { type: 'string', description: 'the label it replaced, when there was one' },
            },
          },
          404: errorBodySchema,
          ...errorResponses,
        },
      },
    },
    async (request) => {
      return setTenantLabel(
        app.store,
        request.params.tenantId,
        request.body.label,
        operatorOf(request),
        request.log,
      )
    },
  )

  auditApiRoute(app)

  const rotationResponse = {
    type: 'object',
    additionalProperties: false,
    required: ['rotation'],
    properties: { rotation: rotationStatusSchema, started: { type: 'boolean' } },
  } as const

  app.post(
    '/admin/api/keys/rotate',
    {
      schema: {
        summary: 'Re-seal every stored secret under the newest master key (background, resumable)',
        description:
          'Starts a pass, or resumes an interrupted one, unless one is running on any instance; answers 202 at once with the progress. Poll `GET /admin/api/keys/rotation`.',
        querystring: emptyQuery,
        response: { 202: rotationResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { status, started } = await keyRotation.start({ kind: 'operator', name: operatorOf(request) })
      return reply.code(202).send({ rotation: status, started })
    },
  )

  app.get(
    '/admin/api/keys/rotation',
    {
      schema: {
        summary: 'Progress of the latest key rotation pass',
        querystring: emptyQuery,
        response: { 200: rotationResponse, ...errorResponses },
      },
    },
    async () => ({ rotation: await keyRotation.status() }),
  )
}
