// Registrations in Redis: one hash per record (slot of `reg:{id}`), secondary indexes and the
// delegated uniqueness claims in the `{idx}` slot (see keys.ts for the layout). Writes and reads by
// id are here, the create steps in registration-creation.ts; listings by index (admin lists,
// tenants, counts, idle walk) in registration-listings.ts.
//
//   P rl:<key>                       STRING  fixed-window counter, PX window (also admit's `client`)
//   P audit                          STREAM  audit events, MAXLEN ~ n (+ optional MINID retention)
//
// The record (slot of `reg:{id}`) and its index entries (slot of `{idx}`) can't be written in one
// atomic step on a Cluster, so writes are ordered to fail safe:
//   create: 1. claim the uniqueness slot and add index entries (one Lua call in `{idx}`),
//           2. write the record (Lua: only if absent),
//           3. delegated: check the claim is still ours (else undo and report the winner).
//   A crash after 1 leaves index entries pointing at a missing record: every reader skips those,
//   and a claim whose record is still missing after `claimGraceMs` (or whose record is revoked)
//   is taken over by the next create. A record never exists without its uniqueness claim.
//   revoke: 1. versioned update of the record, 2. release the claim only if it still names this id
//   (a crash in between leaves a claim on a revoked record, which the next create takes over).
//   status change: the record and its index entries in one script on a single server; on a
//   Cluster a journal entry first, the record, then the move, re-checked against the record, and
//   the journal entry removed; what a failure between them leaves is replayed (index-moves.ts).
//   Listings verify every item against its record, so a stale entry is never shown.
//   notifications: creation and every status change write their outbox entry (`outbox:{id}`, the
//   record's slot) in the same script as the record, announced first (see webhooks.ts).
import { randomUUID } from 'node:crypto'
import type { KeyRing } from '../../crypto/envelope.js'
import type { RedisClient } from '../redis-connection.js'
import {
  decodeMeta,
  decodeRegistration,
  decodeStored,
  encodeUpdate,
  encodeUsage,
  PUBLIC_FIELDS,
  pairsToHash,
  uniquenessField,
} from '../registration-hash.js'
import { revokedIsFinal } from '../store-facts.js'
import type {
  AdmitRequest,
  AdmitResult,
  CreateResult,
  IdleOrder,
  IdlePosition,
  IndexRebuild,
  Registration,
  RegistrationPage,
  RegistrationPatch,
  RegistrationQuery,
  RegistrationSecrets,
  RegistrationStatus,
  RegistrationStore,
  RegistrationUsage,
  ResealOutcome,
  SecretsPatch,
  StoredRegistration,
  TenantCounts,
  TenantPage,
  TenantQuery,
  UpgradeFinish,
  UpgradeState,
} from '../types.js'
import { isoToMs } from '../validation.js'
import { RedisAdmission } from './admit.js'
import { releaseClaim } from './delegated-claims.js'
import { raiseIdle } from './idle-buckets.js'
import { UPDATE_RECORD_INDEXED } from './index-lua.js'
import { RedisIndexMoves } from './index-moves.js'
import { indexBlock, type RedisKeys, SUMMARY_VERSION } from './keys.js'
import { fromStored, moreChunks, storedNamesOf, toStoredChanges, zipStored } from './record-layout.js'
import { resealRecord, resealRecords } from './record-maintenance.js'
import { RedisRegistrationCreation } from './registration-creation.js'
import { RedisRegistrationListings } from './registration-listings.js'
import { runScript, TOUCH_RECORD, UPDATE_RECORD } from './scripts.js'
import { RedisSecondaryIndexes } from './secondary-indexes.js'
import { RedisStoreUpgrade } from './store-upgrade.js'
import { RedisTenantSummaries, readSummaryFacts } from './tenant-summaries.js'

/** HMGET names of the public fields, in either record layout (record-layout.ts). */
const PUBLIC_STORED = storedNamesOf(PUBLIC_FIELDS)

/** `RegistrationStore` on Redis (see the write order above). */
export class RedisRegistrations implements RegistrationStore {
  readonly #admission: RedisAdmission
  readonly #creation: RedisRegistrationCreation
  readonly #indexes: RedisSecondaryIndexes
  readonly #listings: RedisRegistrationListings
  readonly #moves: RedisIndexMoves
  readonly #summaries: RedisTenantSummaries
  readonly #upgrade: RedisStoreUpgrade
  /** False on a Cluster, or once the server refused UPDATE_RECORD_INDEXED's two slots. */
  #crossSlotScripts: boolean

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly keyRing: KeyRing,
    private readonly clock: () => number,
    claimGraceMs: number,
    /** Announces a subject about to get outbox entries (the webhook store's `announce`). */
    private readonly announce: (subject: string) => Promise<void>,
  ) {
    this.#admission = new RedisAdmission(redis, keys)
    this.#creation = new RedisRegistrationCreation(
      redis,
      keys,
      keyRing,
      clock,
      claimGraceMs,
      announce,
      (id) => this.getMeta(id),
    )
    this.#indexes = new RedisSecondaryIndexes(redis, keys)
    this.#moves = new RedisIndexMoves(redis, keys, clock, (id) => this.getMeta(id))
    this.#listings = new RedisRegistrationListings(redis, keys, this.#indexes, (id) => this.getMeta(id))
    this.#summaries = new RedisTenantSummaries(redis, keys, this, () => this.#indexes.complete())
    this.#upgrade = new RedisStoreUpgrade(redis, keys, this.#indexes)
    this.#crossSlotScripts = !redis.isCluster
  }

  create(input: Omit<Registration, 'version'>, secrets: RegistrationSecrets): Promise<CreateResult> {
    return this.#creation.create(input, secrets)
  }

  async get(id: string): Promise<StoredRegistration | null> {
    const stored = await this.redis.hgetall(this.keys.reg(id))
    if (stored.status === undefined) return null
    return decodeStored(this.keyRing, fromStored(id, stored))
  }

  async getMeta(id: string): Promise<(Registration & RegistrationUsage) | null> {
    const key = this.keys.reg(id)
    const stored = zipStored(PUBLIC_STORED, await this.redis.hmget(key, ...PUBLIC_STORED))
    if (stored.status === undefined) return null
    const more = moreChunks(stored) // a status detail longer than the chunks read
    if (more.length > 0) Object.assign(stored, zipStored(more, await this.redis.hmget(key, ...more)))
    return decodeMeta(fromStored(id, stored))
  }

  async update(
    id: string,
    expectedVersion: number,
    patch: RegistrationPatch,
    secrets?: SecretsPatch,
  ): Promise<Registration | null> {
    const now = new Date(this.clock()).toISOString()
    const logical = encodeUpdate(this.keyRing, id, patch, secrets, now)
    const changes = toStoredChanges(logical.set, logical.del)
    // a status change writes an outbox entry: announced before the write (see redis/webhooks.ts)
    const eventId = patch.status === undefined ? '' : randomUUID()
    // a status change also moves the tenant summary's counts: which tenant, app and cloud (fixed
    // for a registration's life) — a missing record is a conflict like any other
    const counted =
      patch.status === undefined
        ? undefined
        : await readSummaryFacts(this.redis, this.keys, id, patch.consentedAt)
    if (patch.status !== undefined && counted === undefined) return null
    if (eventId !== '') await this.announce(id)
    const args = [
      String(expectedVersion),
      patch.status ?? '',
      changes.set.length / 2,
      eventId,
      now,
      id,
      ...changes.set,
      ...changes.del,
    ]
    // A status change moves the index entries in the same script where the server allows it;
    // elsewhere it is journaled first, so a failure before the move is repaired (index-moves.ts).
    const indexed = patch.status !== undefined && this.#crossSlotScripts
    const journaled = patch.status !== undefined && !indexed
    let mark: string | undefined
    let unjournaled: unknown
    if (journaled) {
      try {
        mark = await this.#moves.begin(id)
      } catch (error) {
        // A revocation must cut tokens off even while the `{idx}` master is away: its record is
        // written anyway and its entries moved without a mark (below); any other change waits.
        if (patch.status !== 'revoked') throw error
        unjournaled = error
      }
    }
    let reply: [string, string[]] | null | false
    try {
      reply = (await runScript(
        this.redis,
        indexed ? UPDATE_RECORD_INDEXED : UPDATE_RECORD,
        indexed
          ? [
              this.keys.reg(id),
              this.keys.outbox(id),
              this.keys.tenantSummary(counted!.tenantId),
              ...indexBlock(this.keys, counted!.app, counted!.tenantId),
            ]
          : [this.keys.reg(id), this.keys.outbox(id)],
        indexed ? [...args, SUMMARY_VERSION, counted!.app, counted!.cloud, counted!.consented] : args,
      )) as [string, string[]] | null | false
    } catch (error) {
      if (error instanceof Error && error.message.includes('REVOKED_FINAL')) {
        if (mark !== undefined) await this.#moves.forget(mark) // refused: nothing was written
        throw revokedIsFinal(id)
      }
      // A sharded Redis behind one endpoint refuses keys of two slots before running anything:
      // from now on the record first, then its index entry, as on a Cluster.
      if (indexed && error instanceof Error && error.message.startsWith('CROSSSLOT')) {
        this.#crossSlotScripts = false
        return this.update(id, expectedVersion, patch, secrets)
      }
      throw error
    }
    // nil (RESP2 conversion of Lua false): missing record or version conflict
    if (reply === null || reply === false) {
      // (a mark left here only costs the repair one sync: never an error instead of the conflict)
      if (mark !== undefined) await this.#moves.forget(mark).catch(() => undefined)
      return null
    }
    // Moved even when the status was already this one: it puts right what an interrupted change
    // of this registration left (its mark may still wait for the repair).
    if (mark !== undefined) await this.#moves.complete(mark, id, patch.status!, counted!)
    else if (journaled) {
      // The unjournaled revocation: written; its entries follow now, or the caller learns of the
      // failure and retries (a retried revocation finds it revoked and syncs them).
      await this.#moves.move(id, patch.status!, counted!).catch(() => {
        throw unjournaled
      })
    }
    const registration = decodeRegistration(fromStored(id, pairsToHash(reply[1])))
    if (registration.status === 'revoked') {
      const field = uniquenessField(registration)
      if (field !== undefined) await releaseClaim(this.redis, this.keys, field, id)
    }
    return registration
  }

  async touch(id: string, usage: RegistrationUsage): Promise<void> {
    const usageSet = encodeUsage(usage)
    if (Object.keys(usageSet).length === 0) return
    const { set, del } = toStoredChanges(usageSet, [])
    const touched = await runScript(
      this.redis,
      TOUCH_RECORD,
      [this.keys.reg(id)],
      [del.length, ...del, ...set],
    )
    if (touched === 1 && usage.lastRefreshAt !== undefined) {
      await raiseIdle(this.redis, this.keys, id, isoToMs(usage.lastRefreshAt, 'lastRefreshAt'))
    }
  }

  admit(id: string, request: AdmitRequest): Promise<AdmitResult> {
    return this.#admission.admit(id, request)
  }

  list(query: RegistrationQuery): Promise<RegistrationPage> {
    return this.#listings.list(query)
  }

  listTenants(query: TenantQuery): Promise<TenantPage> {
    return this.#listings.listTenants(query)
  }

  countByStatus(): Promise<Record<RegistrationStatus, number>> {
    return this.#listings.countByStatus()
  }

  summarizeTenants(tenantIds: readonly string[], app?: string): Promise<TenantCounts[]> {
    return this.#summaries.summarize(tenantIds, app)
  }

  async syncIndexes(id: string): Promise<void> {
    // Where the record and its entries are written in one script, nothing can be out of step.
    if (this.#crossSlotScripts) return
    await this.#moves.sync(id)
  }

  repairIndexes(): Promise<number> {
    return this.#moves.repair()
  }

  async ensureIndexes(): Promise<IndexRebuild> {
    const { registrations, state } = await this.#upgrade.atStartUp()
    return { rebuilt: registrations > 0, registrations, upgrade: state }
  }

  upgradeState(): Promise<UpgradeState> {
    return this.#upgrade.state()
  }

  finishUpgrade(): Promise<UpgradeFinish> {
    return this.#upgrade.finish()
  }

  listIdleDelegated(before: string, limit: number, after?: IdlePosition): Promise<IdlePosition[]> {
    return this.#listings.listIdleDelegated(before, limit, after)
  }

  idleOrder(): Promise<IdleOrder> {
    return this.#listings.idleOrder()
  }

  reseal(id: string): Promise<boolean> {
    return resealRecord(this.redis, this.keys, this.keyRing, id)
  }

  resealBatch(ids: readonly string[]): Promise<ResealOutcome[]> {
    return resealRecords(this.redis, this.keys, this.keyRing, ids)
  }

  scanIds(cursor: string | undefined, count: number): Promise<{ ids: string[]; nextCursor?: string }> {
    return this.#listings.scanIds(cursor, count)
  }
}
