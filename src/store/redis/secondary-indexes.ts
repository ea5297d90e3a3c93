// The `{idx}` indexes that keep operator reads and counts independent of how many registrations
// there are: ids by (app, status) and by (tenant, app, status) — every listing filter reads exactly
// the indexes it names, merged, and counts by status are their ZCARDs —, and tenant ids in id order
// (the tenants pages) overall and per app. create and update maintain them (keys.ts, index-lua.ts;
// where a Cluster can't move an entry in the record's script, index-moves.ts); this file reads them
// and indexes what the earlier release's `all` holds (store-upgrade.ts decides when).
//
// Until the store is contracted (the `indexes` marker is this version: store-upgrade.ts, once the
// operator finishes a rolling upgrade), the scripts also keep the earlier release's indexes (`all`,
// tenant, app, status) and readers read those (with a scan of `all` where even they are
// incomplete): instances of the previous release keep only them, so they are the complete ones.
import { clampLimit, decodeTenantCursor, encodeTenantCursor, type IndexPosition } from '../pagination.js'
import type { RedisClient } from '../redis-connection.js'
import {
  REGISTRATION_STATUSES,
  type RegistrationQuery,
  type RegistrationStatus,
  type TenantPage,
  type TenantQuery,
} from '../types.js'
import { REBUILD_ENTRY } from './index-lua.js'
import { INDEXES_VERSION, indexBlock, LEGACY_INDEXES_VERSION, type RedisKeys } from './keys.js'
import { readNames } from './record-layout.js'
import { indexAfter } from './registration-index.js'
import { runScript } from './scripts.js'

/** HMGET names of tenantId and app in either record layout: [short, long] each. */
const TENANT_APP = [...readNames('tenantId'), ...readNames('app')]
/** Registrations read per step of indexing the earlier `all`. */
const REBUILD_BATCH = 500

/** A status this release knows (index keys and records hold text). */
export function isStatus(value: unknown): value is RegistrationStatus {
  return typeof value === 'string' && (REGISTRATION_STATUSES as readonly string[]).includes(value)
}

/** What a tenant summary needs to count a status move: the registration's tenant, app, cloud and new consent (ms, ''). */
export interface SummaryFacts {
  tenantId: string
  app: string
  cloud: string
  consented: string
}

/** Reads and repairs of the listing and tenant indexes of one Redis store. */
export class RedisSecondaryIndexes {
  /** Once complete, always complete: the marker is never removed by the broker. */
  #complete = false

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** Whether the (app, status) and (tenant, app, status) indexes hold every registration. */
  async complete(): Promise<boolean> {
    if (!this.#complete) this.#complete = (await this.redis.get(this.keys.indexes)) === INDEXES_VERSION
    return this.#complete
  }

  /** This version's marker, or the earlier release's complete indexes ("2"), or neither. */
  async #state(): Promise<'complete' | 'legacy' | 'incomplete'> {
    if (this.#complete) return 'complete'
    const marker = await this.redis.get(this.keys.indexes)
    if (marker === INDEXES_VERSION) this.#complete = true
    return marker === INDEXES_VERSION
      ? 'complete'
      : marker === LEGACY_INDEXES_VERSION
        ? 'legacy'
        : 'incomplete'
  }

  /** Whether the earlier release's status indexes are complete (marker "2": read while expanded). */
  async legacyStatusesComplete(): Promise<boolean> {
    return (await this.#state()) === 'legacy'
  }

  /** Every app with a registration, sorted (which `as` and `ts` keys a listing merges). */
  async apps(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.apps)).sort()
  }

  /**
   * The indexes a listing reads, merged: exactly the registrations its filters name (the
   * (tenant, app, status) ones with a tenant, else the (app, status) ones); `undefined` while the
   * indexes are incomplete.
   */
  async listingKeys(
    query: Pick<RegistrationQuery, 'tenantId' | 'app' | 'status'>,
  ): Promise<string[] | undefined> {
    if (!(await this.complete())) return undefined
    const apps = query.app === undefined ? await this.apps() : [query.app]
    const statuses = query.status === undefined ? REGISTRATION_STATUSES : [query.status]
    const { tenantId } = query
    return apps.flatMap((app) =>
      statuses.map((status) =>
        tenantId === undefined
          ? this.keys.appStatus(status, app)
          : this.keys.tenantStatus(status, app, tenantId),
      ),
    )
  }

  /**
   * Counts by status, or `undefined` while no index is complete: the ZCARDs of the (app, status)
   * indexes (while expanded: of the earlier release's status indexes; active is what they
   * leave of `all`).
   */
  async countByStatus(): Promise<Record<RegistrationStatus, number> | undefined> {
    const state = await this.#state()
    if (state === 'incomplete') return undefined
    const counts: Record<RegistrationStatus, number> = { active: 0, needs_consent: 0, revoked: 0 }
    const multi = this.redis.multi()
    const counted: RegistrationStatus[] = []
    if (state === 'complete') {
      for (const app of await this.apps()) {
        for (const status of REGISTRATION_STATUSES) {
          multi.zcard(this.keys.appStatus(status, app))
          counted.push(status)
        }
      }
    } else {
      multi.zcard(this.keys.all)
      multi.zcard(this.keys.status('needs_consent'))
      multi.zcard(this.keys.status('revoked'))
      counted.push('active', 'needs_consent', 'revoked')
    }
    if (counted.length === 0) return counts
    const results = await multi.exec()
    if (results === null) throw new Error('redis transaction was aborted')
    results.forEach(([error, value], i) => {
      if (error) throw error
      counts[counted[i]!] += Number(value)
    })
    if (state === 'legacy') counts.active = Math.max(0, counts.active - counts.needs_consent - counts.revoked)
    return counts
  }

  /**
   * Once the store is contracted, what earlier releases left in their indexes (an interrupted
   * finish, store-upgrade.ts) — indexed, then the earlier indexes dropped. Run at start-up and by
   * every finish; costs one EXISTS when there is nothing.
   */
  async dropRetired(): Promise<void> {
    if ((await this.redis.exists(this.keys.all)) === 0) return
    await this.indexEarlier()
    await this.dropEarlier()
  }

  /**
   * Deletes what earlier versions kept and nothing reads once the store is contracted: their
   * indexes (all, tenant, app, status) and tenants SET; `all` goes last, so an interrupted cleanup
   * is finished by the next start-up.
   */
  async dropEarlier(): Promise<void> {
    const k = this.keys
    const apps = await this.apps()
    await this.redis.unlink(k.legacyTenants, ...k.statuses, ...apps.map((app) => k.app(app)))
    for (let after = '-'; ; ) {
      const tenants = await this.redis.zrange(k.tenantIds, after, '+', 'BYLEX', 'LIMIT', 0, REBUILD_BATCH)
      if (tenants.length === 0) break
      await this.redis.unlink(...tenants.map((tenantId) => k.tenant(tenantId)))
      after = `(${tenants[tenants.length - 1]}`
    }
    await this.redis.unlink(k.all)
  }

  /** The smallest of the candidate index keys (by ZCARD): a filtered listing walks the fewest entries. */
  async smallest(candidates: readonly string[]): Promise<string> {
    if (candidates.length === 1) return candidates[0]!
    const multi = this.redis.multi()
    for (const key of candidates) multi.zcard(key)
    const results = await multi.exec()
    if (results === null) throw new Error('redis transaction was aborted')
    let best = 0
    results.forEach(([error, value], i) => {
      if (error) throw error
      if (Number(value) < Number(results[best]![1])) best = i
    })
    return candidates[best]!
  }

  /** One page of tenant ids from the sorted indexes; `undefined` while they are incomplete. */
  async listTenants(query: TenantQuery): Promise<TenantPage | undefined> {
    if ((await this.#state()) === 'incomplete') return undefined
    const limit = clampLimit(query.limit)
    const after = query.cursor === undefined ? undefined : decodeTenantCursor(query.cursor)
    const key = query.app === undefined ? this.keys.tenantIds : this.keys.appTenants(query.app)
    const ids = await this.redis.zrange(
      key,
      after === undefined ? '-' : `(${after}`,
      '+',
      'BYLEX',
      'LIMIT',
      0,
      limit + 1,
    )
    return page(ids, limit)
  }

  /** The tenants page from the SET written before the sorted indexes (read until indexed at start-up). */
  async listLegacyTenants(query: TenantQuery, tenantsOfApp: () => Promise<Set<string>>): Promise<TenantPage> {
    const limit = clampLimit(query.limit)
    const after = query.cursor === undefined ? undefined : decodeTenantCursor(query.cursor)
    let ids = (await this.redis.smembers(this.keys.legacyTenants)).sort()
    if (query.app !== undefined) {
      const ofApp = await tenantsOfApp()
      ids = ids.filter((id) => ofApp.has(id))
    }
    return page(after === undefined ? ids : ids.filter((id) => id > after), limit)
  }

  /** Records that the store is contracted (store-upgrade.ts sets the marker): readers switch now. */
  markComplete(): void {
    this.#complete = true
  }

  /** Gives every registration of the earlier `all` its entries (REBUILD_ENTRY); how many have a record. */
  async indexEarlier(): Promise<number> {
    let after: IndexPosition | undefined
    let indexed = 0
    for (;;) {
      const entries = await indexAfter(this.redis, this.keys.all, after, REBUILD_BATCH)
      if (entries.length === 0) break
      after = entries[entries.length - 1]
      const records = await Promise.all(
        entries.map((entry) => this.redis.hmget(this.keys.reg(entry.id), 'status', ...TENANT_APP)),
      )
      const writes = records.map(([status, tenantShort, tenantLong, appShort, appLong], i) => {
        const tenantId = tenantShort ?? tenantLong
        const app = appShort ?? appLong
        if (!isStatus(status) || !tenantId || !app) return undefined // a dangling entry: no record
        const id = entries[i]!.id
        return runScript(
          this.redis,
          REBUILD_ENTRY,
          [this.keys.tenantIds, this.keys.appTenants(app), ...indexBlock(this.keys, app, tenantId)],
          [id, status, tenantId, app],
        )
      })
      await Promise.all(writes)
      indexed += writes.filter((write) => write !== undefined).length
    }
    return indexed
  }
}

function page(ids: readonly string[], limit: number): TenantPage {
  const tenantIds = ids.slice(0, limit)
  if (ids.length <= limit) return { tenantIds }
  return { tenantIds, nextCursor: encodeTenantCursor(tenantIds[tenantIds.length - 1]!) }
}
