// Reading registrations in Redis by index: the admin listings (filtered, paged by cursor), the
// tenants of an app, the counts by status, the idle delegated registrations keep-alive walks, and
// the id scan of maintenance commands. A listing reads exactly the indexes its filters name
// (merged: secondary-indexes.ts), so a page costs the same however many registrations don't match.
// Every index entry is checked against its record, so a stale or dangling entry is never shown;
// a store not contracted yet (a rolling upgrade, store-upgrade.ts) is served from the earlier
// release's indexes and idle set (a walk of the smallest, or a scan), which every instance of
// either release keeps. Writes are registrations.ts's.
import { BUCKETED_IDLE_ORDER, SINGLE_SET_IDLE_ORDER } from '../idle-order.js'
import { clampLimit, decodeCursor, encodeCursor, matchesQuery } from '../pagination.js'
import type { RedisClient } from '../redis-connection.js'
import type {
  IdleOrder,
  IdlePosition,
  Registration,
  RegistrationPage,
  RegistrationQuery,
  RegistrationStatus,
  RegistrationUsage,
  TenantPage,
  TenantQuery,
} from '../types.js'
import { isoToMs } from '../validation.js'
import { walkIdle } from './idle-buckets.js'
import type { RedisKeys } from './keys.js'
import { readNames } from './record-layout.js'
import { indexAfter, walkIndex } from './registration-index.js'
import type { RedisSecondaryIndexes } from './secondary-indexes.js'

/** HMGET names of kind and status (either record layout, record-layout.ts). */
const KIND_STATUS = [...readNames('kind'), 'status']
/** Legacy idle entries read per round trip (an expanded store). */
const LEGACY_IDLE_BATCH = 200

/** The listing half of `RegistrationStore` on Redis; RedisRegistrations delegates to it. */
export class RedisRegistrationListings {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly indexes: RedisSecondaryIndexes,
    /** A record's public fields and usage, or null when it is missing. */
    private readonly getMeta: (id: string) => Promise<(Registration & RegistrationUsage) | null>,
  ) {}

  async list(query: RegistrationQuery): Promise<RegistrationPage> {
    const limit = clampLimit(query.limit)
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
    const key = (await this.indexes.listingKeys(query)) ?? (await this.#legacyListingIndex(query))
    const { items, next } = await walkIndex(this.redis, key, after, limit, (ids) =>
      Promise.all(
        ids.map(async (id) => {
          const meta = await this.getMeta(id)
          if (meta === null) return undefined // dangling index entry
          return matchesQuery(meta, query) ? meta : undefined
        }),
      ),
    )
    return { items, ...(next === undefined ? {} : { nextCursor: encodeCursor(next) }) }
  }

  /**
   * While expanded (store-upgrade.ts), the earlier release's index a listing walks: the smallest of those its
   * filters name (every item is checked against its record anyway).
   */
  async #legacyListingIndex(query: RegistrationQuery): Promise<string> {
    const candidates: string[] = []
    if (query.tenantId !== undefined) candidates.push(this.keys.tenant(query.tenantId))
    if (query.app !== undefined) candidates.push(this.keys.app(query.app))
    // active has no index of its own (nearly every registration is active): walk `all`
    if (
      query.status !== undefined &&
      query.status !== 'active' &&
      (await this.indexes.legacyStatusesComplete())
    )
      candidates.push(this.keys.status(query.status))
    return candidates.length === 0 ? this.keys.all : this.indexes.smallest(candidates)
  }

  async listTenants(query: TenantQuery): Promise<TenantPage> {
    const indexed = await this.indexes.listTenants(query)
    if (indexed !== undefined) return indexed
    return this.indexes.listLegacyTenants(query, async () => {
      const tenants = new Set<string>()
      for (let cursor: string | undefined, more = true; more; ) {
        const page = await this.list({
          app: query.app,
          limit: 500,
          ...(cursor === undefined ? {} : { cursor }),
        })
        for (const item of page.items) tenants.add(item.tenantId)
        cursor = page.nextCursor
        more = cursor !== undefined
      }
      return tenants
    })
  }

  async countByStatus(): Promise<Record<RegistrationStatus, number>> {
    const indexed = await this.indexes.countByStatus()
    if (indexed !== undefined) return indexed
    // data written before any complete status index, not rebuilt yet: count by scanning
    const counts: Record<RegistrationStatus, number> = { active: 0, needs_consent: 0, revoked: 0 }
    for (let cursor: string | undefined, more = true; more; ) {
      const page = await this.list({ limit: 500, ...(cursor === undefined ? {} : { cursor }) })
      for (const item of page.items) counts[item.status] += 1
      cursor = page.nextCursor
      more = cursor !== undefined
    }
    return counts
  }

  async listIdleDelegated(before: string, limit: number, after?: IdlePosition): Promise<IdlePosition[]> {
    const beforeMs = isoToMs(before, 'before')
    if (!(limit >= 1)) return []
    const wanted = Math.trunc(limit)
    const out: IdlePosition[] = []
    const take = async (entries: IdlePosition[]) => {
      const states = await Promise.all(
        entries.map((entry) => this.redis.hmget(this.keys.reg(entry.id), ...KIND_STATUS)),
      )
      entries.forEach((entry, i) => {
        const [short, long, status] = states[i] ?? []
        const kind = short ?? long
        if (kind === 'delegated' && typeof status === 'string' && status !== 'revoked') out.push(entry)
      })
      return out.length < wanted
    }
    // bucket by bucket (idle-buckets.ts), or, while expanded, the one legacy set every instance
    // writes (store-upgrade.ts); each entry checked against its record
    if (await this.indexes.complete()) await walkIdle(this.redis, this.keys, beforeMs, after, take)
    else await this.#walkLegacyIdle(beforeMs, after, take)
    return out.slice(0, wanted)
  }

  /** The order listIdleDelegated lists in: by bucket once contracted, the legacy set's before (same test). */
  async idleOrder(): Promise<IdleOrder> {
    return (await this.indexes.complete()) ? BUCKETED_IDLE_ORDER : SINGLE_SET_IDLE_ORDER
  }

  /** The legacy idle set by score then id (as the previous release walks it), a batch at a time. */
  async #walkLegacyIdle(
    beforeMs: number,
    after: IdlePosition | undefined,
    take: (entries: IdlePosition[]) => Promise<boolean>,
  ): Promise<void> {
    for (let position = after; ; ) {
      const entries = await indexAfter(this.redis, this.keys.legacyIdle, position, LEGACY_IDLE_BATCH)
      const inRange = entries.filter((entry) => entry.score < beforeMs)
      if (inRange.length === 0 || !(await take(inRange)) || inRange.length < entries.length) return
      position = inRange[inRange.length - 1]
    }
  }

  async scanIds(cursor: string | undefined, count: number): Promise<{ ids: string[]; nextCursor?: string }> {
    const limit = clampLimit(count, 100, 1000)
    const after = cursor === undefined ? undefined : decodeCursor(cursor)
    const key = (await this.indexes.listingKeys({})) ?? this.keys.all
    const { items, next } = await walkIndex(this.redis, key, after, limit, (ids) =>
      Promise.all(
        ids.map(async (id) => ((await this.redis.exists(this.keys.reg(id))) === 1 ? id : undefined)),
      ),
    )
    return { ids: items, ...(next === undefined ? {} : { nextCursor: encodeCursor(next) }) }
  }
}
