// The registrations' part of the storage contract (src/store/types.ts re-exports it): what a
// registration is, its secrets, versioned updates, listings, and the obtain-token admission. Every
// backend implements RegistrationStore (redis/registrations.ts, memory/registrations.ts).
import type { CloudName } from '../clouds.js'
import type { ConsentKind } from '../consent-kinds.js'
import type { RateLimitResult } from './rate-limit-types.js'

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
  /**
   * Delegated only: set while the registration's Key has never been handed out (its one-time result
   * page not yet taken), to a random id naming that Key; cleared once the page shows it. Absent on
   * records written before this field: those count as shown.
   */
  unshownKey?: string
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
  /** A new unshown Key's id (with a new Key); `null` clears it (the Key was handed out). */
  unshownKey?: string | null
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

/**
 * How a store orders idle positions as `RegistrationStore.listIdleDelegated` lists them (its layout
 * decides: idle-order.ts), so a caller compares positions without knowing that layout. Given a
 * cursor, it lists exactly the idle positions `p` with `compare(p, cursor) > 0`.
 */
export interface IdleOrder {
  /** Negative when `a` is listed before `b`, positive when after, 0 for the same position. */
  compare(a: IdlePosition, b: IdlePosition): number
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

/** One tenant's registrations (of one app, when asked), counted: `RegistrationStore.summarizeTenants`. */
export interface TenantCounts {
  tenantId: string
  /** App slugs with at least one registration of the tenant, sorted. */
  apps: string[]
  /** Clouds with at least one registration of the tenant, sorted. */
  clouds: string[]
  registrations: Record<RegistrationStatus, number> & { total: number }
  /** ISO 8601: the newest consent among the tenant's registrations; absent without any. */
  lastConsentAt?: string
}

/** What `RegistrationStore.ensureIndexes` did. */
export interface IndexRebuild {
  /** False when the indexes were already complete. */
  rebuilt: boolean
  /** Registrations indexed by this call. */
  registrations: number
  /** The store's layout afterwards (`upgradeState`). */
  upgrade: UpgradeState
}

/**
 * Where a store is in an upgrade from the previous release's layout: `expanded` while it keeps
 * that layout too (instances of both releases can share it: a rolling upgrade, or a rollback), until
 * the operator finishes the upgrade; `contracted` with only this release's layout (finished, or a
 * store created by this release). The memory store is always contracted.
 */
export type UpgradeState = 'expanded' | 'contracted'

/** What `RegistrationStore.finishUpgrade` did. */
export interface UpgradeFinish {
  /** Registrations whose index entries were re-set from their record (0 when already contracted). */
  registrations: number
  /** Index entries of deleted registrations removed. */
  pruned: number
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
   * The counts of each tenant named (in that order), of `app`'s registrations only when given:
   * maintained as registrations are created and change status (in Redis: a small hash per tenant
   * written in the same script as the index entries), so a tenants page costs the same however
   * many registrations its tenants have. A tenant written before that is counted once, then kept.
   */
  summarizeTenants(tenantIds: readonly string[], app?: string): Promise<TenantCounts[]>
  /**
   * Registrations by status, maintained as statuses change (in Redis: the sizes of the (app, status)
   * indexes, written in the same script as the record on a single server), so counting costs the
   * same however many registrations there are. While the store is expanded (`upgradeState`), it
   * counts from the previous release's indexes (or by scanning, for data older than those).
   */
  countByStatus(): Promise<Record<RegistrationStatus, number>>
  /**
   * Puts the registration's index entries (listings, counts, its tenant's summary) where its record
   * says. Where a status change writes them after the record (a Redis Cluster), a failure in
   * between leaves them behind; whoever finds a record already where they wanted it (a retried
   * revocation) calls this, as the retry itself writes nothing. A missing id is ignored; the
   * memory store, which writes both at once, has nothing to do.
   */
  syncIndexes(id: string): Promise<void>
  /**
   * Completes the index moves of status changes interrupted between their record and their index
   * entries (a Redis Cluster's two steps, journaled before the record's write): every registration
   * journaled gets its entries where its record says; journal entries old enough that their writer
   * is done or gone are dropped, and counted in the result. Cheap when there is nothing (one read);
   * run periodically by the index maintenance, and before reading an index to decide something
   * (re-activating what waits for consent). The memory store has nothing to do.
   */
  repairIndexes(): Promise<number>
  /**
   * Start-up: a store of the previous release stays expanded (its layout kept for its instances),
   * data older than that is indexed that release's way first, a contracted store gets what an
   * interrupted `finishUpgrade` left done, a store created empty is contracted. Idempotent, safe
   * while registrations are written; without anything to do it answers `{ rebuilt: false }` at once.
   */
  ensureIndexes(): Promise<IndexRebuild>
  /** The store's layout state in an upgrade from the previous release (`UpgradeState`). */
  upgradeState(): Promise<UpgradeState>
  /**
   * Finishes an upgrade from the previous release: re-sets every registration's index entries from
   * its record, moves the previous layout's claims and idle entries, then drops that layout. Call
   * only once no instance of the previous release runs (it would misbehave on the result; there is
   * no rollback after this). Idempotent and resumable; on a contracted store it completes what an
   * interrupted call left.
   */
  finishUpgrade(): Promise<UpgradeFinish>
  /**
   * Delegated, non-revoked registrations whose last refresh (or creation) is before `before` (ISO),
   * in idle order (`idleOrder`; idle-order.ts: by a bucket hashed from the id, oldest first within a
   * bucket; a Redis store expanded by a rolling upgrade: oldest first), at most `limit`, strictly
   * after `after` (a position this method returned): a caller walks every idle registration page by
   * page, even while it refreshes the ones it has seen (they leave the range) or some can't be
   * refreshed (they stay, behind the cursor).
   */
  listIdleDelegated(before: string, limit: number, after?: IdlePosition): Promise<IdlePosition[]>
  /**
   * The order {@link listIdleDelegated} lists in for the store's layout now: what a caller compares
   * positions with, e.g. to stop a walk that wrapped around where it started. Read it again after
   * `finishUpgrade` (a Redis store expanded by a rolling upgrade lists the previous release's order
   * until then); the memory store's never changes.
   */
  idleOrder(): Promise<IdleOrder>
  /**
   * Re-seals every secret of one registration under the key ring's current key (key rotation).
   * Returns true when something was rewritten (false when absent). Safe against concurrent
   * updates; throws when a secret won't open or the rewrite kept losing to concurrent writes.
   */
  reseal(id: string): Promise<boolean>
  /**
   * {@link reseal} for a batch of registrations in a few round trips (one read of every record,
   * one compare-and-set write per record, sent together; the records that changed meanwhile are
   * read again and retried): one outcome per id, in order. Never throws for one record: its
   * failure is its outcome.
   */
  resealBatch(ids: readonly string[]): Promise<ResealOutcome[]>
  /** Iterates every registration id in batches (key rotation, exports). */
  scanIds(cursor: string | undefined, count: number): Promise<{ ids: string[]; nextCursor?: string }>
}

/** The facts of a registration a re-seal read (what its cached tokens are grouped by). */
export type ResealedRegistration = Pick<
  Registration,
  'id' | 'kind' | 'app' | 'cloud' | 'tenantId' | 'ownClientId'
>

/**
 * What re-sealing one registration came to: `resealed` (a secret was rewritten under the current
 * key), `unchanged` (all already under it), `missing` (no such record, e.g. deleted meanwhile) or
 * `failed` (a secret won't open — sealed under a key no longer in the ring — or every rewrite lost
 * to a concurrent write; the record keeps what the concurrent writes left).
 */
export type ResealOutcome =
  | {
      id: string
      outcome: 'resealed' | 'unchanged'
      /** The record's facts as read, so a caller drops its cached tokens without another read. */
      registration: ResealedRegistration
    }
  | { id: string; outcome: 'missing' }
  | {
      id: string
      outcome: 'failed'
      /** Why, for the log; never contains a secret. */
      error: Error
      /** The record's facts as read, when it could be read. */
      registration?: ResealedRegistration
    }
