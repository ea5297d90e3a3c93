// The audit trail: who did what, when and why. Appends go to the store's append-only log (a Redis
// stream with a retention); reads page through it oldest first by stream id.
import type { FastifyBaseLogger } from 'fastify'
import { displayableText } from '../one-line-text.js'
import type { AuditEvent, AuditRecord, Store } from '../store/types.js'

/** Who acted. Operators by their configured name, tenant admins by tenant and object id. */
export type Actor =
  | { readonly kind: 'operator'; readonly name: string }
  | {
      readonly kind: 'tenant_admin'
      readonly tenantId: string
      readonly oid: string
      /** `preferred_username` from the validated ID token, for display. */
      readonly name: string
    }
  | { readonly kind: 'system' }

/** `operator:<name>`, `tenant-admin:<tid>/<oid>` or `system`, as stored in `AuditEvent.actor`. */
export function actorLabel(actor: Actor): string {
  switch (actor.kind) {
    case 'operator':
      return `operator:${actor.name}`
    case 'tenant_admin':
      return `tenant-admin:${actor.tenantId}/${actor.oid}`
    case 'system':
      return 'system'
  }
}

/** Longest user name (UPN) kept in an audit record's detail; Entra's are at most 113 characters. */
const MAX_AUDITED_USER = 128

/**
 * The `user` field of a consent event's detail: the ID token's preferred_username, so an operator
 * reading the trail can tell who it was (the actor names the user by GUIDs only); displayable text,
 * bounded. Nothing when unknown.
 */
export function auditedUser(upn: string | undefined): { user?: string } {
  return upn ? { user: displayableText(upn, MAX_AUDITED_USER) } : {}
}

/** The human name recorded in a registration's `statusDetail.by`. */
export function actorDisplayName(actor: Actor): string {
  switch (actor.kind) {
    case 'operator':
      return actor.name
    case 'tenant_admin':
      return actor.name === '' ? `tenant admin ${actor.oid}` : actor.name
    case 'system':
      return 'system'
  }
}

/**
 * Appends an event. The action it records has already happened and must not be reported as failed
 * because the trail was unavailable, so a failed append is logged in full (the log is the fallback
 * trail) and returns undefined instead of throwing.
 */
export async function recordAudit(
  store: Pick<Store, 'audit'>,
  log: FastifyBaseLogger,
  event: AuditEvent,
): Promise<string | undefined> {
  try {
    return await store.audit.append(event)
  } catch (err) {
    log.error({ err, audit: event }, 'audit append failed; the event is recorded in this log line only')
    return undefined
  }
}

/** Events per page when a reader names no limit. */
export const AUDIT_PAGE_DEFAULT = 50
/** The most events one page holds; larger limits are clamped to it. */
export const AUDIT_PAGE_MAX = 500

/**
 * The cursor that starts a read at the first event at or after `sinceMs`: stream ids are
 * `<ms>-<seq>` and a read starts after its cursor, so this is the last possible id of the previous
 * millisecond. Undefined (= from the beginning) for a time before the epoch; a RangeError for NaN
 * or an infinity (the caller checks its input first).
 */
export function auditCursorSince(sinceMs: number): string | undefined {
  // a caller's unreadable time (NaN) must not become the cursor `NaN-…`, refused as "malformed"
  if (!Number.isFinite(sinceMs)) throw new RangeError(`auditCursorSince: ${sinceMs} is not a time`)
  const ms = Math.floor(sinceMs)
  return ms <= 0 ? undefined : `${ms - 1}-18446744073709551615`
}

/**
 * One page of the trail after `cursor` (oldest first, or newest first with `order: 'desc'`), with
 * `limit` clamped to 1…AUDIT_PAGE_MAX (default AUDIT_PAGE_DEFAULT). `nextCursor` is absent on the
 * last page. A malformed cursor is refused by the store.
 */
export async function readAudit(
  store: Pick<Store, 'audit'>,
  options: { cursor?: string; limit?: number; order?: 'asc' | 'desc' },
): Promise<{ items: AuditRecord[]; nextCursor?: string }> {
  return store.audit.read({
    ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
    ...(options.order === undefined ? {} : { order: options.order }),
    limit: Math.min(AUDIT_PAGE_MAX, Math.max(1, options.limit ?? AUDIT_PAGE_DEFAULT)),
  })
}
