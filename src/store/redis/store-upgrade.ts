// Expand/contract of the Redis layout across a rolling upgrade from the previous release (e9e5226:
// indexes `all`/tenant/app/status, one claims hash `{idx}:delegated`, one idle set `{idx}:idle`,
// marker "2") to this one ((app, status) and (tenant, app, status) indexes, claim and idle buckets,
// marker "3"). Why: instances of both releases share one store while an upgrade rolls, and the
// previous release reads and writes only its own layout; deleting it under them loses their writes.
//
// - Expanded (marker not "3": a store the previous release wrote): start-up changes nothing the
//   previous release reads (its marker stays "2"; a store older than that is indexed its way and
//   given "2"); every script also writes the earlier layout and reads it as the authority
//   (index-lua.ts), claims and idle entries go to the legacy hash and set, readers read those.
// - Finish (the operator, once every instance runs this release; under the migration lock):
//   every registration's new entries re-set from its record, entries of deleted ones pruned, the
//   apps set completed, tenant summaries marked for recount, then the marker "3" — readers and
//   scripts switch —, then claims and idle entries moved into their buckets and the earlier keys
//   dropped. Every step is idempotent: an interrupted finish is run again (or completed at
//   start-up once the marker is set).
// - Contracted (marker "3"): only this release's layout; a fresh store is born here. An instance
//   of the previous release started on it would downgrade the marker: no rollback after finishing.
import type { IndexPosition } from '../pagination.js'
import type { RedisClient } from '../redis-connection.js'
import { REGISTRATION_STATUSES, type UpgradeState } from '../types.js'
import { migrateLegacyClaims } from './delegated-claims.js'
import { migrateLegacyIdle } from './idle-buckets.js'
import { LUA_INDEX } from './index-lua.js'
import { INDEXES_VERSION, indexBlock, LEGACY_INDEXES_VERSION, type RedisKeys } from './keys.js'
import { readNames } from './record-layout.js'
import { indexAfter } from './registration-index.js'
import { LuaScript, runScript } from './scripts.js'
import { isStatus, type RedisSecondaryIndexes } from './secondary-indexes.js'
import { pruneAnnouncedFields } from './webhooks.js'

/** HMGET names of tenantId and app in either record layout: [short, long] each. */
const TENANT_APP = [...readNames('tenantId'), ...readNames('app')]
/** Registrations (or index entries) read per step. */
const BATCH = 500
/** An entry re-set this many times at most while concurrent updates keep changing its record. */
const SYNC_ROUNDS = 5

/**
 * KEYS: tenant ids, the app's tenant ids, then the index block (keys.ts `indexBlock`). ARGV: id,
 * status (its record's), tenantId, app. Puts the id's entries in both layouts under `status`
 * (removing those of other statuses), while it is still in the earlier `all` (else it was deleted:
 * 0). Runs only before the marker says "3" (-1 after: a concurrent finish already switched).
 */
const SYNC_ENTRY = new LuaScript(`${LUA_INDEX}
local ix = index_keys(3)
if not legacy(ix) then return -1 end
local score = redis.call('ZSCORE', ix.all, ARGV[1])
if not score then return 0 end
index_put(ix, ARGV[1], score, ARGV[2])
redis.call('ZADD', KEYS[1], 0, ARGV[3])
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('SADD', ix.apps, ARGV[4])
return 1
`)

/**
 * KEYS: marker, the earlier `all`, then index keys of this release. ARGV: (id, index of its key in
 * KEYS)… Removes each id that `all` no longer holds (deleted by an instance of the previous
 * release, which never touched these keys). Only before the marker says "3". Returns how many.
 */
const PRUNE_IDS = new LuaScript(`
if redis.call('GET', KEYS[1]) == '${INDEXES_VERSION}' then return 0 end
local pruned = 0
for i = 1, #ARGV, 2 do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    pruned = pruned + redis.call('ZREM', KEYS[tonumber(ARGV[i + 1])], ARGV[i])
  end
end
return pruned
`)

/** What a finish did. */
export interface FinishCounts {
  /** Registrations whose entries were re-set from their record. */
  registrations: number
  /** Entries of deleted registrations removed from this release's indexes. */
  pruned: number
}

/** The expand/contract state of one Redis store's layout (see above). */
export class RedisStoreUpgrade {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly indexes: RedisSecondaryIndexes,
  ) {}

  /** Contracted once the marker says this version; expanded before. */
  async state(): Promise<UpgradeState> {
    return (await this.indexes.complete()) ? 'contracted' : 'expanded'
  }

  /**
   * At start-up: a contracted store gets what an interrupted finish left done; a store the
   * previous release wrote stays expanded (a store older than that is indexed as that release
   * did and given its marker, so its instances keep reading it); a fresh store is contracted.
   * Returns the registrations indexed and the state.
   */
  async atStartUp(): Promise<{ registrations: number; state: UpgradeState }> {
    const k = this.keys
    const marker = await this.redis.get(k.indexes)
    if (marker === INDEXES_VERSION) {
      await this.#contract()
      return { registrations: 0, state: 'contracted' }
    }
    if (marker === LEGACY_INDEXES_VERSION) return { registrations: 0, state: 'expanded' }
    const earlier = await this.redis.exists(k.all, k.legacyDelegated, k.legacyIdle, k.legacyTenants)
    if (earlier === 0) {
      await this.redis.set(k.indexes, INDEXES_VERSION, 'NX')
      return { registrations: 0, state: await this.state() }
    }
    const registrations = await this.indexes.indexEarlier()
    await this.redis.set(k.indexes, LEGACY_INDEXES_VERSION, 'NX')
    await this.redis.unlink(k.legacyTenants) // as the previous release's rebuild did
    return { registrations, state: await this.state() }
  }

  /**
   * Finishes the upgrade (see above): only once no instance of the previous release runs.
   * Idempotent and resumable; on a contracted store it only completes what is left.
   */
  async finish(): Promise<FinishCounts> {
    let counts: FinishCounts = { registrations: 0, pruned: 0 }
    if (!(await this.indexes.complete())) {
      counts = { registrations: await this.#resync(), pruned: await this.#prune() }
      await this.#recountSummaries()
      await this.redis.set(this.keys.indexes, INDEXES_VERSION)
      this.indexes.markComplete()
    }
    await this.#contract()
    return counts
  }

  /**
   * Claims and idle entries into their buckets, then the earlier indexes dropped (marker "3"), and
   * the webhook announcement fields the previous release's instances left behind removed.
   */
  async #contract(): Promise<void> {
    await migrateLegacyClaims(this.redis, this.keys)
    await migrateLegacyIdle(this.redis, this.keys)
    await this.indexes.dropRetired()
    await pruneAnnouncedFields(this.redis, this.keys)
  }

  /** Every registration of the earlier `all` re-set from its record (SYNC_ENTRY); how many. */
  async #resync(): Promise<number> {
    let after: IndexPosition | undefined
    let synced = 0
    for (;;) {
      const entries = await indexAfter(this.redis, this.keys.all, after, BATCH)
      if (entries.length === 0) return synced
      after = entries[entries.length - 1]
      const counts = await Promise.all(entries.map((entry) => this.#syncOne(entry.id)))
      synced += counts.reduce((sum, n) => sum + n, 0)
    }
  }

  /** One registration's entries set to its record's status, re-read until a concurrent update agrees. */
  async #syncOne(id: string): Promise<number> {
    let [status, tenantShort, tenantLong, appShort, appLong] = await this.redis.hmget(
      this.keys.reg(id),
      'status',
      ...TENANT_APP,
    )
    const tenantId = tenantShort ?? tenantLong
    const app = appShort ?? appLong
    if (!tenantId || !app) return 0 // a dangling entry (a create that never wrote its record): readers skip it
    const keys = [this.keys.tenantIds, this.keys.appTenants(app), ...indexBlock(this.keys, app, tenantId)]
    for (let round = 0; round < SYNC_ROUNDS && isStatus(status); round++) {
      if (Number(await runScript(this.redis, SYNC_ENTRY, keys, [id, status, tenantId, app])) !== 1) return 0
      const now = await this.redis.hget(this.keys.reg(id), 'status')
      if (now === status) return 1
      status = now
    }
    return 0
  }

  /** This release's index entries of registrations `all` no longer holds, removed; how many. */
  async #prune(): Promise<number> {
    const k = this.keys
    let pruned = 0
    for (const app of await this.indexes.apps()) {
      pruned += await this.#pruneKeys(REGISTRATION_STATUSES.map((status) => k.appStatus(status, app)))
      for (let after = '-'; ; ) {
        const tenants = await this.redis.zrange(k.appTenants(app), after, '+', 'BYLEX', 'LIMIT', 0, 100)
        if (tenants.length === 0) break
        after = `(${tenants[tenants.length - 1]}`
        pruned += await this.#pruneKeys(
          tenants.flatMap((tenantId) =>
            REGISTRATION_STATUSES.map((status) => k.tenantStatus(status, app, tenantId)),
          ),
        )
      }
    }
    return pruned
  }

  async #pruneKeys(indexKeys: readonly string[]): Promise<number> {
    let pruned = 0
    const positions = new Map<string, IndexPosition | undefined>(indexKeys.map((key) => [key, undefined]))
    while (positions.size > 0) {
      const keys = [...positions.keys()]
      const pages = await Promise.all(
        keys.map((key) => indexAfter(this.redis, key, positions.get(key), BATCH)),
      )
      const args: string[] = []
      keys.forEach((key, i) => {
        const page = pages[i]!
        for (const entry of page) args.push(entry.id, String(i + 3)) // KEYS[1] marker, KEYS[2] all
        if (page.length < BATCH) positions.delete(key)
        else positions.set(key, page[page.length - 1])
      })
      if (args.length > 0) {
        pruned += Number(
          await runScript(this.redis, PRUNE_IDS, [this.keys.indexes, this.keys.all, ...keys], args),
        )
      }
    }
    return pruned
  }

  /**
   * Every tenant summary marked incomplete (its `v` removed): the next listing of the tenant
   * recounts it from the re-synced indexes (tenant-summaries.ts), whatever drifted before.
   */
  async #recountSummaries(): Promise<void> {
    for (let after = '-'; ; ) {
      const tenants = await this.redis.zrange(this.keys.tenantIds, after, '+', 'BYLEX', 'LIMIT', 0, BATCH)
      if (tenants.length === 0) return
      after = `(${tenants[tenants.length - 1]}`
      const pipeline = this.redis.pipeline()
      for (const tenantId of tenants) pipeline.hdel(this.keys.tenantSummary(tenantId), 'v')
      for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error
    }
  }
}
