// The store upgrade's operator routes: GET /admin/api/upgrade (expanded while the store keeps the
// previous release's layout too, contracted once finished) and POST /admin/api/upgrade/finish (the
// contract, once every instance runs this release: services/index-rebuild.ts, store-upgrade.ts).
// Registered inside the operator API's scope, so its bearer check applies.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { emptyQuery, errorResponses } from './schemas.js'

const upgradeStatusSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['state'],
  properties: {
    state: {
      type: 'string',
      enum: ['expanded', 'finishing', 'contracted', 'failed'],
      description:
        'expanded: the previous release layout is kept too (a rolling upgrade; rollback possible); finishing: this instance is finishing; contracted: finished (no rollback to the previous release); failed: the last finish on this instance failed (run it again)',
    },
    error: { type: 'string', description: 'why the last finish on this instance failed' },
  },
} as const

const upgradeResponse = {
  type: 'object',
  additionalProperties: false,
  required: ['upgrade'],
  properties: { upgrade: upgradeStatusSchema, started: { type: 'boolean' } },
} as const

/** The upgrade routes; `operatorOf` names the authenticated operator (the API's onRequest hook). */
export function upgradeApiRoutes(
  app: FastifyInstance,
  operatorOf: (request: FastifyRequest) => string,
): void {
  const { indexRebuild } = app.services

  app.get(
    '/admin/api/upgrade',
    {
      schema: {
        summary: 'Whether the store still keeps the previous release layout (a rolling upgrade)',
        querystring: emptyQuery,
        response: { 200: upgradeResponse, ...errorResponses },
      },
    },
    async () => ({ upgrade: await indexRebuild.upgradeStatus() }),
  )

  app.post(
    '/admin/api/upgrade/finish',
    {
      schema: {
        summary: 'Finish an upgrade from the previous release once every instance runs this one (background)',
        description:
          'Re-syncs the listing indexes from the records, moves the delegated claims and idle entries into their buckets, then drops the previous release layout. Only once no instance of the previous release runs: it would misbehave afterwards, and rolling back to it is not supported after this. Idempotent; answers 202 at once. Poll `GET /admin/api/upgrade` until `contracted`. Audited (`store.upgrade_finished`).',
        querystring: emptyQuery,
        response: { 202: upgradeResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { status, started } = await indexRebuild.finishUpgrade({
        kind: 'operator',
        name: operatorOf(request),
      })
      return reply.code(202).send({ upgrade: status, started })
    },
  )
}
