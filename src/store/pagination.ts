// Listing pages alike in both stores: registrations are ordered by (creation time, id), a cursor
// is that position encoded opaquely, so a page never shifts under concurrent inserts; filters and
// page sizes are the same everywhere.
import { malformedCursor } from './store-facts.js'
import type { RegistrationQuery } from './types.js'

/** Whether a registration passes a listing's filters (tenant, app, status). */
export function matchesQuery(
  registration: { readonly tenantId?: string; readonly app?: string; readonly status?: string },
  query: RegistrationQuery,
): boolean {
  return (
    (query.tenantId === undefined || registration.tenantId === query.tenantId) &&
    (query.app === undefined || registration.app === query.app) &&
    (query.status === undefined || registration.status === query.status)
  )
}

/** A position in an index ordered by (creation time, id). */
export interface IndexPosition {
  /** Creation time, epoch ms (the sorted-set score). */
  score: number
  id: string
}

/** Page size when a listing names none. */
export const DEFAULT_PAGE_SIZE = 50
/** The largest page a listing returns. */
export const MAX_PAGE_SIZE = 500

/** 1..max (default when absent); fractional and out-of-range values are clamped. */
export function clampLimit(
  limit: number | undefined,
  fallback = DEFAULT_PAGE_SIZE,
  max = MAX_PAGE_SIZE,
): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback
  return Math.min(max, Math.max(1, Math.trunc(limit)))
}

/** Ids compare as Redis compares sorted-set members with equal scores: bytewise. */
export function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/** Orders positions by score, then id (as a Redis sorted set does). */
export function comparePositions(a: IndexPosition, b: IndexPosition): number {
  return a.score === b.score ? compareIds(a.id, b.id) : a.score < b.score ? -1 : 1
}

/** The opaque cursor of a position (base64url JSON). */
export function encodeCursor(position: IndexPosition): string {
  return Buffer.from(JSON.stringify([position.score, position.id]), 'utf8').toString('base64url')
}

/** The position of a cursor from `encodeCursor`; an `invalid_argument` StoreFact when it is not one. */
export function decodeCursor(cursor: string): IndexPosition {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'number' &&
      Number.isFinite(value[0]) &&
      typeof value[1] === 'string'
    ) {
      return { score: value[0], id: value[1] }
    }
  } catch {
    // fall through
  }
  throw malformedCursor()
}

/** The opaque cursor of a tenants page: the last tenant id of the page (base64url). */
export function encodeTenantCursor(tenantId: string): string {
  return Buffer.from(tenantId, 'utf8').toString('base64url')
}

/** The tenant id of a cursor from `encodeTenantCursor`; an `invalid_argument` StoreFact when it is not one. */
export function decodeTenantCursor(cursor: string): string {
  const tenantId = /^[A-Za-z0-9_-]{1,400}$/.test(cursor)
    ? Buffer.from(cursor, 'base64url').toString('utf8')
    : ''
  if (tenantId === '' || encodeTenantCursor(tenantId) !== cursor) {
    throw malformedCursor()
  }
  return tenantId
}
