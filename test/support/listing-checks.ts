// Checks shared by the store contract's listing, index-rebuild and upgrade tests: every combination
// of listing filters, read a page at a time, must give exactly the registrations the records say, in
// (createdAt, id) order; the idle listing follows the order the store hands out; and the `{idx}`
// indexes rewritten as an earlier release left them.
import { randomUUID } from 'node:crypto'
import { expect } from 'vitest'
import { compareIds } from '../../src/store/pagination.js'
import { type RedisKeys, redisKeys } from '../../src/store/redis/keys.js'
import type { RedisClient } from '../../src/store/redis-connection.js'
import {
  type IdlePosition,
  REGISTRATION_STATUSES,
  type Registration,
  type Store,
} from '../../src/store/types.js'

type Listed = Pick<Registration, 'id' | 'tenantId' | 'app' | 'status' | 'createdAt'>

/** Every id of a listing, read `limit` at a time through its cursors. */
export async function listedIds(
  store: Store,
  query: { tenantId?: string; app?: string; status?: Registration['status'] },
  limit: number,
): Promise<string[]> {
  return (await walkListing(store, query, limit)).ids
}

/** listedIds, and how many pages it took. */
export async function walkListing(
  store: Store,
  query: { tenantId?: string; app?: string; status?: Registration['status'] },
  limit: number,
): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const page = await store.registrations.list({
      ...query,
      limit,
      ...(cursor === undefined ? {} : { cursor }),
    })
    expect(page.items.length).toBeLessThanOrEqual(limit)
    ids.push(...page.items.map((item) => item.id))
    cursor = page.nextCursor
    if (++pages > 1000) throw new Error('pagination does not terminate')
  } while (cursor !== undefined)
  return { ids, pages }
}

/** The registrations as their records say now (ids the store no longer has are left out). */
export async function recorded(store: Store, ids: readonly string[]): Promise<Listed[]> {
  const metas = await Promise.all(ids.map((id) => store.registrations.getMeta(id)))
  return metas.filter((meta) => meta !== null)
}

/**
 * Every combination of tenant, app and status filters (each absent, each value present, and one
 * value nobody has), read whole and `pageSize` at a time, lists exactly the matching registrations
 * of `expected` in (createdAt, id) order; counts by status agree.
 */
export async function expectEveryListing(
  store: Store,
  expected: readonly Listed[],
  pageSize = 3,
): Promise<void> {
  const order = [...expected].sort(
    (a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt) || compareIds(a.id, b.id),
  )
  const tenants = [undefined, ...new Set(order.map((r) => r.tenantId)), 'no-such-tenant']
  const apps = [undefined, ...new Set(order.map((r) => r.app)), 'no-such-app']
  for (const tenantId of tenants) {
    for (const app of apps) {
      for (const status of [undefined, ...REGISTRATION_STATUSES]) {
        const query = {
          ...(tenantId === undefined ? {} : { tenantId }),
          ...(app === undefined ? {} : { app }),
          ...(status === undefined ? {} : { status }),
        }
        const want = order
          .filter(
            (r) =>
              (tenantId === undefined || r.tenantId === tenantId) &&
              (app === undefined || r.app === app) &&
              (status === undefined || r.status === status),
          )
          .map((r) => r.id)
        const label = JSON.stringify(query)
        expect(await listedIds(store, query, 500), label).toEqual(want)
        expect(await listedIds(store, query, pageSize), `${label} by ${pageSize}`).toEqual(want)
      }
    }
  }
  const counts = { active: 0, needs_consent: 0, revoked: 0 }
  for (const r of expected) counts[r.status] += 1
  expect(await store.registrations.countByStatus()).toEqual(counts)
}

/**
 * The store's idle order (`idleOrder`) is the one it lists in as its layout is now: the idle
 * listing (before `before`, at least two entries) ascends in it, and from any cursor — each listed
 * position, and positions of ids it doesn't hold (a saved cursor whose registration has moved) —
 * lists exactly the positions the order puts after the cursor (what the keep-alive relies on to
 * find where a ring walk ends). Returns the listing.
 */
export async function expectIdleOrder(store: Store, before: string): Promise<IdlePosition[]> {
  const order = await store.registrations.idleOrder()
  const listed = await store.registrations.listIdleDelegated(before, 1000)
  expect(listed.length).toBeGreaterThan(1)
  for (const [i, position] of listed.entries()) {
    expect(order.compare(position, position)).toBe(0)
    if (i === 0) continue
    expect(order.compare(listed[i - 1]!, position), `${i - 1} before ${i}`).toBeLessThan(0)
    expect(order.compare(position, listed[i - 1]!), `${i} after ${i - 1}`).toBeGreaterThan(0)
  }
  const elsewhere = [listed[0]!, listed[listed.length >> 1]!, listed[listed.length - 1]!].map(
    ({ score }) => ({ id: randomUUID(), score }),
  )
  for (const cursor of [...listed, ...elsewhere]) {
    expect(await store.registrations.listIdleDelegated(before, 1000, cursor), JSON.stringify(cursor)).toEqual(
      listed.filter((position) => order.compare(position, cursor) > 0),
    )
  }
  return listed
}

/**
 * Rewrites the `{idx}` listing indexes of `registrations` as an earlier release left them: `all`,
 * per tenant, per app and the needs_consent / revoked indexes, with the marker "2" (the release
 * before this one); with `marker: undefined`, as the release before that (no marker, no sorted
 * tenant ids, the tenants SET); with "3", as the previous release writes them into a store this
 * release has already indexed (a rolling upgrade).
 */
export async function toEarlierLayout(
  redis: RedisClient,
  keyPrefix: string,
  registrations: readonly Listed[],
  marker: '2' | '3' | undefined,
): Promise<RedisKeys> {
  const keys = redisKeys(keyPrefix)
  const apps = [...new Set([...(await redis.smembers(keys.apps)), ...registrations.map((r) => r.app)])]
  const tenants = [...new Set(registrations.map((r) => r.tenantId))]
  const current = apps.flatMap((app) =>
    REGISTRATION_STATUSES.flatMap((status) => [
      keys.appStatus(status, app),
      ...tenants.map((tenantId) => keys.tenantStatus(status, app, tenantId)),
    ]),
  )
  if (marker === '3') {
    // only these registrations' entries: the rest of the store stays indexed
    for (const r of registrations) for (const key of current) await redis.zrem(key, r.id)
  } else {
    await redis.del(keys.apps, keys.indexes, ...current)
  }
  for (const r of registrations) {
    const score = Date.parse(r.createdAt)
    await redis.zadd(keys.all, score, r.id)
    await redis.zadd(keys.tenant(r.tenantId), score, r.id)
    await redis.zadd(keys.app(r.app), score, r.id)
    if (r.status !== 'active') await redis.zadd(keys.status(r.status), score, r.id)
  }
  if (marker !== undefined) {
    await redis.set(keys.indexes, marker)
  } else {
    await redis.del(keys.tenantIds, ...apps.map((app) => keys.appTenants(app)))
    await redis.sadd(keys.legacyTenants, ...tenants)
  }
  return keys
}
