// The audit log's record shape in both stores: an event as flat stream fields (what Redis XADD
// takes), stream ids as cursors, and the page rule (a full page carries a next cursor).

import { clampLimit } from './pagination.js'
import { pairsToHash } from './registration-hash.js'
import { malformedAuditCursor } from './store-facts.js'
import type { AuditEvent, AuditPage, AuditQuery, AuditRecord, AuditType } from './types.js'

const AUDIT_ID = /^\d+-\d+$/

/**
 * `AuditLog.read`'s arguments, checked the same way in both stores: the page size clamped, and a
 * cursor that is not a stream id `<ms>-<seq>` refused (an `invalid_argument` StoreFact).
 */
export function auditReadArguments(query: AuditQuery): { limit: number; cursor: string | undefined } {
  if (query.cursor !== undefined && !AUDIT_ID.test(query.cursor)) throw malformedAuditCursor()
  return { limit: clampLimit(query.limit), cursor: query.cursor }
}

/** A page of audit records; a full page carries its last id as the cursor of the next. */
export function auditPage(items: AuditRecord[], limit: number): AuditPage {
  const last = items[items.length - 1]
  return { items, ...(items.length === limit && last !== undefined ? { nextCursor: last.id } : {}) }
}

/** An audit event as flat stream fields (detail as JSON). */
export function encodeAuditFields(event: AuditEvent, at: string): string[] {
  const fields = ['type', event.type, 'actor', event.actor, 'at', at]
  if (event.tenantId !== undefined) fields.push('tenantId', event.tenantId)
  if (event.app !== undefined) fields.push('app', event.app)
  if (event.registrationId !== undefined) fields.push('registrationId', event.registrationId)
  if (event.detail !== undefined) fields.push('detail', JSON.stringify(event.detail))
  return fields
}

/** The record of stream entry `id` from its flat fields. */
export function decodeAuditFields(id: string, fields: readonly string[]): AuditRecord {
  const hash = pairsToHash(fields)
  const record: AuditRecord = {
    id,
    type: hash.type as AuditType,
    actor: hash.actor ?? '',
    at: hash.at ?? '',
  }
  if (hash.tenantId !== undefined) record.tenantId = hash.tenantId
  if (hash.app !== undefined) record.app = hash.app
  if (hash.registrationId !== undefined) record.registrationId = hash.registrationId
  if (hash.detail !== undefined) record.detail = JSON.parse(hash.detail) as AuditRecord['detail']
  return record
}
