// The storage contract. Two implementations: redis.ts (production, Cluster-safe) and memory.ts
// (demo, single process). Both pass test/integration/store-contract.test.ts.
//
// Secrets (a registration's Key and refresh token, cached access tokens) are sealed with the key
// ring *inside* the store, with associated data naming the record and field, so no caller can write
// one in clear by mistake and a ciphertext moved to another record fails to open.
import type { CloudName } from '../clouds.js'
import type { ConsentKind } from '../consent-kinds.js'

export type RegistrationStatus = 'active' | 'needs_consent' | 'revoked'
export const REGISTRATION_STATUSES: readonly RegistrationStatus[] = ['active', 'needs_consent', 'revoked']

/** Why a registration left `active`: an AADSTS code for `needs_consent`, who and why for `revoked`. */
export interface StatusDetail {
  /** `invalid_grant`, `AADSTS50173`, `operator_revoked` … */
  code: string
  message?: string
  /** ISO 8601 */
  at: string
  /** Operator or tenant admin name, for revocations. */
  by?: string
  reason?: string
}

/** Registration metadata: never a secret. Safe to list, log and show to operators. */
export interface Registration {
  id: string
  app: string
  cloud: CloudName
  tenantId: string
  kind: ConsentKind
  /** Delegated only: the consenting user. */
  userOid?: string
  userName?: string
  status: RegistrationStatus
  statusDetail?: StatusDetail
  /** ISO 8601 timestamps. */
  createdAt: string
  updatedAt: string
  consentedAt: string
  /** Bumped by every versioned update; compare-and-set uses it. */
  version: number
}

/** Usage fields, written without a version check (they must never make a token refresh conflict). */
export interface RegistrationUsage {
  lastIssuedAt?: string
  /** `X-Content-Name` / `X-Content-Version` of the last client, e.g. `O365 Mail/1.2.3`. */
  lastClient?: string
  /** Delegated: when the refresh token was last exchanged (keep-alive looks at this). */
  lastRefreshAt?: string
}

export interface RegistrationSecrets {
  /** Standard base64 of 32 random bytes; the integration's Key. */
  key: string
  /** Delegated only: the newest Microsoft refresh token. Never leaves the broker. */
  refreshToken?: string
}

export interface StoredRegistration {
  registration: Registration
  usage: RegistrationUsage
  secrets: RegistrationSecrets
}

export interface RegistrationPatch {
  status?: RegistrationStatus
  /** `null` clears it. */
  statusDetail?: StatusDetail | null
  consentedAt?: string
  userName?: string
}

export interface SecretsPatch {
  key?: string
  /** `null` deletes the refresh token (revocation). */
  refreshToken?: string | null
}

export interface RegistrationQuery {
  tenantId?: string
  app?: string
  status?: RegistrationStatus
  /** Opaque, from a previous page's `nextCursor`. */
  cursor?: string
  /** 1..500, default 50. */
  limit?: number
}

export interface RegistrationPage {
  items: Array<Registration & RegistrationUsage>
  /** Absent on the last page. Stable under concurrent inserts: new items never shift a page. */
  nextCursor?: string
}

export type CreateResult =
  | { created: true; registration: Registration }
  /** Delegated only: a non-revoked registration for the same app, cloud, tenant and user exists. */
  | { created: false; existingId: string }

/** Where a registration stands in the idle index: its id and its last refresh (or creation), epoch ms. */
export interface IdlePosition {
  readonly id: string
  readonly score: number
}

export interface AdmitRequest {
  /** The version whose Key the request authenticated under. */
  version: number
  /** Names the request (e.g. a fingerprint of its ciphertext); accepted once per registration. */
  replayMarker: string
  /** How long a marker is remembered. */
  replayTtlMs: number
  /** Hits allowed per registration and window (shared by every instance). */
  limit: number
  windowMs: number
  /**
   * Also counts a hit on this shared rate-limit key (the caller's address), first and in the same
   * call, so a request costs one round trip. Over its limit, nothing else is checked or counted.
   */
  client?: { key: string; limit: number; windowMs: number }
}

export type AdmitResult = (
  | { current: false }
  /** `fresh`: the replay marker was new (false: a replay). The hit is counted either way. */
  | { current: true; fresh: boolean; rate: RateLimitResult }
) & {
  /** Only with `client`: its hit. When not allowed, `current` is false and nothing else happened. */
  client?: RateLimitResult
}

export interface RegistrationStore {
  /**
   * Creates a registration (status from `registration.status`, version 1). For delegated
   * registrations, (app, cloud, tenantId, userOid) is unique among non-revoked registrations.
   */
  create(registration: Omit<Registration, 'version'>, secrets: RegistrationSecrets): Promise<CreateResult>
  get(id: string): Promise<StoredRegistration | null>
  /** Metadata and usage only; never opens a secret. */
  getMeta(id: string): Promise<(Registration & RegistrationUsage) | null>
  /**
   * Compare-and-set: applies the patch only when the stored version equals `expectedVersion`.
   * Returns the updated registration (version + 1), or `null` on a version conflict or a missing id.
   * Moving to `revoked` also frees the delegated uniqueness slot.
   */
  update(
    id: string,
    expectedVersion: number,
    patch: RegistrationPatch,
    secrets?: SecretsPatch,
  ): Promise<Registration | null>
  /** Records usage; no version check, no version bump. A missing id is ignored. */
  touch(id: string, usage: RegistrationUsage): Promise<void>
  /**
   * Admits one request that has authenticated under this registration's Key as of `version` (the
   * obtain-token check), in one atomic step: only while the registration is still `active` at that
   * version, it claims the request's replay marker and counts one hit in the per-registration
   * fixed window. Otherwise (missing, another version, not active) it changes nothing and answers
   * `{ current: false }`: re-read the registration and check again. Every versioned update bumps
   * the version, so a revocation or new Key committed before this call is always seen here.
   * Call it only after authenticating, so a caller without the Key can't fill the replay cache.
   */
  admit(id: string, request: AdmitRequest): Promise<AdmitResult>
  list(query: RegistrationQuery): Promise<RegistrationPage>
  /** Every tenant with at least one registration. */
  listTenantIds(): Promise<string[]>
  /**
   * Delegated, non-revoked registrations whose last refresh (or creation) is before `before` (ISO),
   * oldest first, at most `limit`, strictly after `after` (a position this method returned): a
   * caller walks every idle registration page by page, even while it refreshes the ones it has
   * seen (they leave the range) or some can't be refreshed (they stay, behind the cursor).
   */
  listIdleDelegated(before: string, limit: number, after?: IdlePosition): Promise<IdlePosition[]>
  /**
   * Re-seals every secret of one registration under the key ring's current key (key rotation).
   * Returns true when something was rewritten. Safe against concurrent updates.
   */
  reseal(id: string): Promise<boolean>
  /** Iterates every registration id in batches (key rotation, exports). */
  scanIds(cursor: string | undefined, count: number): Promise<{ ids: string[]; nextCursor?: string }>
}

/** Short-lived values: consent-flow state, one-time result pages, replay caches. */
export interface EphemeralStore {
  /** Stores a value; sealed when `secret` is true. */
  put(key: string, value: string, ttlMs: number, options?: { secret?: boolean }): Promise<void>
  /** Reads and deletes atomically: a second take of the same key gets null. */
  take(key: string, options?: { secret?: boolean }): Promise<string | null>
  get(key: string, options?: { secret?: boolean }): Promise<string | null>
  /** Sets a marker only if absent (SET NX PX). True when this call set it. */
  claim(key: string, ttlMs: number): Promise<boolean>
  delete(key: string): Promise<void>
}

export interface CachedToken {
  accessToken: string
  /** Epoch ms when the access token expires at the identity provider. */
  expiresAt: number
  scope: string
}

/**
 * Cached access tokens, sealed. `group` lets revocation delete every token of a registration or of
 * an app+tenant without scanning: e.g. `reg:<id>` or `tenant:<app>:<cloud>:<tid>`.
 */
export interface TokenCache {
  get(group: string, scope: string): Promise<CachedToken | null>
  set(group: string, scope: string, token: CachedToken, ttlMs: number): Promise<void>
  deleteGroup(group: string): Promise<void>
}

export interface LockHandle {
  readonly name: string
  readonly token: string
}

/** Distributed mutual exclusion: SET NX PX with a random token, compare-and-delete release. */
export interface LockManager {
  acquire(name: string, ttlMs: number): Promise<LockHandle | null>
  /** Extends the lease only while still held. */
  renew(handle: LockHandle, ttlMs: number): Promise<boolean>
  /** Deletes only if still held by this handle. */
  release(handle: LockHandle): Promise<boolean>
}

export interface RateLimitResult {
  allowed: boolean
  remaining: number
  /** ms until a slot frees, when not allowed */
  retryAfterMs: number
}

/** Fixed-window counter shared by every instance. */
export interface RateLimiter {
  hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult>
}

export type AuditType =
  | 'consent.completed'
  | 'consent.failed'
  | 'registration.status_changed'
  | 'registration.revoked'
  | 'tenant.revoked'
  | 'keys.rotated'
  | 'operator.signed_in'
  | 'operator.signed_out'
  | 'tenant_admin.signed_in'
  | 'tenant_admin.signed_out'

export interface AuditEvent {
  type: AuditType
  /** `operator:<name>`, `tenant-admin:<tid>/<oid>`, `system`, `user:<tid>/<oid>` */
  actor: string
  tenantId?: string
  app?: string
  registrationId?: string
  /** Non-secret details: reason, AADSTS code, counts … */
  detail?: Record<string, string | number | boolean>
}

export interface AuditRecord extends AuditEvent {
  /** Stream id; also the cursor. */
  id: string
  /** ISO 8601 */
  at: string
}

/** Append-only (a Redis stream with a MAXLEN/MINID retention). */
export interface AuditLog {
  append(event: AuditEvent): Promise<string>
  /**
   * `order` `asc` (default): oldest first, after `cursor` (exclusive). `desc`: newest first, before
   * `cursor` (exclusive). `limit` 1..500; a full page's last id is the next page's cursor.
   */
  read(options: {
    cursor?: string
    limit?: number
    order?: 'asc' | 'desc'
  }): Promise<{ items: AuditRecord[]; nextCursor?: string }>
}

export interface Store {
  readonly kind: 'redis' | 'memory'
  readonly registrations: RegistrationStore
  readonly ephemeral: EphemeralStore
  readonly tokens: TokenCache
  readonly locks: LockManager
  readonly rateLimiter: RateLimiter
  readonly audit: AuditLog
  /** Throws when the backend can't answer (readiness). */
  ping(): Promise<void>
  close(): Promise<void>
}
