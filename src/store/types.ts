// The storage contract. Two implementations: redis.ts over src/store/redis/ (production,
// Cluster-safe) and memory.ts over src/store/memory/ (demo, single process). Both pass
// test/integration/store-contract.test.ts.
//
// Secrets (a registration's Key and refresh token, cached access tokens) are sealed with the key
// ring *inside* the store, with associated data naming the record and field, so no caller can write
// one in clear by mistake and a ciphertext moved to another record fails to open.
import type { CloudName } from '../clouds.js'
import type { ConsentKind } from '../consent-kinds.js'
import type { WebhookStore } from './webhook-types.js'

/**
 * Where a registration stands: `active` issues tokens; `needs_consent` waits for a new consent
 * (Entra refused the grant); `revoked` is final.
 */
export type RegistrationStatus = 'active' | 'needs_consent' | 'revoked'
/** Every {@link RegistrationStatus}, in lifecycle order. */
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
  /** A random UUID; the part before `@` of the integration's ID. */
  id: string
  /** The app's slug (apps file). */
  app: string
  /** The national cloud the consent was given in; tokens never cross clouds. */
  cloud: CloudName
  /** The Entra tenant (GUID) that consented. */
  tenantId: string
  /** Admin (tenant-wide) or delegated (one user's refresh token). */
  kind: ConsentKind
  /** Delegated only: the consenting user. */
  userOid?: string
  /**
   * Who consented: the UPN (`preferred_username`, else `upn`) of the verified ID token — the user
   * of a delegated registration, the administrator of an admin consent. Absent on registrations
   * written before admin consents recorded it.
   */
  userName?: string
  /** Who consented: the display name (`name` claim) of the same ID token, when it carried one. */
  userDisplayName?: string
  /**
   * The tenant's own app registration (its client id), when the tenant brought one instead of the
   * hosted app: every token request of this registration uses that app, at the tenant's authority.
   */
  ownClientId?: string
  status: RegistrationStatus
  /** Why it left `active`, when it did. */
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
  /** ISO 8601: when the broker last answered obtain-token for it. */
  lastIssuedAt?: string
  /** `X-Content-Name` / `X-Content-Version` of the last client, e.g. `O365 Mail/1.2.3`. */
  lastClient?: string
  /** Delegated: when the refresh token was last exchanged (keep-alive looks at this). */
  lastRefreshAt?: string
}

/** A registration's secrets, in clear only on their way in and out of the store (sealed inside). */
export interface RegistrationSecrets {
  /** Standard base64 of 32 random bytes; the integration's Key. */
  key: string
  /** Delegated only: the newest Microsoft refresh token. Never leaves the broker. */
  refreshToken?: string
  /** A confidential own app's client secret (absent for a public client). Never leaves the broker. */
  clientSecret?: string
}

/** Everything the store holds about one registration, secrets opened (`RegistrationStore.get`). */
export interface StoredRegistration {
  registration: Registration
  usage: RegistrationUsage
  secrets: RegistrationSecrets
}

/** The metadata a versioned update may change; absent fields stay as they are. */
export interface RegistrationPatch {
  /** Any move but out of `revoked` (revocation is final). */
  status?: RegistrationStatus
  /** `null` clears it. */
  statusDetail?: StatusDetail | null
  /** ISO 8601: a new consent. */
  consentedAt?: string
  /** Who gave the new consent (UPN and display name). */
  userName?: string
  userDisplayName?: string
}

/** The secrets a versioned update may change; absent fields stay as they are. */
export interface SecretsPatch {
  /** A new Key (sealed by the store). */
  key?: string
  /** `null` deletes the refresh token (revocation). */
  refreshToken?: string | null
  /** A replaced own-app client secret (rotation by the tenant administrator). */
  clientSecret?: string
}

/** A listing's filters (all optional, combined with AND) and its page position. */
export interface RegistrationQuery {
  /** Exact tenant id. */
  tenantId?: string
  /** Exact app slug. */
  app?: string
  status?: RegistrationStatus
  /** Opaque, from a previous page's `nextCursor`. */
  cursor?: string
  /** 1..500, default 50. */
  limit?: number
}

/** One page of a listing, in (createdAt, id) order: metadata and usage, never a secret. */
export interface RegistrationPage {
  items: Array<Registration & RegistrationUsage>
  /** Absent on the last page. Stable under concurrent inserts: new items never shift a page. */
  nextCursor?: string
}

/** What `RegistrationStore.create` did: created it, or found the delegated registration that holds its slot. */
export type CreateResult =
  | { created: true; registration: Registration }
  /** Delegated only: a non-revoked registration for the same app, cloud, tenant and user exists. */
  | { created: false; existingId: string }

/** Where a registration stands in the idle index: its id and its last refresh (or creation), epoch ms. */
export interface IdlePosition {
  readonly id: string
  readonly score: number
}

/** What `RegistrationStore.admit` checks and counts for one authenticated obtain-token request. */
export interface AdmitRequest {
  /** The version whose Key the request authenticated under. */
  version: number
  /** Names the request (e.g. a fingerprint of its ciphertext); accepted once per registration. */
  replayMarker: string
  /** How long a marker is remembered. */
  replayTtlMs: number
  /** Hits allowed per registration and window (shared by every instance). */
  limit: number
  /** The per-registration window's length. */
  windowMs: number
  /**
   * Also counts a hit on this shared rate-limit key (the caller's address), first and in the same
   * call, so a request costs one round trip. Over its limit, nothing else is checked or counted.
   */
  client?: { key: string; limit: number; windowMs: number }
}

/**
 * The answer of `RegistrationStore.admit`: `current` false when the registration is no longer
 * active at the authenticated version (or the client is over its limit); else the replay verdict
 * and the per-registration window.
 */
export type AdmitResult = (
  | { current: false }
  /** `fresh`: the replay marker was new (false: a replay). The hit is counted either way. */
  | { current: true; fresh: boolean; rate: RateLimitResult }
) & {
  /** Only with `client`: its hit. When not allowed, `current` is false and nothing else happened. */
  client?: RateLimitResult
}

/** A page request of `RegistrationStore.listTenants`. */
export interface TenantQuery {
  /** Only tenants with a registration of this app. */
  app?: string
  /** Opaque, from a previous page's `nextCursor`. */
  cursor?: string
  /** 1..500, default 50. */
  limit?: number
}

/** One page of tenant ids, sorted; `nextCursor` absent on the last page. */
export interface TenantPage {
  tenantIds: string[]
  nextCursor?: string
}

/** What `RegistrationStore.ensureIndexes` did. */
export interface IndexRebuild {
  /** False when the indexes were already complete. */
  rebuilt: boolean
  /** Registrations indexed by this call. */
  registrations: number
}

/** Registrations: records with sealed secrets, versioned (compare-and-set) updates, listings. */
export interface RegistrationStore {
  /**
   * Creates a registration (status from `registration.status`, version 1). For delegated
   * registrations, (app, cloud, tenantId, userOid) is unique among non-revoked registrations.
   */
  create(registration: Omit<Registration, 'version'>, secrets: RegistrationSecrets): Promise<CreateResult>
  /** The registration with its secrets opened, or null. Throws when a secret fails to open. */
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
  /** One page of registrations matching `query` (metadata and usage only). */
  list(query: RegistrationQuery): Promise<RegistrationPage>
  /**
   * One page of the tenant ids that have a registration (of `query.app`, when given), in id order;
   * a page costs the same however many tenants there are.
   */
  listTenants(query: TenantQuery): Promise<TenantPage>
  /**
   * Registrations by status, maintained as statuses change (in Redis: the status indexes, written
   * in the same script as the record on a single server), so counting costs the same however many
   * registrations there are. Until `ensureIndexes` has run on data written before those indexes
   * existed, it counts by scanning.
   */
  countByStatus(): Promise<Record<RegistrationStatus, number>>
  /**
   * Builds the listing and counting indexes for registrations written before they existed (once:
   * a marker records completion; a store created empty never needs it). Idempotent, safe while
   * registrations are written; without anything to do it answers `{ rebuilt: false }` at once.
   */
  ensureIndexes(): Promise<IndexRebuild>
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

/** The answer to one hit on a fixed-window counter. */
export interface RateLimitResult {
  /** False once the window's count passed the limit. */
  allowed: boolean
  /** Hits left in this window. */
  remaining: number
  /** ms until a slot frees, when not allowed */
  retryAfterMs: number
}

/** Fixed-window counter shared by every instance. */
export interface RateLimiter {
  /** Counts one hit on `key` (the first hit starts a `windowMs` window) and answers. */
  hit(key: string, limit: number, windowMs: number): Promise<RateLimitResult>
  /**
   * Takes one slot of `key`'s window only when fewer than `limit` were taken: a refused take is
   * not counted, so callers asking under a lower limit never eat the slots of a higher one.
   */
  take(key: string, limit: number, windowMs: number): Promise<RateLimitResult>
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
  read(options: {
    cursor?: string
    limit?: number
    order?: 'asc' | 'desc'
  }): Promise<{ items: AuditRecord[]; nextCursor?: string }>
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
