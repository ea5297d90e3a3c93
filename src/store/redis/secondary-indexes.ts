// The `{idx}` indexes that keep operator reads and counts independent of how many registrations
// there are: ids by status (status filters; counts are their ZCARDs), tenant ids in id order (the
// tenants pages) overall and per app. create and update maintain them (keys.ts, scripts.ts); this
// file reads them, moves a status entry where a Cluster can't do it in the record's script, and
// rebuilds them once for registrations written before they existed.
//
// Until the rebuild has set the `indexes` marker, readers fall back to what existed before (a scan
// of `all`, the old tenants SET), so an upgraded store answers correctly from its first request.
import { clampLimit, decodeTenantCursor, encodeTenantCursor, type IndexPosition } from '../pagination.js'
import type { RedisClient } from '../redis-connection.js'
import {
  REGISTRATION_STATUSES,
  type RegistrationStatus,
  type TenantPage,
  type TenantQuery,
} from '../types.js'
import { INDEXES_VERSION, type RedisKeys, SUMMARY_VERSION } from './keys.js'
import { readNames } from './record-layout.js'
import { indexAfter } from './registration-index.js'
import { ADD_TENANTS, MOVE_STATUS, MOVE_STATUS_COUNTED, runScript } from './scripts.js'

/** HMGET names of tenantId and app in either record layout: [short, long] each. */
const TENANT_APP = [...readNames('tenantId'), ...readNames('app')]
/** Registrations read per step of the rebuild. */
const REBUILD_BATCH = 500
/** A status entry re-checked against its record this many times at most (concurrent updates). */
const VERIFY_ROUNDS = 5

function isStatus(value: unknown): value is RegistrationStatus {
  return typeof value === 'string' && (REGISTRATION_STATUSES as readonly string[]).includes(value)
}

/** What a tenant summary needs to count a status move: the registration's tenant, app, cloud and new consent (ms, ''). */
export interface SummaryFacts {
  tenantId: string
  app: string
  cloud: string
  consented: string
}

/** Reads and repairs of the status and tenant indexes of one Redis store. */
export class RedisSecondaryIndexes {
  /** Once complete, always complete: the marker is never removed by the broker. */
  #complete = false

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** Whether the indexes hold every registration (the marker is set). */
  async complete(): Promise<boolean> {
    if (!this.#complete) this.#complete = (await this.redis.get(this.keys.indexes)) === INDEXES_VERSION
    return this.#complete
  }

  /**
   * Puts `id` in the status index of the status its record has now, until a read of the record
   * agrees with the last move (a concurrent update may move it in between; the last one to verify
   * leaves the entry right). For a Cluster, where the record and the index are in two slots.
   */
  async moveStatus(id: string, status: RegistrationStatus, facts?: SummaryFacts): Promise<void> {
    let moved = status
    for (let round = 0; round < VERIFY_ROUNDS; round++) {
      if (facts === undefined) {
        await runScript(this.redis, MOVE_STATUS, [this.keys.all, ...this.keys.statuses], [id, moved])
      } else {
        // the tenant summary's counts move with the entry (same script, same slot)
        await runScript(
          this.redis,
          MOVE_STATUS_COUNTED,
          [this.keys.all, ...this.keys.statuses, this.keys.tenantSummary(facts.tenantId)],
          [id, moved, SUMMARY_VERSION, facts.app, facts.cloud, facts.consented],
        )
      }
      const now = await this.redis.hget(this.keys.reg(id), 'status')
      if (!isStatus(now) || now === moved) return
      moved = now
    }
  }

  /**
   * Counts by status, or `undefined` while the indexes are incomplete: ZCARD of the needs_consent
   * and revoked indexes; active is what they leave of `all` (it has no index of its own).
   */
  async countByStatus(): Promise<Record<RegistrationStatus, number> | undefined> {
    if (!(await this.complete())) return undefined
    const results = await this.redis
      .multi()
      .zcard(this.keys.all)
      .zcard(this.keys.status('needs_consent'))
      .zcard(this.keys.status('revoked'))
      .exec()
    if (results === null) throw new Error('redis transaction was aborted')
    const [all, needsConsent, revoked] = results.map(([error, value]) => {
      if (error) throw error
      return Number(value)
    })
    if (all === undefined || needsConsent === undefined || revoked === undefined)
      throw new Error('redis transaction lost a reply')
    return { active: Math.max(0, all - needsConsent - revoked), needs_consent: needsConsent, revoked }
  }

  /**
   * Removes the `status:active` index earlier versions maintained (about 140 bytes per
   * registration; nothing reads it now). Run at start-up, once the indexes are complete.
   */
  async dropRetired(): Promise<void> {
    await this.redis.unlink(this.keys.status('active'))
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
    if (!(await this.complete())) return undefined
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

  /** The tenants page from the SET written before the sorted indexes (read until the rebuild). */
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

  /**
   * Indexes every registration of `all` by status, tenant and app, in batches, then sets the
   * marker. Concurrent creates and updates maintain the indexes themselves meanwhile; an entry
   * the rebuild wrote from a status read before such an update is corrected by its re-check.
   */
  async rebuild(): Promise<number> {
    let after: IndexPosition | undefined
    let indexed = 0
    for (;;) {
      const entries = await indexAfter(this.redis, this.keys.all, after, REBUILD_BATCH)
      if (entries.length === 0) break
      after = entries[entries.length - 1]
      const records = await Promise.all(
        entries.map((entry) => this.redis.hmget(this.keys.reg(entry.id), 'status', ...TENANT_APP)),
      )
      const found: Array<{ id: string; status: RegistrationStatus }> = []
      const tenants: string[] = []
      const appKeys: string[] = []
      records.forEach(([status, tenantShort, tenantLong, appShort, appLong], i) => {
        const tenantId = tenantShort ?? tenantLong
        const app = appShort ?? appLong
        if (!isStatus(status) || !tenantId || !app) return // a dangling entry: no record
        found.push({ id: entries[i]!.id, status })
        const appKey = this.keys.appTenants(app)
        let appIndex = appKeys.indexOf(appKey)
        if (appIndex < 0) appIndex = appKeys.push(appKey) - 1
        tenants.push(tenantId, String(appIndex + 2)) // KEYS[1] is tenantIds
      })
      if (found.length === 0) continue
      const moves = found.flatMap(({ id, status }) => [id, status])
      await runScript(this.redis, MOVE_STATUS, [this.keys.all, ...this.keys.statuses], moves)
      await runScript(this.redis, ADD_TENANTS, [this.keys.tenantIds, ...appKeys], tenants)
      // re-check: a status changed since it was read (a concurrent update) is moved again
      const now = await Promise.all(found.map(({ id }) => this.redis.hget(this.keys.reg(id), 'status')))
      for (const [i, { id, status }] of found.entries()) {
        const current = now[i]
        if (isStatus(current) && current !== status) await this.moveStatus(id, current)
      }
      indexed += found.length
    }
    await this.redis.set(this.keys.indexes, INDEXES_VERSION)
    await this.redis.del(this.keys.legacyTenants)
    this.#complete = true
    return indexed
  }
}

function page(ids: readonly string[], limit: number): TenantPage {
  const tenantIds = ids.slice(0, limit)
  if (ids.length <= limit) return { tenantIds }
  return { tenantIds, nextCursor: encodeTenantCursor(tenantIds[tenantIds.length - 1]!) }
}
