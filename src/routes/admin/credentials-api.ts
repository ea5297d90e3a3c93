// GET /admin/api/credentials: every hosted app's own credentials (secrets, certificates, federated
// token files) with their kind, name or thumbprint, expiry, last success and whether Microsoft
// refused them lately. Registered inside the operator API's scope, so its bearer check applies.
import type { FastifyInstance } from 'fastify'
import type { CredentialStatus } from '../../entra/app-credentials.js'
import { emptyQuery, errorResponses } from './schemas.js'

const isoString = { type: 'string', description: 'ISO 8601 timestamp' } as const

export const credentialStatusSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['app', 'cloud', 'credential', 'kind', 'position', 'expiringSoon'],
  properties: {
    app: { type: 'string' },
    cloud: { type: 'string' },
    credential: {
      type: 'string',
      description: 'certificate:<SHA-1 thumbprint>, secret:<variable or file>, federated:<token file>',
    },
    kind: { type: 'string', enum: ['secret', 'certificate', 'federated'] },
    position: { type: 'integer', minimum: 1, description: '1 = tried first' },
    thumbprint: { type: 'string' },
    subject: { type: 'string' },
    expiresAt: isoString,
    expiresInSeconds: { type: 'integer' },
    expiringSoon: {
      type: 'boolean',
      description: 'expired, or expires within CREDENTIAL_EXPIRY_WARNING_DAYS',
    },
    lastSuccessAt: isoString,
    failing: {
      type: 'string',
      description: 'the AADSTS code Microsoft refused it with, while it is tried last',
    },
  },
} as const

/** A credential's status as the API, the console and the CLI show it. */
export function credentialView(status: CredentialStatus, now: number, warningMs: number) {
  return {
    app: status.app,
    cloud: status.cloud,
    credential: status.credential,
    kind: status.kind,
    position: status.position,
    ...(status.thumbprint === undefined ? {} : { thumbprint: status.thumbprint }),
    ...(status.subject === undefined ? {} : { subject: status.subject }),
    ...(status.expiresAt === undefined
      ? {}
      : {
          expiresAt: new Date(status.expiresAt).toISOString(),
          expiresInSeconds: Math.round((status.expiresAt - now) / 1000),
        }),
    expiringSoon: status.expiresAt !== undefined && status.expiresAt - now <= warningMs,
    ...(status.lastSuccessAt === undefined
      ? {}
      : { lastSuccessAt: new Date(status.lastSuccessAt).toISOString() }),
    ...(status.failing === undefined ? {} : { failing: status.failing }),
  }
}

export function credentialsApiRoute(app: FastifyInstance): void {
  app.get(
    '/admin/api/credentials',
    {
      schema: {
        tags: ['operators'],
        security: [{ operatorToken: [] }],
        summary: "The hosted apps' own credentials: kind, thumbprint or name, expiry, last success, refusals",
        querystring: emptyQuery,
        response: {
          200: {
            type: 'object',
            additionalProperties: false,
            required: ['credentials'],
            properties: { credentials: { type: 'array', items: credentialStatusSchema } },
          },
          ...errorResponses,
        },
      },
    },
    async () => {
      const now = app.clock()
      const statuses = await app.services.credentials.status()
      return {
        credentials: statuses.map((status) =>
          credentialView(status, now, app.config.credentials.expiryWarningMs),
        ),
      }
    },
  )
}
