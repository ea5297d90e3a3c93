// GET /admin/api/audit: the audit trail, oldest first after a cursor or from a time (`since`), or
// newest first before a cursor. Registered inside the operator API's scope, so its bearer check
// applies; reads are not audited.
import type { FastifyInstance } from 'fastify'
import { cursorWithSince, sinceNotAnInstant, sinceWithDescendingOrder } from '../../errors.js'
import { auditCursorSince, readAudit } from '../../services/audit.js'
import {
  AUDIT_CURSOR_PATTERN,
  auditRecordSchema,
  errorResponses,
  pageLimitSchema,
  pageSchema,
} from './schemas.js'

export function auditApiRoute(app: FastifyInstance): void {
  app.get<{ Querystring: { cursor?: string; since?: string; limit?: number; order?: 'asc' | 'desc' } }>(
    '/admin/api/audit',
    {
      config: { logQuery: ['cursor', 'since', 'limit', 'order'] },
      schema: {
        summary:
          'The audit trail: oldest first after `cursor` (exclusive) or from `since`; or newest first (`order=desc`) before `cursor`',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            cursor: { type: 'string', pattern: AUDIT_CURSOR_PATTERN, maxLength: 64 },
            since: {
              type: 'string',
              format: 'date-time',
              description: 'first event recorded at or after this time (ISO 8601)',
            },
            limit: pageLimitSchema,
            order: {
              type: 'string',
              enum: ['asc', 'desc'],
              description: '`asc` (default): oldest first; `desc`: newest first (not with `since`)',
            },
          },
        },
        response: {
          200: pageSchema(auditRecordSchema, 'the id of the last item; present when the page was full'),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const { since, limit, order } = request.query
      if (since !== undefined && request.query.cursor !== undefined) {
        throw cursorWithSince()
      }
      if (since !== undefined && order === 'desc') {
        throw sinceWithDescendingOrder()
      }
      const sinceMs = since === undefined ? undefined : Date.parse(since)
      // the date-time format takes a leap second, which Date.parse can't read (NaN)
      if (sinceMs !== undefined && !Number.isFinite(sinceMs)) throw sinceNotAnInstant()
      const cursor = sinceMs === undefined ? request.query.cursor : auditCursorSince(sinceMs)
      return readAudit(app.store, {
        ...(cursor === undefined ? {} : { cursor }),
        ...(limit === undefined ? {} : { limit }),
        ...(order === undefined ? {} : { order }),
      })
    },
  )
}
