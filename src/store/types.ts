// The storage contract. Two implementations: redis.ts over src/store/redis/ (production,
// Cluster-safe) and memory.ts over src/store/memory/ (demo, single process). Both pass
// test/integration/store-contract.test.ts.
//
// Secrets (a registration's Key and refresh token, cached access tokens) are sealed with the key
// ring *inside* the store, with associated data naming the record and field, so no caller can write
// one in clear by mistake and a ciphertext moved to another record fails to open.
import type { RateLimiter } from './rate-limit-types.js'
import type { RegistrationStore } from './registration-types.js'
import type { WebhookStore } from './webhook-types.js'

// What a registration is and how it is stored: registration-types.ts; the shared fixed-window
// counters: rate-limit-types.ts (both re-exported here).
export * from './rate-limit-types.js'
export * from './registration-types.js'

/** Short-lived values: consent-flow state, one-time result pages, replay caches. */
export interface EphemeralStore {
  /** Stores a value; sealed when `secret` is true. */
  put(key: string, value: string, ttlMs: number, options?: { secret?: boolean }): Promise<void>
  /** Reads and deletes atomically: a second take of the same key gets null. */
  take(key: string, options?: { secret?: boolean }): Promise<string | null>
  /** Reads without deleting; null when absent or expired. */
  get(key: string, options?: { secret?: boolean }): Promise<string | null>
  /** Sets a marker only if absent (SET NX PX). True when this call set it. */
  claim(key: string, ttlMs: number): Promise<boolean>
  /** Deletes the value, if any. */
  delete(key: string): Promise<void>
}

/**
 * The health of the apps' own credentials, shared by every instance: a credential Entra refused
 * (wrong, expired, unregistered) is marked failing for a while so no instance keeps trying it
 * first, and each credential's last success is kept for the console. Names are the credential ids
 * (`<app>|<cloud>|<credential name>`), never secret.
 */
export interface CredentialHealthStore {
  /** Marks `credential` failing with `code` for `ttlMs`; true when this call set the mark (a state change). */
  markFailing(credential: string, code: string, ttlMs: number): Promise<boolean>
  /** The failing marks among `credentials`: id → code (unmarked ids are absent). */
  failing(credentials: readonly string[]): Promise<Map<string, string>>
  /** Removes a failing mark; true when there was one (the credential recovered). */
  clearFailing(credential: string): Promise<boolean>
  /** Records a successful use at `atMs` (kept `ttlMs`). */
  recordSuccess(credential: string, atMs: number, ttlMs: number): Promise<void>
  /** The last recorded success of each of `credentials` (epoch ms; never used ids are absent). */
  lastSuccess(credentials: readonly string[]): Promise<Map<string, number>>
}

/** One line of `UpstreamFailureLog.count`: an app, an error code and how often it happened. */
export interface UpstreamFailureCount {
  app: string
  /** The broker's error code of the failure (`upstream_unavailable`, `upstream_throttled`, …). */
  code: string
  failures: number
}

/**
 * Failed token requests to Entra ID, counted per app and error code in one-minute buckets kept two
 * hours: a bounded record (at most 120 buckets, each one counter per app and code that failed in
 * that minute) behind the console's "upstream failures in the last hour". Not a log of requests.
 */
export interface UpstreamFailureLog {
  /** Counts one failed token request of `app` with `code` in the minute of `atMs`. */
  record(app: string, code: string, atMs: number): Promise<void>
  /**
   * The failures of the whole minutes from the one of `sinceMs` to the one of `untilMs` (at most
   * two hours: older buckets are gone), one line per app and code, most failures first.
   */
  count(sinceMs: number, untilMs: number): Promise<UpstreamFailureCount[]>
}

/** An access token from Entra as the broker caches it. Never logged. */
export interface CachedToken {
  accessToken: string
  /** Epoch ms when the access token expires at the identity provider. */
  expiresAt: number
  /** The scope it was issued for (the cache key within its group). */
  scope: string
  /** Epoch ms after which a caller's use of it starts a background refresh (refresh-ahead). */
  refreshAt?: number
}

/**
 * Cached access tokens, sealed. `group` lets revocation delete every token of a registration or of
 * an app+tenant without scanning: e.g. `reg:<id>` or `tenant:<app>:<cloud>:<tid>`.
 */
export interface TokenCache {
  /** The cached token, or null (absent, expired, or sealed under a retired key). */
  get(group: string, scope: string): Promise<CachedToken | null>
  /** Caches `token` for `ttlMs`, sealed for its group and scope. */
  set(group: string, scope: string, token: CachedToken, ttlMs: number): Promise<void>
  /** Deletes every token of `group` (revocation, needs_consent). */
  deleteGroup(group: string): Promise<void>
}

/** A held lock: its name and the random token that proves this holder holds it. */
export interface LockHandle {
  readonly name: string
  readonly token: string
}

/** Distributed mutual exclusion: SET NX PX with a random token, compare-and-delete release. */
export interface LockManager {
  /** The lock for `ttlMs`, or null when someone else holds it. */
  acquire(name: string, ttlMs: number): Promise<LockHandle | null>
  /** Extends the lease only while still held. */
  renew(handle: LockHandle, ttlMs: number): Promise<boolean>
  /** Deletes only if still held by this handle. */
  release(handle: LockHandle): Promise<boolean>
}

/**
 * Tenant labels: one short, operator-readable name per tenant id (e.g. `contoso.com`), kept once per
 * tenant rather than in each registration. The first consent of a tenant suggests a default (the
 * consenting user's domain); later suggestions never replace a label, and an operator's label
 * always does.
 */
export interface TenantLabelStore {
  /** The labels of `tenantIds` (lower-case GUIDs): id → label; ids without one are absent. */
  get(tenantIds: readonly string[]): Promise<Map<string, string>>
  /** Sets `label` only when the tenant has none yet (first wins); true when this call set it. */
  suggest(tenantId: string, label: string): Promise<boolean>
  /** Sets `label`, replacing any (an operator's edit). */
  set(tenantId: string, label: string): Promise<void>
}

/** What an audit event records. */
export type AuditType =
  | 'consent.completed'
  | 'consent.failed'
  | 'registration.status_changed'
  | 'registration.revoked'
  | 'registration.client_secret_replaced'
  | 'registration.read'
  | 'tenant.revoked'
  | 'tenant.label_changed'
  | 'keys.rotated'
  | 'store.upgrade_finished'
  | 'webhook.added'
  | 'webhook.removed'
  | 'webhook.redelivered'
  | 'operator.signed_in'
  | 'operator.signed_out'
  | 'tenant_admin.signed_in'
  | 'tenant_admin.signed_out'

/** One audited action, as appended. Never carries a secret. */
export interface AuditEvent {
  type: AuditType
  /** `operator:<name>`, `tenant-admin:<tid>/<oid>`, `system`, `user:<tid>/<oid>` */
  actor: string
  /** The tenant, app and registration concerned, when there is one. */
  tenantId?: string
  app?: string
  registrationId?: string
  /** Non-secret details: reason, AADSTS code, counts … */
  detail?: Record<string, string | number | boolean>
}

/** An audit event as read back: with its id and time. */
export interface AuditRecord extends AuditEvent {
  /** Stream id; also the cursor. */
  id: string
  /** ISO 8601 */
  at: string
}

/** Append-only (a Redis stream with a MAXLEN/MINID retention). */
export interface AuditLog {
  /** Appends an event (timestamped by the store); returns its id. */
  append(event: AuditEvent): Promise<string>
  /**
   * `order` `asc` (default): oldest first, after `cursor` (exclusive). `desc`: newest first, before
   * `cursor` (exclusive). `limit` 1..500; a full page's last id is the next page's cursor.
   */
  read(options: AuditQuery): Promise<AuditPage>
}

/** A page request of `AuditLog.read`. */
export interface AuditQuery {
  /** A record id: the page starts after it (`asc`) or before it (`desc`), exclusive. */
  cursor?: string
  /** Records per page, 1..500 (clamped); default 50. */
  limit?: number
  /** `asc` (default): oldest first; `desc`: newest first. */
  order?: 'asc' | 'desc'
}

/** One page of audit records; `nextCursor` only on a full page. */
export interface AuditPage {
  items: AuditRecord[]
  nextCursor?: string
}

/** The whole storage of the broker, one object per backend (see redis.ts, memory.ts). */
export interface Store {
  /** Which backend this is (readiness, metrics). */
  readonly kind: 'redis' | 'memory'
  readonly registrations: RegistrationStore
  readonly ephemeral: EphemeralStore
  readonly tokens: TokenCache
  readonly locks: LockManager
  readonly rateLimiter: RateLimiter
  readonly audit: AuditLog
  /** Notifications: the outbox written with each state change, endpoints, deliveries. */
  readonly webhooks: WebhookStore
  readonly credentialHealth: CredentialHealthStore
  readonly tenantLabels: TenantLabelStore
  /** Failed token requests to Entra ID per app and minute (the console's home page). */
  readonly upstreamFailures: UpstreamFailureLog
  /** Throws when the backend can't answer (readiness). */
  ping(): Promise<void>
  /** Releases the backend (quits the Redis connection, stops the memory sweep). */
  close(): Promise<void>
}
