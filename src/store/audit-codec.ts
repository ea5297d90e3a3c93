// The audit log's record shape in both stores: an event as flat stream fields (what Redis XADD
// takes), stream ids as cursors, and the page rule (a full page carries a next cursor).

import { clampLimit } from './pagination.js'
import { pairsToHash } from './registration-hash.js'
import { auditCursorOutOfRange, malformedAuditCursor } from './store-facts.js'
import type { AuditEvent, AuditPage, AuditQuery, AuditRecord, AuditType } from './types.js'

const AUDIT_ID = /^(\d+)-(\d+)$/
/** Each part of a Redis stream id is an unsigned 64-bit integer: Redis refuses a larger one. */
const STREAM_ID_PART_MAX = 2n ** 64n - 1n
/** More digits than any part in range can have (20), leading zeros allowed: no BigInt of a huge string. */
const PART_DIGITS_MAX = 40

/** An audit record id (stream id) as its two parts, for comparing ids in stream order. */
export type AuditPosition = readonly [ms: bigint, seq: bigint]

/**
 * The position of audit cursor `cursor`: a StoreFact `invalid_argument` when it is not a stream id
 * `<ms>-<seq>`, or when a part is past 2^64 − 1 — Redis would refuse it (XRANGE: "Invalid stream
 * ID"), and no record has such an id, so both stores refuse it alike.
 */
export function auditPosition(cursor: string): AuditPosition {
  const parts = AUDIT_ID.exec(cursor)
  if (parts === null) throw malformedAuditCursor()
  const [ms, seq] = [parts[1]!, parts[2]!].map((part) =>
    part.length > PART_DIGITS_MAX ? STREAM_ID_PART_MAX + 1n : BigInt(part),
  ) as [bigint, bigint]
  if (ms > STREAM_ID_PART_MAX || seq > STREAM_ID_PART_MAX) throw auditCursorOutOfRange()
  return [ms, seq]
}

/** Sign of (a − b) in stream-id order. */
export function compareAuditPositions(a: AuditPosition, b: AuditPosition): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1
  return a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1
}

/**
 * `AuditLog.read`'s arguments, checked the same way in both stores: the page size clamped, the
 * cursor's position (auditPosition refuses what is not a stream id in range), and whether the read
 * is `exhausted` — an exclusive cursor with nothing beyond it (before 0-0 newest first, after the
 * largest id oldest first): an empty page, which Redis can't express as an exclusive range.
 */
export function auditReadArguments(query: AuditQuery): {
  limit: number
  cursor: string | undefined
  position: AuditPosition | undefined
  exhausted: boolean
} {
  const limit = clampLimit(query.limit)
  if (query.cursor === undefined) return { limit, cursor: undefined, position: undefined, exhausted: false }
  const position = auditPosition(query.cursor)
  const edge = query.order === 'desc' ? 0n : STREAM_ID_PART_MAX
  return { limit, cursor: query.cursor, position, exhausted: position[0] === edge && position[1] === edge }
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
