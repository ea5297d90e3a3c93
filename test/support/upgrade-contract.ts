// The rolling upgrade from the previous release (e9e5226) on a Redis store: instances of both
// releases share the store — the old one simulated by its own Lua (previous-release.ts) — writing
// interleaved (creates for existing tenants, a new app, status changes both ways, delegated claims,
// revokes, idle touches, the take-over of an abandoned claim), then the operator's finish. Before
// it, the previous release's layout stays complete and authoritative (its marker "2", its claims
// hash and idle set); after it, listings, counts, tenant summaries, claims and idle entries are
// exactly what the records say, and the earlier keys are gone.
import { randomBytes, randomUUID } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { compareIdle } from '../../src/store/idle-order.js'
import { comparePositions } from '../../src/store/pagination.js'
import { claimSlot } from '../../src/store/redis/delegated-claims.js'
import { idleKeyOf } from '../../src/store/redis/idle-buckets.js'
import { redisKeys } from '../../src/store/redis/keys.js'
import { uniquenessField } from '../../src/store/registration-hash.js'
import { REGISTRATION_STATUSES, type Registration } from '../../src/store/types.js'
import { expectEveryListing, expectIdleOrder, recorded } from './listing-checks.js'
import { PreviousReleaseInstance } from './previous-release.js'
import {
  expectSummariesWalked,
  mustCreate,
  newKeyRing,
  type RawRedisHarness,
  sampleRegistration,
  sampleSecrets,
} from './store-contract.js'

type Input = Omit<Registration, 'version'>

const T0 = Date.parse('2026-02-01T00:00:00.000Z')
const iso = (ms: number) => new Date(ms).toISOString()
const FAR = iso(T0 + 365 * 86_400_000)

/** Counts by status as the records say. */
function countsOf(registrations: readonly Pick<Registration, 'status'>[]) {
  const counts = { active: 0, needs_consent: 0, revoked: 0 }
  for (const r of registrations) counts[r.status] += 1
  return counts
}

export function describeRollingUpgrade(
  name: string,
  open: (keyPrefix: string) => Promise<RawRedisHarness>,
): void {
  describe(`rolling upgrade from the previous release: ${name}`, () => {
    it('keeps both layouts right while old and new instances write, then finishes to what the records say', async () => {
      const keyPrefix = `up${randomBytes(6).toString('hex')}:`
      const harness = await open(keyPrefix)
      const { store, redis } = harness
      const keys = redisKeys(keyPrefix)
      const old = new PreviousReleaseInstance(redis, keyPrefix, newKeyRing('k1'))
      try {
        const tenants = [randomUUID(), randomUUID(), randomUUID()]
        const made: Input[] = []
        const oldCreate = async (input: Input) => {
          expect(await old.create(input, sampleSecrets())).toEqual({ created: true })
          made.push(input)
          return input
        }
        const newCreate = async (input: Input) => {
          await mustCreate(store, input)
          made.push(input)
          return input
        }
        // the store as the previous release wrote it
        for (let i = 0; i < 18; i++) {
          await oldCreate(
            sampleRegistration({
              kind: i % 3 === 0 ? 'admin' : 'delegated',
              tenantId: tenants[i % 3]!,
              app: i % 6 === 0 ? 'ms-defender-atp' : 'ms-graph-mail',
              createdAt: iso(T0 + i * 1000),
              consentedAt: iso(T0 + i * 1000),
            }),
          )
        }
        await old.setStatus(made[1]!, 'needs_consent')
        await old.setStatus(made[2]!, 'revoked')
        expect(await redis.get(keys.indexes)).toBe('2')

        // a new instance starts: the store stays expanded, nothing of the old layout moves
        expect(await store.registrations.ensureIndexes()).toEqual({
          rebuilt: false,
          registrations: 0,
          upgrade: 'expanded',
        })
        expect(await store.registrations.upgradeState()).toBe('expanded')
        expect(await redis.get(keys.indexes)).toBe('2')
        expect(await redis.hlen(keys.legacyDelegated)).toBe(11) // 12 delegated, one revoked

        // interleaved writes of both releases
        const newInOldTenant = await newCreate(
          sampleRegistration({ tenantId: tenants[0]!, createdAt: iso(T0 + 500), consentedAt: iso(T0 + 500) }),
        )
        const oldInOldTenant = await oldCreate(
          sampleRegistration({
            tenantId: tenants[1]!,
            createdAt: iso(T0 + 1500),
            consentedAt: iso(T0 + 1500),
          }),
        )
        const oldNewApp = await oldCreate(
          sampleRegistration({
            kind: 'admin',
            tenantId: tenants[2]!,
            app: 'ms-azure-log-analytics',
            createdAt: iso(T0 + 2500),
            consentedAt: iso(T0 + 2500),
          }),
        )
        // status changes both ways: old on new-created, new on old-created
        await old.setStatus(newInOldTenant, 'needs_consent')
        await store.registrations.update(made[4]!.id, 1, { status: 'needs_consent' })
        await store.registrations.update(made[5]!.id, 1, { status: 'revoked' })
        await old.setStatus(made[7]!, 'revoked')
        await old.setStatus(made[1]!, 'active')
        // a new instance moves what an old one moved last: the earlier indexes say where it is
        expect(await store.registrations.update(newInOldTenant.id, 2, { status: 'active' })).toMatchObject({
          status: 'active',
        })
        await old.setStatus(made[10]!, 'needs_consent')
        // uniqueness holds across releases: each sees the other's claims
        const dupOfOld = { ...made[8]!, id: randomUUID() }
        expect(await store.registrations.create(dupOfOld, sampleSecrets())).toEqual({
          created: false,
          existingId: made[8]!.id,
        })
        const dupOfNew = { ...newInOldTenant, id: randomUUID() }
        const refused = await old.create(dupOfNew, sampleSecrets())
        expect(refused).toMatchObject({ created: false })
        // a grant the old instance revoked is free for a new create, and the reverse
        const regrantOld = await newCreate({ ...made[7]!, id: randomUUID(), createdAt: iso(T0 + 3500) })
        const regrantNew = await oldCreate({ ...made[5]!, id: randomUUID(), createdAt: iso(T0 + 4500) })
        // an abandoned claim of the new release (its record never written) taken over by the old one
        const abandoned = await newCreate(
          sampleRegistration({ tenantId: tenants[1]!, createdAt: iso(T0 + 5500) }),
        )
        await redis.del(keys.reg(abandoned.id))
        made.pop()
        const takeOver = { ...abandoned, id: randomUUID(), createdAt: iso(T0 + 6500) }
        const held = await redis.hget(keys.legacyDelegated, uniquenessField(abandoned)!)
        expect(held).toMatch(new RegExp(`:${abandoned.id}$`))
        expect(await old.create(takeOver, sampleSecrets(), { expected: held!, stale: abandoned.id })).toEqual(
          {
            created: true,
          },
        )
        made.push(takeOver)
        // idle touches on both
        await old.touch(made[10]!.id, T0 + 90_000)
        await store.registrations.touch(made[11]!.id, { lastRefreshAt: iso(T0 + 80_000) })
        await store.registrations.touch(oldInOldTenant.id, { lastRefreshAt: iso(T0 + 70_000) })

        const ids = made.map((r) => r.id)
        const delegatedLive = (now: readonly Registration[]) =>
          now.filter((r) => r.kind === 'delegated' && r.status !== 'revoked').map((r) => r.id)
        const meta = async () =>
          (await Promise.all(ids.map((id) => store.registrations.getMeta(id)))).filter((r) => r !== null)

        // expanded: the new instance answers from the complete old layout
        let now = await meta()
        expect(now.map((r) => r.id).sort()).toEqual([...ids].sort())
        expect(await store.registrations.countByStatus()).toEqual(countsOf(now))
        await expectEveryListing(store, await recorded(store, ids), 7)
        const apps = ['ms-graph-mail', 'ms-defender-atp', 'ms-azure-log-analytics']
        await expectSummariesWalked(store, tenants, apps)
        const idleBefore = await store.registrations.listIdleDelegated(FAR, 1000)
        expect(idleBefore.map((p) => p.id).sort()).toEqual(delegatedLive(now).sort())
        // in the previous release's order (by last refresh, then id), which the store hands out
        expect(await expectIdleOrder(store, FAR)).toEqual([...idleBefore].sort(comparePositions))
        // the old layout is what the previous release reads: complete and right
        expect((await redis.zrange(keys.all, '0', '-1')).sort()).toEqual([...ids].sort())
        for (const status of ['needs_consent', 'revoked'] as const) {
          expect((await redis.zrange(keys.status(status), '0', '-1')).sort(), status).toEqual(
            now
              .filter((r) => r.status === status)
              .map((r) => r.id)
              .sort(),
          )
        }
        for (const r of now.filter((r) => r.kind === 'delegated' && r.status !== 'revoked')) {
          expect(await redis.hget(keys.legacyDelegated, uniquenessField(r)!)).toMatch(new RegExp(`:${r.id}$`))
        }
        expect((await redis.zrange(keys.legacyIdle, '0', '-1')).sort()).toEqual(delegatedLive(now).sort())
        expect(await redis.get(keys.indexes)).toBe('2')

        // finish (every instance runs this release now), with a status change meanwhile
        const [finish] = await Promise.all([
          store.registrations.finishUpgrade(),
          store.registrations.update(made[13]!.id, 1, { status: 'needs_consent' }),
        ])
        expect(finish.registrations).toBe(ids.length)
        expect(finish.pruned).toBeGreaterThanOrEqual(2) // the abandoned id's (app, status) and tenant entries
        expect(await store.registrations.upgradeState()).toBe('contracted')
        expect(await redis.get(keys.indexes)).toBe('3')
        expect(
          await redis.exists(
            keys.all,
            keys.legacyDelegated,
            keys.legacyIdle,
            ...keys.statuses,
            ...tenants.map((t) => keys.tenant(t)),
            ...apps.map((a) => keys.app(a)),
          ),
        ).toBe(0)

        now = await meta()
        expect(await store.registrations.countByStatus()).toEqual(countsOf(now))
        await expectEveryListing(store, now, 4)
        await expectSummariesWalked(store, tenants, apps)
        for (const app of apps) {
          for (const status of REGISTRATION_STATUSES) {
            expect(
              (await redis.zrange(keys.appStatus(status, app), '0', '-1')).sort(),
              `${app} ${status}`,
            ).toEqual(
              now
                .filter((r) => r.app === app && r.status === status)
                .map((r) => r.id)
                .sort(),
            )
            for (const tenantId of tenants) {
              const indexed = (await redis.zrange(keys.tenantStatus(status, app, tenantId), '0', '-1')).sort()
              expect(indexed, `${app} ${status} ${tenantId}`).toEqual(
                now
                  .filter((r) => r.app === app && r.status === status && r.tenantId === tenantId)
                  .map((r) => r.id)
                  .sort(),
              )
            }
          }
        }
        expect((await redis.smembers(keys.apps)).sort()).toEqual([...apps].sort())
        // claims in their buckets, one per live delegated grant, and they still hold
        for (const r of now.filter((r) => r.kind === 'delegated' && r.status !== 'revoked')) {
          const slot = claimSlot(keys, uniquenessField(r)!)
          expect(await redis.hget(slot.key, slot.field)).toMatch(new RegExp(`:${r.id}$`))
        }
        expect(
          await store.registrations.create({ ...regrantOld, id: randomUUID() }, sampleSecrets()),
        ).toEqual({
          created: false,
          existingId: regrantOld.id,
        })
        expect(
          await store.registrations.create({ ...regrantNew, id: randomUUID() }, sampleSecrets()),
        ).toEqual({
          created: false,
          existingId: regrantNew.id,
        })
        // idle entries in their buckets, with the scores the touches left
        const idleAfter = await store.registrations.listIdleDelegated(FAR, 1000)
        expect(idleAfter.map((p) => p.id).sort()).toEqual(delegatedLive(now).sort())
        // in this release's order (by bucket), which the store now hands out
        expect(await expectIdleOrder(store, FAR)).toEqual([...idleAfter].sort(compareIdle))
        expect(await redis.zscore(idleKeyOf(keys, made[10]!.id), made[10]!.id)).toBe(String(T0 + 90_000))
        expect(await redis.zscore(idleKeyOf(keys, made[11]!.id), made[11]!.id)).toBe(String(T0 + 80_000))
        expect(await redis.zscore(idleKeyOf(keys, oldInOldTenant.id), oldInOldTenant.id)).toBe(
          String(T0 + 70_000),
        )
        expect(oldNewApp.app).toBe('ms-azure-log-analytics')

        // idempotent
        expect(await store.registrations.finishUpgrade()).toEqual({ registrations: 0, pruned: 0 })
        expect(await store.registrations.ensureIndexes()).toEqual({
          rebuilt: false,
          registrations: 0,
          upgrade: 'contracted',
        })
      } finally {
        await harness.close()
      }
    })

    it('is born contracted on a fresh store', async () => {
      const harness = await open(`up${randomBytes(6).toString('hex')}:`)
      try {
        const { store } = harness
        expect(await store.registrations.ensureIndexes()).toEqual({
          rebuilt: false,
          registrations: 0,
          upgrade: 'contracted',
        })
        expect(await store.registrations.upgradeState()).toBe('contracted')
        await mustCreate(store, sampleRegistration())
        expect(await store.registrations.finishUpgrade()).toEqual({ registrations: 0, pruned: 0 })
      } finally {
        await harness.close()
      }
    })
  })
}
