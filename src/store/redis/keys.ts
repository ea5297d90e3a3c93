// The Redis key layout: the one place that names every key the store writes, applies the
// operator's prefix and picks the hash tags that keep each script's keys in one Cluster slot.
//
// Key layout (P = keyPrefix, e.g. `cb:`; `{…}` is the hash tag; `enc()` percent-encodes `%{}`):
//
//   P reg:{enc(id)}                  HASH    one registration: metadata fields, usage fields
//                                            (lastIssuedAt, lastClient, lastRefreshAt), sealed
//                                            secrets (key, refreshToken) and `version`, in the
//                                            compact layout of record-layout.ts (short names,
//                                            64-byte chunks: a listpack under Redis's defaults)
//   P seen:{enc(id)}:<marker>        STRING  admit: replay marker of one request, PX replay TTL
//   P rl-reg:{enc(id)}               STRING  admit: per-registration fixed-window counter, PX window
//                                            (both in the record's slot: admit is one script)
//   P{idx}:as:<status>:<app>         ZSET    ids of one app with one status, score = createdAt (ms):
//                                            every registration is in exactly one; an app filter, a
//                                            status filter and the unfiltered listing merge a few of
//                                            them (apps × statuses), an app+status filter reads one
//   P{idx}:ts:<status>:<enc(app)>:<tenantId> ZSET  ids of one tenant's registrations of one app with
//                                            one status, score = createdAt (`enc` also encodes `:`):
//                                            every registration is in exactly one; a tenant filter
//                                            merges those of the apps and statuses asked for
//   P{idx}:apps                      SET     every app with a registration (which `as`/`ts` to merge)
//   P{idx}:tenant-ids                ZSET    every tenant id with a registration (score 0: by id)
//   P{idx}:app-tenants:<app>         ZSET    tenant ids with a registration of the app (score 0)
//   P{idx}:indexes                   STRING  INDEXES_VERSION ("3") once the store is contracted:
//                                            only the layout above (set by the start-up of a new
//                                            store, or its first create; by the operator's finish
//                                            of an upgrade: store-upgrade.ts). "2" (the previous
//                                            release's) while expanded
//   Counts by status are the ZCARDs of the `as` keys; a page reads at most (apps × 3) × page
//   entries, never an entry the filters don't match.
//   While the marker is not "3" (expanded: a store the previous release wrote, during a rolling
//   upgrade and until the operator finishes it), the scripts also keep the previous release's
//   indexes, claims hash and idle set exactly as it does, and read those as the authority (its
//   instances keep only them); readers read them too:
//   P{idx}:all                       ZSET    every registration id, score = createdAt
//   P{idx}:tenant:<tenantId>         ZSET    ids of one tenant, score = createdAt
//   P{idx}:app:<app>                 ZSET    ids of one app, score = createdAt
//   P{idx}:status:<status>           ZSET    ids of needs_consent / revoked registrations (complete
//                                            when the marker is "2"; an older `status:active` is
//                                            dropped)
//   The finish re-syncs the layout above from the records, sets "3", moves the claims and idle
//   entries into their buckets and deletes these (`all` last: a start-up completes an
//   interrupted one).
//   P{idx}:tenants                   SET     (before `tenant-ids`; read only until rebuilt)
//   P{idx}:tenant-summary:<tenantId> HASH    one tenant's registrations counted as they change, by
//                                            the scripts that move its index entries:
//                                            `n|<app>|<cloud>|<status>` → count, `c|<app>` → last
//                                            consent (ms), `g` generation (bumped by every change),
//                                            `v` SUMMARY_VERSION once complete (a tenant written
//                                            before summaries has none until its first listing
//                                            repairs it: tenant-summaries.ts)
//   P{idx}:tenant-labels             HASH    tenant id → the tenant's label (one field per tenant)
//   P{idx}:moves                     ZSET    pending index moves where the record and its entries
//                                            are written in two steps (a Cluster): `<uuid>:<id>`,
//                                            score = when (ms); empty but for a status change in
//                                            flight or interrupted (index-moves.ts)
//   P{idx}:dlg:<bucket>              HASH    delegated uniqueness among non-revoked registrations:
//                                            digest of JSON [app, cloud, tenant, oid] → "<claimedAtMs>:<id>",
//                                            4 096 buckets by the digest's first 2 characters, each a
//                                            small listpack (delegated-claims.ts)
//   P{idx}:delegated                 HASH    the claims before the buckets (JSON field → the same
//                                            value): where claims are taken while expanded; read by
//                                            every claim script, moved to the buckets by the finish
//   P{idx}:idle:<bucket>             ZSET    delegated non-revoked ids, score = last refresh (or
//                                            creation) in ms; 4 096 buckets by the id's hash, each a
//                                            small listpack (src/store/idle-order.ts, idle-buckets.ts)
//   P{idx}:idle                      ZSET    the same before the buckets: written and walked while
//                                            expanded; moved to the buckets by the finish, deleted
//   P eph:<key>                      STRING  ephemeral value (sealed when secret), PX expiry
//   P tok:{enc(group)}:<sha256(scope)> STRING sealed cached access token, PX expiry
//   P tok:{enc(group)}:members       SET     token keys of the group (same slot), expiry ≥ members'
//   P outbox:{enc(subject)}          HASH    notifications outbox of one subject (a registration's
//                                            id: the slot of its record); see redis/webhooks.ts
//   P upstream:{enc(subject)}        STRING  an app's throttle state in a tenant (notifications)
//   P credexp:{enc(subject)}         STRING  an app credential's expiry state and expiry
//                                            (`expiring:<ms>`…: app_credential.expiring, once per state)
//   P{wh}:…                          notifications: subjects, endpoints, deliveries (webhooks.ts)
//   P{cred}:bad:<credential>         STRING  an app credential Entra refused: the AADSTS label, PX
//   P{cred}:ok:<credential>          STRING  its last success (epoch ms), PX 90 days
//                                            (one slot, so one MGET reads a registration's list)
//   P{upf}:<minute>                  HASH    failed token requests to Entra in one minute (epoch
//                                            minutes): "<app> <code>" → count, PX 2 hours (one
//                                            slot: the last hour is one pipeline)
import { sha256Hex } from '../../crypto/sha256.js'
import { REGISTRATION_STATUSES, type RegistrationStatus } from '../types.js'

/** The version of the `{idx}` indexes this code maintains (the value of the `indexes` marker). */
export const INDEXES_VERSION = '3'

/** The marker of the previous release's layout (all/tenant/app/status complete): an expanded store. */
export const LEGACY_INDEXES_VERSION = '2'

/** The version of the tenant summaries this code maintains (their `v` field). */
export const SUMMARY_VERSION = '1'

/** Refuses (TypeError) a key prefix that would change hash slots: one containing `{` or `}`. */
export function assertKeyPrefix(keyPrefix: string): void {
  if (/[{}]/.test(keyPrefix)) {
    throw new TypeError('keyPrefix must not contain { or } (it would change hash slots)')
  }
}

/** Percent-encodes the characters that would change a key's hash tag. */
function encodeTagged(value: string): string {
  // Registration ids never hold these: skip the replacement's scan and copy on the hot path.
  if (value.indexOf('%') < 0 && value.indexOf('{') < 0 && value.indexOf('}') < 0) return value
  return value.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** Percent-encodes what would make a `ts` key ambiguous or change its hash tag (`%{}:`). */
function encodePart(value: string): string {
  return value.replace(/[%{}:]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

/** Every key name of a store with `prefix` (see the layout above). */
export function redisKeys(prefix: string) {
  const idx = `${prefix}{idx}:`
  return {
    reg: (id: string) => `${prefix}reg:{${encodeTagged(id)}}`,
    seen: (id: string, marker: string) => `${prefix}seen:{${encodeTagged(id)}}:${marker}`,
    registrationRate: (id: string) => `${prefix}rl-reg:{${encodeTagged(id)}}`,
    appStatus: (status: RegistrationStatus, app: string) => `${idx}as:${status}:${app}`,
    tenantStatus: (status: RegistrationStatus, app: string, tenantId: string) =>
      `${idx}ts:${status}:${encodePart(app)}:${tenantId}`,
    apps: `${idx}apps`,
    /** The earlier release's indexes (see the layout above): kept only while expanded. */
    all: `${idx}all`,
    tenant: (tenantId: string) => `${idx}tenant:${tenantId}`,
    app: (app: string) => `${idx}app:${app}`,
    /** The SET of tenant ids written before `tenantIds` existed (read until the rebuild). */
    legacyTenants: `${idx}tenants`,
    tenantIds: `${idx}tenant-ids`,
    appTenants: (app: string) => `${idx}app-tenants:${app}`,
    tenantSummary: (tenantId: string) => `${idx}tenant-summary:${tenantId}`,
    status: (status: RegistrationStatus) => `${idx}status:${status}`,
    /** The earlier release's three status indexes (active, needs_consent, revoked). */
    statuses: REGISTRATION_STATUSES.map((status) => `${idx}status:${status}`),
    indexes: `${idx}indexes`,
    /** The journal of index moves pending on a Cluster (index-moves.ts). */
    indexMoves: `${idx}moves`,
    /** The one claims hash written before the buckets (read until moved: delegated-claims.ts). */
    legacyDelegated: `${idx}delegated`,
    /** One bucket of delegated uniqueness claims (delegated-claims.ts picks it). */
    delegatedClaims: (bucket: string) => `${idx}dlg:${bucket}`,
    tenantLabels: `${idx}tenant-labels`,
    /** The one idle sorted set written before the buckets (read until moved: idle-buckets.ts). */
    legacyIdle: `${idx}idle`,
    /** One bucket of the idle index (idle-order.ts: 0 … 4 095, as 3 hex digits). */
    idleBucket: (bucket: number) => `${idx}idle:${bucket.toString(16).padStart(3, '0')}`,
    ephemeral: (key: string) => `${prefix}eph:${key}`,
    token: (group: string, scope: string) => `${prefix}tok:{${encodeTagged(group)}}:${sha256Hex(scope)}`,
    tokenMembers: (group: string) => `${prefix}tok:{${encodeTagged(group)}}:members`,
    lock: (name: string) => `${prefix}lock:${name}`,
    rate: (key: string) => `${prefix}rl:${key}`,
    audit: `${prefix}audit`,
    outbox: (subject: string) => `${prefix}outbox:{${encodeTagged(subject)}}`,
    upstreamState: (subject: string) => `${prefix}upstream:{${encodeTagged(subject)}}`,
    credentialExpiry: (subject: string) => `${prefix}credexp:{${encodeTagged(subject)}}`,
    whSubjects: `${prefix}{wh}:subjects`,
    whAnnounced: `${prefix}{wh}:announced`,
    whEndpoints: `${prefix}{wh}:endpoints`,
    whDue: `${prefix}{wh}:due`,
    whDelivery: (member: string) => `${prefix}{wh}:d:${member}`,
    whByEndpoint: (endpointId: string) => `${prefix}{wh}:by-ep:${endpointId}`,
    credentialFailing: (credential: string) => `${prefix}{cred}:bad:${credential}`,
    credentialSuccess: (credential: string) => `${prefix}{cred}:ok:${credential}`,
    upstreamFailures: (minute: number) => `${prefix}{upf}:${minute}`,
  }
}

/**
 * The `{idx}` keys one registration's index entries live in, in the order the Lua's `index_keys`
 * reads them (index-lua.ts): marker, apps, its app's three `as` keys, its tenant's three `ts` keys
 * (active, needs_consent, revoked), then the earlier release's all, tenant, app, needs_consent and
 * revoked indexes (written only while expanded).
 */
export function indexBlock(keys: RedisKeys, app: string, tenantId: string): string[] {
  return [
    keys.indexes,
    keys.apps,
    ...REGISTRATION_STATUSES.map((status) => keys.appStatus(status, app)),
    ...REGISTRATION_STATUSES.map((status) => keys.tenantStatus(status, app, tenantId)),
    keys.all,
    keys.tenant(tenantId),
    keys.app(app),
    keys.status('needs_consent'),
    keys.status('revoked'),
  ]
}

/** The key names of one store (`redisKeys(prefix)`). */
export type RedisKeys = ReturnType<typeof redisKeys>
