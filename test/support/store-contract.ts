// The Store contract as one reusable suite: every implementation and topology (memory, Redis
// single server, Cluster, Sentinel …) runs `describeStoreContract` with its own harness factory.
//
// Time: stores get a fake clock; Redis expiries run on the server's clock. `elapse(ms)` advances
// the fake clock AND sleeps, so TTL tests hold for both. A TTL a test waits out is short; calls that
// must all land inside one window or lease get a long one (≥ 1 s of slack), since Redis's clock runs
// on while a busy machine delays the test's next call.
import { randomBytes, randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { KeyRing, type MasterKey } from '../../src/crypto/envelope.js'
import { summarizeTenants } from '../../src/services/admin-queries.js'
import { DeviceFlowRecords, pollLeaseName } from '../../src/services/device-code-records.js'
import { compareIdle, IDLE_BUCKETS, idleBucketOf } from '../../src/store/idle-order.js'
import { listAllRegistrations } from '../../src/store/list-all.js'
import { redisKeys } from '../../src/store/redis/keys.js'
import type { RedisClient } from '../../src/store/redis-connection.js'
import type { Registration, RegistrationSecrets, Store, TenantCounts } from '../../src/store/types.js'
import {
  expectEveryListing,
  expectIdleOrder,
  listedIds,
  recorded,
  toEarlierLayout,
  walkListing,
} from './listing-checks.js'
import { REFUSED_EXAMPLES } from './one-line-text.js'

export interface StoreHarnessOptions {
  keyRing: KeyRing
  clock: () => number
  auditRetentionMs?: number
}

export interface StoreHarness {
  store: Store
  /** Another store over the same data (another broker instance); memory: the same store. */
  peer(): Promise<Store>
  /** Closes every store the harness made. */
  close(): Promise<void>
}

export type StoreHarnessFactory = (options: StoreHarnessOptions) => Promise<StoreHarness>

export function masterKey(id = `k${randomBytes(3).toString('hex')}`): MasterKey {
  return { id, key: randomBytes(32) }
}

export function newKeyRing(id?: string): KeyRing {
  return new KeyRing([masterKey(id)])
}

/** A key ring whose contents can be replaced under a running store (key rotation in one process). */
export function swappableKeyRing(initial: KeyRing): { ring: KeyRing; swap(next: KeyRing): void } {
  let inner = initial
  const ring = new Proxy(initial, {
    get(_target, property) {
      const value: unknown = Reflect.get(inner, property, inner)
      return typeof value === 'function' ? value.bind(inner) : value
    },
  })
  return { ring, swap: (next) => (inner = next) }
}

export interface TestClock {
  now: () => number
  advance(ms: number): void
}

export function testClock(start = Date.now()): TestClock {
  let now = start
  return { now: () => now, advance: (ms) => (now += ms) }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const T0 = Date.parse('2026-01-01T00:00:00.000Z')
const iso = (ms: number) => new Date(ms).toISOString()

/** A registration input; delegated unless `kind: 'admin'` is given. */
export function sampleRegistration(
  overrides: Partial<Omit<Registration, 'version'>> = {},
): Omit<Registration, 'version'> {
  const kind = overrides.kind ?? 'delegated'
  return {
    id: randomUUID(),
    app: 'ms-graph-mail',
    cloud: 'global',
    tenantId: randomUUID(),
    kind,
    ...(kind === 'delegated' ? { userOid: randomUUID(), userName: 'alice@contoso.example' } : {}),
    status: 'active',
    createdAt: iso(T0),
    updatedAt: iso(T0),
    consentedAt: iso(T0),
    ...overrides,
  }
}

export function sampleSecrets(withRefreshToken = true): RegistrationSecrets {
  return {
    key: randomBytes(32).toString('base64'),
    ...(withRefreshToken ? { refreshToken: `rt-${randomBytes(24).toString('base64url')}` } : {}),
  }
}

export async function mustCreate(
  store: Store,
  registration: Omit<Registration, 'version'>,
  secrets = sampleSecrets(),
) {
  const result = await store.registrations.create(registration, secrets)
  if (!result.created)
    throw new Error(`expected ${registration.id} to be created, got ${JSON.stringify(result)}`)
  return result.registration
}

async function allPages(
  store: Store,
  query: { tenantId?: string; app?: string; status?: Registration['status'] },
  limit: number,
) {
  return walkListing(store, query, limit)
}

/**
 * What a tenant's summary must say, counted the way the tenants page did before summaries: by
 * walking every registration of the tenant (of `app`).
 */
async function walkedSummary(store: Store, tenantId: string, app?: string): Promise<TenantCounts> {
  const out: TenantCounts = {
    tenantId,
    apps: [],
    clouds: [],
    registrations: { active: 0, needs_consent: 0, revoked: 0, total: 0 },
  }
  const apps = new Set<string>()
  const clouds = new Set<string>()
  let last: number | undefined
  for await (const item of listAllRegistrations(store.registrations, { tenantId, ...(app ? { app } : {}) })) {
    apps.add(item.app)
    clouds.add(item.cloud)
    out.registrations[item.status] += 1
    out.registrations.total += 1
    last = Math.max(last ?? 0, Date.parse(item.consentedAt))
  }
  out.apps = [...apps].sort()
  out.clouds = [...clouds].sort()
  if (last !== undefined) out.lastConsentAt = iso(last)
  return out
}

/** Every tenant's summary (with and without each app filter) equals the walk's figures. */
export async function expectSummariesWalked(
  store: Store,
  tenantIds: readonly string[],
  apps: readonly string[],
) {
  for (const app of [undefined, ...apps]) {
    const expected = await Promise.all(tenantIds.map((tenantId) => walkedSummary(store, tenantId, app)))
    expect(await store.registrations.summarizeTenants(tenantIds, app), app ?? 'all apps').toEqual(expected)
  }
}

export function describeStoreContract(name: string, makeHarness: StoreHarnessFactory): void {
  describe(`Store contract: ${name}`, () => {
    let harness: StoreHarness
    let store: Store
    let clock: TestClock
    let rotation: ReturnType<typeof swappableKeyRing>
    const extra: StoreHarness[] = []

    const elapse = async (ms: number) => {
      clock.advance(ms)
      await sleep(ms)
    }

    beforeEach(async () => {
      clock = testClock()
      rotation = swappableKeyRing(newKeyRing('k1'))
      harness = await makeHarness({ keyRing: rotation.ring, clock: clock.now })
      store = harness.store
    })

    afterEach(async () => {
      await harness.close()
      await Promise.all(extra.splice(0).map((h) => h.close()))
    })

    describe('registrations', () => {
      it('creates, gets and gets metadata without secrets', async () => {
        const input = sampleRegistration({ kind: 'admin', statusDetail: { code: 'x', at: iso(T0) } })
        const secrets = sampleSecrets(false)
        const result = await store.registrations.create(input, secrets)
        expect(result).toEqual({ created: true, registration: { ...input, version: 1 } })

        const stored = await store.registrations.get(input.id)
        expect(stored).toEqual({ registration: { ...input, version: 1 }, usage: {}, secrets })

        const meta = await store.registrations.getMeta(input.id)
        expect(meta).toEqual({ ...input, version: 1 })
        expect(meta).not.toHaveProperty('key')
        expect(meta).not.toHaveProperty('refreshToken')
        expect(JSON.stringify(meta)).not.toContain(secrets.key)

        expect(await store.registrations.get('missing')).toBeNull()
        expect(await store.registrations.getMeta('missing')).toBeNull()
      })

      it('keeps delegated registrations unique per app, cloud, tenant and user until revoked', async () => {
        const first = sampleRegistration()
        await mustCreate(store, first)
        const twin = sampleRegistration({
          app: first.app,
          cloud: first.cloud,
          tenantId: first.tenantId.toUpperCase(),
          userOid: first.userOid!.toUpperCase(),
        })
        expect(await store.registrations.create(twin, sampleSecrets())).toEqual({
          created: false,
          existingId: first.id,
        })

        // another user, another cloud, another app: all fine
        await mustCreate(store, sampleRegistration({ tenantId: first.tenantId }))
        await mustCreate(store, { ...sampleRegistration({ ...twin, id: randomUUID() }), cloud: 'usgov' })
        await mustCreate(store, sampleRegistration({ ...twin, id: randomUUID(), app: 'ms-graph-user' }))
        // admin registrations are never unique
        await mustCreate(store, sampleRegistration({ kind: 'admin', tenantId: first.tenantId }))
        await mustCreate(store, sampleRegistration({ kind: 'admin', tenantId: first.tenantId }))

        // a needs_consent registration still holds the slot
        const current = await store.registrations.update(first.id, 1, { status: 'needs_consent' })
        expect(current?.status).toBe('needs_consent')
        expect((await store.registrations.create(twin, sampleSecrets())).created).toBe(false)

        const revoked = await store.registrations.update(first.id, 2, {
          status: 'revoked',
          statusDetail: { code: 'operator_revoked', at: iso(T0), by: 'op' },
        })
        expect(revoked?.status).toBe('revoked')
        expect(await store.registrations.create(twin, sampleSecrets())).toMatchObject({ created: true })
        // the new one now holds the slot
        const third = sampleRegistration({ ...twin, id: randomUUID() })
        expect(await store.registrations.create(third, sampleSecrets())).toEqual({
          created: false,
          existingId: twin.id,
        })
      })

      it('lets exactly one of many concurrent creates for the same user win', async () => {
        const base = sampleRegistration()
        const peer = await harness.peer()
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, i) =>
            (i % 2 === 0 ? store : peer).registrations.create({ ...base, id: randomUUID() }, sampleSecrets()),
          ),
        )
        const winners = results.filter((r) => r.created)
        expect(winners).toHaveLength(1)
        const winnerId = winners[0]!.created ? winners[0]!.registration.id : ''
        for (const loser of results.filter((r) => !r.created))
          expect(loser).toEqual({ created: false, existingId: winnerId })
        const page = await store.registrations.list({ tenantId: base.tenantId })
        expect(page.items.map((item) => item.id)).toEqual([winnerId])
      })

      it('updates with compare-and-set on the version', async () => {
        const input = sampleRegistration()
        await mustCreate(store, input)
        clock.advance(1000)
        expect(await store.registrations.update(input.id, 2, { status: 'needs_consent' })).toBeNull()
        expect(await store.registrations.update('missing', 1, { status: 'needs_consent' })).toBeNull()

        const detail = { code: 'AADSTS50173', message: 'password changed', at: iso(clock.now()) }
        const updated = await store.registrations.update(input.id, 1, {
          status: 'needs_consent',
          statusDetail: detail,
          userName: 'alice2@contoso.example',
        })
        expect(updated).toEqual({
          ...input,
          status: 'needs_consent',
          statusDetail: detail,
          userName: 'alice2@contoso.example',
          updatedAt: iso(clock.now()),
          version: 2,
        })
        // a stale writer loses
        expect(await store.registrations.update(input.id, 1, { status: 'active' })).toBeNull()

        const cleared = await store.registrations.update(input.id, 2, {
          status: 'active',
          statusDetail: null,
          consentedAt: iso(clock.now()),
        })
        expect(cleared?.version).toBe(3)
        expect(cleared?.statusDetail).toBeUndefined()
        expect(cleared?.consentedAt).toBe(iso(clock.now()))
        expect((await store.registrations.getMeta(input.id))?.statusDetail).toBeUndefined()
      })

      it('lets exactly one of many concurrent updates of one version win, across instances', async () => {
        const input = sampleRegistration()
        await mustCreate(store, input)
        const peer = await harness.peer()
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? store : peer).registrations.update(
              input.id,
              1,
              { userName: `writer-${i}` },
              {
                refreshToken: `rt-writer-${i}`,
              },
            ),
          ),
        )
        const winners = results.filter((r) => r !== null)
        expect(winners).toHaveLength(1)
        const stored = await store.registrations.get(input.id)
        expect(stored?.registration.version).toBe(2)
        const winnerIndex = results.findIndex((r) => r !== null)
        expect(stored?.registration.userName).toBe(`writer-${winnerIndex}`)
        expect(stored?.secrets.refreshToken).toBe(`rt-writer-${winnerIndex}`)
      })

      it('keeps revocation final', async () => {
        const input = sampleRegistration()
        await mustCreate(store, input)
        await store.registrations.update(input.id, 1, { status: 'revoked' }, { refreshToken: null })
        await expect(store.registrations.update(input.id, 2, { status: 'active' })).rejects.toMatchObject({
          code: 'conflict',
        })
        // other changes to a revoked registration are fine
        const annotated = await store.registrations.update(input.id, 2, {
          statusDetail: { code: 'operator_revoked', at: iso(T0), reason: 'offboarding' },
        })
        expect(annotated).toMatchObject({ status: 'revoked', version: 3 })
      })

      it('patches secrets: new key, new refresh token, deleted refresh token', async () => {
        const input = sampleRegistration()
        const secrets = sampleSecrets()
        await mustCreate(store, input, secrets)

        await store.registrations.update(input.id, 1, {}, { refreshToken: 'rt-second' })
        let stored = await store.registrations.get(input.id)
        expect(stored?.secrets).toEqual({ key: secrets.key, refreshToken: 'rt-second' })
        expect(stored?.registration.version).toBe(2)

        const newKey = randomBytes(32).toString('base64')
        await store.registrations.update(input.id, 2, {}, { key: newKey })
        stored = await store.registrations.get(input.id)
        expect(stored?.secrets).toEqual({ key: newKey, refreshToken: 'rt-second' })

        await store.registrations.update(input.id, 3, { status: 'revoked' }, { refreshToken: null })
        stored = await store.registrations.get(input.id)
        expect(stored?.secrets).toEqual({ key: newKey })
        expect(stored?.secrets).not.toHaveProperty('refreshToken')
      })

      it('keeps an own app’s client id and sealed client secret, replaced by a secrets patch', async () => {
        const ownClientId = randomUUID()
        const input = sampleRegistration({ kind: 'admin', ownClientId })
        const secrets = { ...sampleSecrets(false), clientSecret: 'own-secret-first' }
        await mustCreate(store, input, secrets)
        let stored = await store.registrations.get(input.id)
        expect(stored?.registration.ownClientId).toBe(ownClientId)
        expect(stored?.secrets).toEqual(secrets)
        const meta = await store.registrations.getMeta(input.id)
        expect(meta?.ownClientId).toBe(ownClientId)
        expect(meta).not.toHaveProperty('clientSecret')
        await store.registrations.update(input.id, 1, {}, { clientSecret: 'own-secret-second' })
        stored = await store.registrations.get(input.id)
        expect(stored?.secrets.clientSecret).toBe('own-secret-second')
        // A client secret belongs to an own app: refused without its client id.
        await expect(
          store.registrations.create(sampleRegistration({ kind: 'admin' }), {
            ...sampleSecrets(false),
            clientSecret: 'orphan',
          }),
        ).rejects.toThrow(TypeError)
      })

      it('admits a request once per replay marker and counts the per-registration window', async () => {
        const input = sampleRegistration({ kind: 'admin' })
        await mustCreate(store, input, sampleSecrets(false))
        const other = sampleRegistration({ kind: 'admin' })
        await mustCreate(store, other, sampleSecrets(false))
        const WINDOW_MS = 60_000
        const admit = (
          id: string,
          replayMarker: string,
          version = 1,
          replayTtlMs = 60_000,
          windowMs = WINDOW_MS,
        ) => store.registrations.admit(id, { version, replayMarker, replayTtlMs, limit: 3, windowMs })

        const first = await admit(input.id, 'm1')
        expect(first).toEqual({
          current: true,
          fresh: true,
          rate: { allowed: true, remaining: 2, retryAfterMs: 0 },
        })
        // a replay is refused and still counted
        expect(await admit(input.id, 'm1')).toEqual({
          current: true,
          fresh: false,
          rate: { allowed: true, remaining: 1, retryAfterMs: 0 },
        })
        expect(await admit(input.id, 'm2')).toMatchObject({
          current: true,
          fresh: true,
          rate: { remaining: 0 },
        })
        const over = await admit(input.id, 'm3')
        expect(over).toMatchObject({ current: true, fresh: true, rate: { allowed: false, remaining: 0 } })
        if (!over.current) throw new Error('unreachable')
        expect(over.rate.retryAfterMs).toBeGreaterThan(0)
        expect(over.rate.retryAfterMs).toBeLessThanOrEqual(WINDOW_MS)

        // markers and windows are per registration
        expect(await admit(other.id, 'm1')).toEqual({
          current: true,
          fresh: true,
          rate: { allowed: true, remaining: 2, retryAfterMs: 0 },
        })

        // the window restarts (one admit counted, then none: 2 remaining, not 1); markers outlive
        // it (their own TTL)
        const brief = sampleRegistration({ kind: 'admin' })
        await mustCreate(store, brief, sampleSecrets(false))
        expect(await admit(brief.id, 'm1', 1, 60_000, 300)).toMatchObject({
          fresh: true,
          rate: { remaining: 2 },
        })
        await elapse(350)
        expect(await admit(brief.id, 'm1', 1, 60_000, 300)).toEqual({
          current: true,
          fresh: false,
          rate: { allowed: true, remaining: 2, retryAfterMs: 0 },
        })
        expect(await admit(brief.id, 'short', 1, 100, 300)).toMatchObject({ fresh: true })
        await elapse(200)
        expect(await admit(brief.id, 'short', 1, 100, 300)).toMatchObject({ fresh: true })
      })

      it('admits only an active registration at the given version, and then changes nothing', async () => {
        const input = sampleRegistration({ kind: 'admin' })
        await mustCreate(store, input, sampleSecrets(false))
        const admit = (id: string, replayMarker: string, version: number) =>
          store.registrations.admit(id, {
            version,
            replayMarker,
            replayTtlMs: 60_000,
            limit: 1,
            windowMs: 60_000,
          })

        expect(await admit('missing', 'm', 1)).toEqual({ current: false })
        expect(await admit(input.id, 'm', 2)).toEqual({ current: false })
        // any versioned update (a new Key, a status change) makes the old version stale
        await store.registrations.update(input.id, 1, {}, { key: randomBytes(32).toString('base64') })
        expect(await admit(input.id, 'm', 1)).toEqual({ current: false })
        await store.registrations.update(input.id, 2, {
          status: 'needs_consent',
          statusDetail: { code: 'invalid_grant', at: iso(T0) },
        })
        expect(await admit(input.id, 'm', 3)).toEqual({ current: false })
        await store.registrations.update(input.id, 3, { status: 'active', statusDetail: null })
        // nothing was claimed or counted by the refused calls: the marker is new, the window fresh
        expect(await admit(input.id, 'm', 4)).toEqual({
          current: true,
          fresh: true,
          rate: { allowed: true, remaining: 0, retryAfterMs: 0 },
        })
        await store.registrations.update(input.id, 4, { status: 'revoked' })
        expect(await admit(input.id, 'n', 5)).toEqual({ current: false })
        await expect(admit(input.id, '', 4)).rejects.toThrow(/marker/)
        await expect(admit(input.id, 'm', 0)).rejects.toThrow(/version/)
      })

      it("counts admit's client limit first, on the rate limiter's own counter, and stops there when it is over", async () => {
        const input = sampleRegistration({ kind: 'admin' })
        await mustCreate(store, input, sampleSecrets(false))
        const client = { key: 'ip:203.0.113.9', limit: 2, windowMs: 60_000 }
        const admit = (
          replayMarker: string,
          options: { version?: number; client?: typeof client | undefined } = { client },
        ) =>
          store.registrations.admit(input.id, {
            version: options.version ?? 1,
            replayMarker,
            replayTtlMs: 60_000,
            limit: 10,
            windowMs: 60_000,
            ...(options.client === undefined ? {} : { client: options.client }),
          })

        // the same counter as rateLimiter.hit on that key, shared between the two calls
        expect((await store.rateLimiter.hit(client.key, client.limit, client.windowMs)).remaining).toBe(1)
        expect(await admit('m1')).toEqual({
          current: true,
          fresh: true,
          rate: { allowed: true, remaining: 9, retryAfterMs: 0 },
          client: { allowed: true, remaining: 0, retryAfterMs: 0 },
        })
        // over the client's limit: refused before the registration is looked at
        const over = await admit('m2')
        expect(over).toMatchObject({ current: false, client: { allowed: false, remaining: 0 } })
        expect(over.client?.retryAfterMs).toBeGreaterThan(0)
        expect(over.client?.retryAfterMs).toBeLessThanOrEqual(60_000)
        // …so the marker was not claimed and the registration's window not counted
        expect(await admit('m2', {})).toEqual({
          current: true,
          fresh: true,
          rate: { allowed: true, remaining: 8, retryAfterMs: 0 },
        })
        // a stale version still counts the client's hit
        const other = { ...client, key: 'ip:203.0.113.10' }
        expect(await admit('m3', { version: 2, client: other })).toEqual({
          current: false,
          client: { allowed: true, remaining: 1, retryAfterMs: 0 },
        })
        expect((await store.rateLimiter.hit(other.key, other.limit, other.windowMs)).remaining).toBe(0)
        await expect(admit('m4', { client: { ...client, key: '' } })).rejects.toThrow(/rate-limit key/)
        await expect(admit('m5', { client: { ...client, limit: 0.5 } })).rejects.toThrow(/client.limit/)
      })

      it('admits one of many concurrent uses of a marker and counts every hit, across instances', async () => {
        const input = sampleRegistration({ kind: 'admin' })
        await mustCreate(store, input, sampleSecrets(false))
        const peer = await harness.peer()
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? store : peer).registrations.admit(input.id, {
              version: 1,
              replayMarker: i < 16 ? 'same' : `own-${i}`,
              replayTtlMs: 60_000,
              limit: 15,
              windowMs: 60_000,
            }),
          ),
        )
        const admitted = results.map((r) => {
          if (!r.current) throw new Error('expected the registration to be current')
          return r
        })
        expect(admitted.slice(0, 16).filter((r) => r.fresh)).toHaveLength(1)
        expect(admitted.slice(16).every((r) => r.fresh)).toBe(true)
        expect(admitted.filter((r) => r.rate.allowed)).toHaveLength(15)
        expect(admitted.map((r) => r.rate.remaining).sort((a, b) => a - b)).toEqual([
          ...Array(6).fill(0),
          ...Array.from({ length: 14 }, (_, i) => i + 1),
        ])
      })

      it('records usage without a version check or bump', async () => {
        const input = sampleRegistration()
        await mustCreate(store, input)
        const usage = {
          lastIssuedAt: iso(T0 + 5000),
          lastClient: 'O365 Mail/1.2.3',
          lastRefreshAt: iso(T0 + 4000),
        }
        await store.registrations.touch(input.id, usage)
        await store.registrations.touch(input.id, { lastClient: 'O365 Mail/1.2.4' })
        await store.registrations.touch('missing', usage)

        const stored = await store.registrations.get(input.id)
        expect(stored?.usage).toEqual({ ...usage, lastClient: 'O365 Mail/1.2.4' })
        expect(stored?.registration.version).toBe(1)
        expect(await store.registrations.getMeta(input.id)).toEqual({
          ...input,
          ...usage,
          lastClient: 'O365 Mail/1.2.4',
          version: 1,
        })
        // still version 1: a token refresh never conflicts with usage writes
        expect(await store.registrations.update(input.id, 1, { userName: 'x' })).not.toBeNull()
        expect(await store.registrations.getMeta('missing')).toBeNull()
      })

      it('lists with tenant, app and status filters, oldest first', async () => {
        const tenantA = randomUUID()
        const tenantB = randomUUID()
        const made: Array<Omit<Registration, 'version'>> = []
        for (let i = 0; i < 12; i++) {
          const registration = sampleRegistration({
            kind: i % 3 === 0 ? 'admin' : 'delegated',
            tenantId: i % 2 === 0 ? tenantA : tenantB,
            app: i % 4 < 2 ? 'ms-graph-mail' : 'ms-defender-atp',
            createdAt: iso(T0 + i * 1000),
          })
          made.push(registration)
          await mustCreate(store, registration)
        }
        await store.registrations.update(made[4]!.id, 1, { status: 'needs_consent' })
        await store.registrations.update(made[7]!.id, 1, { status: 'revoked' })

        const expectIds = async (
          query: Parameters<typeof allPages>[1],
          predicate: (r: (typeof made)[number], i: number) => boolean,
        ) => {
          const expected = made.filter(predicate).map((r) => r.id)
          expect((await allPages(store, query, 500)).ids).toEqual(expected)
          expect((await allPages(store, query, 2)).ids).toEqual(expected)
        }
        await expectIds({}, () => true)
        await expectIds({ tenantId: tenantA }, (r) => r.tenantId === tenantA)
        await expectIds({ app: 'ms-defender-atp' }, (r) => r.app === 'ms-defender-atp')
        await expectIds(
          { tenantId: tenantB, app: 'ms-graph-mail' },
          (r) => r.tenantId === tenantB && r.app === 'ms-graph-mail',
        )
        await expectIds({ status: 'needs_consent' }, (_r, i) => i === 4)
        await expectIds({ status: 'active' }, (_r, i) => i !== 4 && i !== 7)
        await expectIds({ tenantId: tenantB, status: 'revoked' }, (_r, i) => i === 7)
        await expectIds({ tenantId: randomUUID() }, () => false)

        const page = await store.registrations.list({ tenantId: tenantA, limit: 1 })
        expect(page.items[0]).toEqual({ ...made[0], version: 1 })
        expect(page.items[0]).not.toHaveProperty('key')
      })

      it('lists every combination of tenant, app and status filters a page at a time, oldest first', async () => {
        const tenants = [randomUUID(), randomUUID(), randomUUID()]
        const apps = ['ms-graph-mail', 'ms-defender-atp', 'ms-azure-log-analytics']
        const ids: string[] = []
        for (let i = 0; i < 30; i++) {
          const registration = sampleRegistration({
            kind: i % 3 === 0 ? 'admin' : 'delegated',
            // a spread of tenants and apps: some combinations have nobody
            tenantId: tenants[i % 7 === 0 ? 2 : i % 2]!,
            app: i % 7 === 0 ? apps[0]! : apps[i % 5 === 0 ? 2 : i % 2 === 0 ? 1 : 0]!,
            // groups of three share a millisecond (ties ordered by id), not in creation order
            createdAt: iso(T0 + ((i * 7) % 10) * 1000),
            status: i % 11 === 5 ? 'needs_consent' : 'active',
          })
          ids.push(registration.id)
          await mustCreate(store, registration)
        }
        for (const i of [1, 4, 8, 13])
          await store.registrations.update(ids[i]!, 1, { status: 'needs_consent' })
        for (const i of [2, 9, 20]) await store.registrations.update(ids[i]!, 1, { status: 'revoked' })
        await store.registrations.update(ids[4]!, 2, { status: 'active' })
        await expectEveryListing(store, await recorded(store, ids))
        // another instance reads the same
        await expectEveryListing(await harness.peer(), await recorded(store, ids), 4)
      })

      it('paginates exactly: the last page has no cursor, limits are clamped, bad cursors rejected', async () => {
        const tenantId = randomUUID()
        for (let i = 0; i < 10; i++)
          await mustCreate(store, sampleRegistration({ tenantId, createdAt: iso(T0 + i) }))
        const first = await store.registrations.list({ tenantId, limit: 5 })
        expect(first.items).toHaveLength(5)
        expect(first.nextCursor).toMatch(/^[\w-]+$/) // opaque, base64url
        const second = await store.registrations.list({ tenantId, limit: 5, cursor: first.nextCursor! })
        expect(second.items).toHaveLength(5)
        expect(second.nextCursor).toBeUndefined()

        expect((await store.registrations.list({ tenantId })).items).toHaveLength(10) // default 50
        expect((await store.registrations.list({ tenantId, limit: 0 })).items).toHaveLength(1)
        expect((await store.registrations.list({ tenantId, limit: 10_000 })).items).toHaveLength(10)

        await expect(store.registrations.list({ cursor: 'not a cursor' })).rejects.toMatchObject({
          code: 'invalid_argument',
        })
        await expect(
          store.registrations.list({ cursor: Buffer.from('{"a":1}').toString('base64url') }),
        ).rejects.toMatchObject({ code: 'invalid_argument' })
      })

      it('keeps pages stable while registrations are inserted, including same-millisecond ties', async () => {
        const tenantId = randomUUID()
        const before: string[] = []
        // 30 existing registrations; groups of three share a createdAt (ties broken by id)
        for (let i = 0; i < 30; i++) {
          const registration = sampleRegistration({ tenantId, createdAt: iso(T0 + Math.floor(i / 3) * 1000) })
          await mustCreate(store, registration)
          before.push(registration.id)
        }
        const peer = await harness.peer()
        const seen: string[] = []
        let cursor: string | undefined
        let round = 0
        do {
          const page = await store.registrations.list({
            tenantId,
            limit: 4,
            ...(cursor === undefined ? {} : { cursor }),
          })
          seen.push(...page.items.map((item) => item.id))
          cursor = page.nextCursor
          // meanwhile another instance inserts: in the past, in a tie with existing items, and later
          round++
          await Promise.all([
            mustCreate(peer, sampleRegistration({ tenantId, createdAt: iso(T0 - round * 10) })),
            mustCreate(peer, sampleRegistration({ tenantId, createdAt: iso(T0 + (round % 10) * 1000) })),
            mustCreate(peer, sampleRegistration({ tenantId, createdAt: iso(T0 + 100_000 + round) })),
          ])
        } while (cursor !== undefined && round < 200)

        expect(new Set(seen).size).toBe(seen.length) // no duplicates
        const seenBefore = seen.filter((id) => before.includes(id))
        expect(seenBefore).toHaveLength(before.length) // no skips
        // pre-existing items keep their relative order (createdAt, then id)
        const order = (await allPages(store, { tenantId }, 500)).ids.filter((id) => before.includes(id))
        expect(seenBefore).toEqual(order)
      })

      it('lists tenant ids a page at a time, overall and per app', async () => {
        const tenants = Array.from({ length: 7 }, () => randomUUID())
        for (const [i, tenantId] of [...tenants, tenants[0]!].entries()) {
          const app = i % 3 === 0 ? 'ms-defender-atp' : 'ms-graph-mail'
          await mustCreate(store, sampleRegistration({ kind: 'admin', tenantId, app }))
        }
        // a revoked registration still names its tenant
        await mustCreate(store, sampleRegistration({ tenantId: tenants[1]!, status: 'revoked' }))
        const pages = async (query: { app?: string }, limit: number) => {
          const ids: string[] = []
          let cursor: string | undefined
          let count = 0
          do {
            const page = await store.registrations.listTenants({
              ...query,
              limit,
              ...(cursor === undefined ? {} : { cursor }),
            })
            expect(page.tenantIds.length).toBeLessThanOrEqual(limit)
            ids.push(...page.tenantIds)
            cursor = page.nextCursor
            if (++count > 100) throw new Error('tenant pages do not terminate')
          } while (cursor !== undefined)
          return { ids, count }
        }
        const sorted = [...tenants].sort()
        expect(await pages({}, 50)).toEqual({ ids: sorted, count: 1 })
        expect(await pages({}, 3)).toEqual({ ids: sorted, count: 3 })
        expect(await pages({}, 7)).toEqual({ ids: sorted, count: 1 })
        const ofDefender = [tenants[0]!, tenants[3]!, tenants[6]!].sort()
        expect((await pages({ app: 'ms-defender-atp' }, 2)).ids).toEqual(ofDefender)
        expect((await pages({ app: 'ms-azure-log-analytics' }, 2)).ids).toEqual([])
        await expect(store.registrations.listTenants({ cursor: 'not a cursor!' })).rejects.toThrow(/cursor/)
      })

      it('records who consented, for admin and delegated consents, and reads records without it', async () => {
        const admin = sampleRegistration({
          kind: 'admin',
          userName: 'admin@contoso.example',
          userDisplayName: 'Ada Admin',
        })
        await mustCreate(store, admin)
        expect(await store.registrations.getMeta(admin.id)).toMatchObject({
          userName: 'admin@contoso.example',
          userDisplayName: 'Ada Admin',
        })
        const delegated = sampleRegistration({ userDisplayName: 'Alice Example' })
        await mustCreate(store, delegated)
        const updated = await store.registrations.update(delegated.id, 1, {
          userName: 'alice@fabrikam.example',
          userDisplayName: 'Alice Renamed',
        })
        expect(updated).toMatchObject({
          userName: 'alice@fabrikam.example',
          userDisplayName: 'Alice Renamed',
        })
        const peer = await harness.peer()
        expect(await peer.registrations.getMeta(delegated.id)).toMatchObject({
          userDisplayName: 'Alice Renamed',
          version: 2,
        })
        // a record written before these fields existed (an admin consent without them) reads as before
        const old = sampleRegistration({ kind: 'admin' })
        await mustCreate(store, old)
        const meta = await store.registrations.getMeta(old.id)
        expect(meta).toEqual({ ...old, version: 1 })
        expect(meta).not.toHaveProperty('userName')
        expect(meta).not.toHaveProperty('userDisplayName')
        const listed = await store.registrations.list({ tenantId: admin.tenantId })
        expect(listed.items.map((item) => item.userDisplayName)).toEqual(['Ada Admin'])
      })

      it('counts registrations by status as they are created and change status, across instances', async () => {
        const zero = { active: 0, needs_consent: 0, revoked: 0 }
        expect(await store.registrations.countByStatus()).toEqual(zero)
        const peer = await harness.peer()
        const made: Array<Omit<Registration, 'version'>> = []
        for (let i = 0; i < 6; i++) {
          const registration = sampleRegistration({ kind: i % 2 === 0 ? 'admin' : 'delegated' })
          made.push(registration)
          await mustCreate(i % 2 === 0 ? store : peer, registration)
        }
        await mustCreate(store, sampleRegistration({ status: 'needs_consent' }))
        expect(await peer.registrations.countByStatus()).toEqual({ active: 6, needs_consent: 1, revoked: 0 })
        await store.registrations.update(made[0]!.id, 1, { status: 'needs_consent' })
        await peer.registrations.update(made[1]!.id, 1, { status: 'revoked' })
        // a lost compare-and-set and a patch that keeps the status change nothing
        expect(await store.registrations.update(made[2]!.id, 7, { status: 'revoked' })).toBeNull()
        await store.registrations.update(made[3]!.id, 1, { status: 'active', userName: 'bob' })
        await store.registrations.update(made[0]!.id, 2, { status: 'active' })
        await store.registrations.update(made[0]!.id, 3, { status: 'revoked' })
        await expect(store.registrations.update(made[0]!.id, 4, { status: 'active' })).rejects.toThrow()
        expect(await store.registrations.countByStatus()).toEqual({ active: 4, needs_consent: 1, revoked: 2 })
        // listing by status agrees with the counts
        for (const status of ['active', 'needs_consent', 'revoked'] as const) {
          const listed = (await allPages(store, { status }, 2)).ids
          expect(listed, status).toHaveLength((await store.registrations.countByStatus())[status])
        }
      })

      it('keeps counts exact under concurrent status changes of one registration', async () => {
        const peer = await harness.peer()
        const registration = sampleRegistration({ kind: 'admin' })
        await mustCreate(store, registration)
        // many writers race on one version: exactly one wins, the counts follow the winner
        for (let version = 1; version <= 6; version++) {
          const target = version % 2 === 1 ? 'needs_consent' : 'active'
          const results = await Promise.all(
            Array.from({ length: 6 }, (_, i) =>
              (i % 2 === 0 ? store : peer).registrations.update(registration.id, version, { status: target }),
            ),
          )
          expect(results.filter((r) => r !== null)).toHaveLength(1)
          const expected = { active: 0, needs_consent: 0, revoked: 0, [target]: 1 }
          expect(await store.registrations.countByStatus()).toEqual(expected)
          expect((await allPages(store, { status: target }, 10)).ids).toEqual([registration.id])
        }
      })

      it('lists idle delegated registrations by last refresh or creation, in idle order', async () => {
        const oldest = sampleRegistration({ createdAt: iso(T0) })
        const refreshed = sampleRegistration({ createdAt: iso(T0 + 1000) })
        const newer = sampleRegistration({ createdAt: iso(T0 + 2000) })
        const admin = sampleRegistration({ kind: 'admin', createdAt: iso(T0) })
        const revoked = sampleRegistration({ createdAt: iso(T0) })
        const needsConsent = sampleRegistration({ createdAt: iso(T0 + 500) })
        for (const r of [oldest, refreshed, newer, admin, revoked, needsConsent]) await mustCreate(store, r)
        await store.registrations.update(revoked.id, 1, { status: 'revoked' })
        await store.registrations.update(needsConsent.id, 1, { status: 'needs_consent' })
        await store.registrations.touch(refreshed.id, { lastRefreshAt: iso(T0 + 10_000) })
        // an older refresh time never moves a registration back
        await store.registrations.touch(refreshed.id, { lastRefreshAt: iso(T0 + 100) })

        const idle = async (before: string, limit: number, after?: { id: string; score: number }) =>
          (await store.registrations.listIdleDelegated(before, limit, after)).map((position) => position.id)
        // idle order: by the id's bucket (idle-order.ts), then by idle-since time, then by id
        const positions = {
          [oldest.id]: { id: oldest.id, score: T0 },
          [needsConsent.id]: { id: needsConsent.id, score: T0 + 500 },
          [newer.id]: { id: newer.id, score: T0 + 2000 },
          [refreshed.id]: { id: refreshed.id, score: T0 + 10_000 },
        }
        const ordered = (...ids: string[]) => ids.map((id) => positions[id]!).sort(compareIdle)
        const inOrder = (...ids: string[]) => ordered(...ids).map((position) => position.id)
        expect(await idle(iso(T0 + 5000), 10)).toEqual(inOrder(oldest.id, needsConsent.id, newer.id))
        expect(await idle(iso(T0 + 5000), 2)).toEqual(
          inOrder(oldest.id, needsConsent.id, newer.id).slice(0, 2),
        )
        expect(await idle(iso(T0 + 2000), 10)).toEqual(inOrder(oldest.id, needsConsent.id))
        const all = inOrder(oldest.id, needsConsent.id, newer.id, refreshed.id)
        expect(await idle(iso(T0 + 20_000), 10)).toEqual(all)
        expect(await idle(iso(T0), 10)).toEqual([])
        // positions carry the idle-since time; a page continues strictly after the position given
        const first = await store.registrations.listIdleDelegated(iso(T0 + 20_000), 2)
        expect(first).toEqual(ordered(oldest.id, needsConsent.id, newer.id, refreshed.id).slice(0, 2))
        expect(await idle(iso(T0 + 20_000), 2, first[1])).toEqual(all.slice(2))
        // the cursor holds even when the entries it has passed are refreshed meanwhile
        for (const position of first)
          await store.registrations.touch(position.id, { lastRefreshAt: iso(T0 + 30_000) })
        expect(await idle(iso(T0 + 20_000), 10, first[1])).toEqual(all.slice(2))
        expect(await idle(iso(T0 + 20_000), 10, positions[all[2]!])).toEqual(all.slice(3))

        // a tie (one millisecond) larger than a page, in one bucket: paging continues inside it, in
        // id order (ids picked so they share a bucket)
        const tied: Array<Omit<Registration, 'version'>> = []
        while (tied.length < 5) {
          const id = randomUUID()
          if (idleBucketOf(id) === idleBucketOf(oldest.id))
            tied.push(sampleRegistration({ id, createdAt: iso(T0 - 1000) }))
        }
        for (const r of tied) await mustCreate(store, r)
        const walked: string[] = []
        let cursor: { id: string; score: number } | undefined
        for (;;) {
          const page = await store.registrations.listIdleDelegated(iso(T0), 2, cursor)
          if (page.length === 0) break
          walked.push(...page.map((position) => position.id))
          cursor = page[page.length - 1]
        }
        expect(walked).toEqual(
          tied
            .map((r) => ({ id: r.id, score: T0 - 1000 }))
            .sort(compareIdle)
            .map((position) => position.id),
        )
      })

      it('lists idle registrations from any position as a ring, and by a cutoff across every bucket', async () => {
        // what the keep-alive relies on (services/token-keep-alive.ts)
        const DAY = 86_400_000
        const idleNow = Array.from({ length: 6 }, () => sampleRegistration({ createdAt: iso(T0) }))
        let lastId = randomUUID()
        while (idleBucketOf(lastId) !== IDLE_BUCKETS - 1) lastId = randomUUID()
        const nearLapse = sampleRegistration({ id: lastId, createdAt: iso(T0 - 70 * DAY) })
        for (const r of [...idleNow, nearLapse]) await mustCreate(store, r)
        const ids = async (before: number, limit: number, after?: { id: string; score: number }) =>
          (await store.registrations.listIdleDelegated(iso(before), limit, after)).map((p) => p.id)
        // a cutoff close to the lapse finds the one registration that old, in the last bucket
        expect(await ids(T0 - 60 * DAY, 10)).toEqual([nearLapse.id])
        const order = [
          ...idleNow.map((r) => ({ id: r.id, score: T0 })),
          { id: lastId, score: T0 - 70 * DAY },
        ].sort(compareIdle)
        expect(order[order.length - 1]!.id).toBe(lastId)
        // from a position in the middle: the rest up to the last bucket, then from the first bucket on
        const start = order[3]!
        const tail = await ids(T0 + 1, 10, start)
        const head = (await ids(T0 + 1, 10)).filter(
          (id) => compareIdle(order.find((p) => p.id === id)!, start) <= 0,
        )
        expect([...tail, ...head]).toEqual([...order.slice(4), ...order.slice(0, 4)].map((p) => p.id))
        // after the last registration of the last bucket, nothing follows
        expect(await ids(T0 + 1, 10, order[order.length - 1])).toEqual([])
      })

      it('hands out the order it lists idle registrations in (idleOrder)', async () => {
        // ties (one millisecond, ordered by id) and registrations that are never listed among them
        const listed = [0, 0, 0, 1000, 2000, 2000, 3000, 4000].map((ms) =>
          sampleRegistration({ createdAt: iso(T0 + ms) }),
        )
        const admin = sampleRegistration({ kind: 'admin', createdAt: iso(T0) })
        const revoked = sampleRegistration({ createdAt: iso(T0) })
        for (const r of [...listed, admin, revoked]) await mustCreate(store, r)
        await store.registrations.update(revoked.id, 1, { status: 'revoked' })
        await store.registrations.touch(listed[0]!.id, { lastRefreshAt: iso(T0 + 5000) })
        const positions = await expectIdleOrder(store, iso(T0 + 10_000))
        expect(positions.map((p) => p.id).sort()).toEqual(listed.map((r) => r.id).sort())
        // this release's layout: the bucket order
        const order = await store.registrations.idleOrder()
        for (const a of positions)
          for (const b of positions) expect(Math.sign(order.compare(a, b))).toBe(Math.sign(compareIdle(a, b)))
      })

      it('reseals every secret under the current key after rotation', async () => {
        const oldKey = masterKey('old')
        const newKey = masterKey('new')
        rotation.swap(new KeyRing([oldKey]))
        const input = sampleRegistration()
        const secrets = sampleSecrets()
        await mustCreate(store, input, secrets)
        const admin = sampleRegistration({ kind: 'admin' })
        const adminSecrets = sampleSecrets(false)
        await mustCreate(store, admin, adminSecrets)
        expect(await store.registrations.reseal(input.id)).toBe(false) // already current

        // rotation: the new key seals, the old one still opens
        rotation.swap(new KeyRing([newKey, oldKey]))
        expect((await store.registrations.get(input.id))?.secrets).toEqual(secrets) // old key still opens

        expect(await store.registrations.reseal(input.id)).toBe(true)
        expect(await store.registrations.reseal(input.id)).toBe(false)
        expect(await store.registrations.reseal(admin.id)).toBe(true)
        expect(await store.registrations.reseal('missing')).toBe(false)

        // the old key can be retired: everything opens with the new key alone
        rotation.swap(new KeyRing([newKey]))
        expect((await store.registrations.get(input.id))?.secrets).toEqual(secrets)
        expect((await store.registrations.get(admin.id))?.secrets).toEqual(adminSecrets)
      })

      it('reseals a batch: one outcome per id, in order, a failure its own outcome', async () => {
        const lostKey = masterKey('lost')
        const oldKey = masterKey('old')
        const newKey = masterKey('new')
        rotation.swap(new KeyRing([lostKey]))
        const orphan = sampleRegistration({ kind: 'admin' })
        await mustCreate(store, orphan, sampleSecrets(false))
        rotation.swap(new KeyRing([oldKey]))
        const delegated = sampleRegistration()
        const delegatedSecrets = sampleSecrets()
        await mustCreate(store, delegated, delegatedSecrets)
        const admin = sampleRegistration({ kind: 'admin', app: 'ms-defender-atp', cloud: 'usgov' })
        const adminSecrets = sampleSecrets(false)
        await mustCreate(store, admin, adminSecrets)
        rotation.swap(new KeyRing([newKey, oldKey]))
        const current = sampleRegistration({ kind: 'admin', ownClientId: randomUUID() })
        await mustCreate(store, current, sampleSecrets(false))

        const ids = [delegated.id, 'missing', orphan.id, admin.id, current.id]
        const outcomes = await store.registrations.resealBatch(ids)
        expect(outcomes.map((o) => [o.id, o.outcome])).toEqual([
          [delegated.id, 'resealed'],
          ['missing', 'missing'],
          [orphan.id, 'failed'],
          [admin.id, 'resealed'],
          [current.id, 'unchanged'],
        ])
        const failed = outcomes[2]
        expect(failed?.outcome === 'failed' && failed.error.message).toMatch(/unknown key "lost"/)
        const facts = (o: (typeof outcomes)[number]) => ('registration' in o ? o.registration : undefined)
        expect(facts(outcomes[0]!)).toEqual({
          id: delegated.id,
          kind: 'delegated',
          app: delegated.app,
          cloud: delegated.cloud,
          tenantId: delegated.tenantId,
        })
        expect(facts(outcomes[3]!)).toEqual({
          id: admin.id,
          kind: 'admin',
          app: 'ms-defender-atp',
          cloud: 'usgov',
          tenantId: admin.tenantId,
        })
        expect(facts(outcomes[4]!)).toMatchObject({ ownClientId: current.ownClientId })
        expect(await store.registrations.resealBatch([])).toEqual([])
        // a second pass finds nothing left to do
        expect((await store.registrations.resealBatch(ids)).map((o) => o.outcome)).toEqual([
          'unchanged',
          'missing',
          'failed',
          'unchanged',
          'unchanged',
        ])

        // the old key can be retired: what was re-sealed opens with the new key alone
        rotation.swap(new KeyRing([newKey]))
        expect((await store.registrations.get(delegated.id))?.secrets).toEqual(delegatedSecrets)
        expect((await store.registrations.get(admin.id))?.secrets).toEqual(adminSecrets)
      })

      it('scans every registration id in batches', async () => {
        const ids = new Set<string>()
        for (let i = 0; i < 11; i++) {
          const registration = sampleRegistration({ kind: 'admin', createdAt: iso(T0 + (i % 4)) })
          await mustCreate(store, registration)
          ids.add(registration.id)
        }
        const scanned: string[] = []
        let cursor: string | undefined
        let batches = 0
        do {
          const batch = await store.registrations.scanIds(cursor, 3)
          expect(batch.ids.length).toBeLessThanOrEqual(3)
          scanned.push(...batch.ids)
          cursor = batch.nextCursor
          batches++
        } while (cursor !== undefined && batches < 100)
        expect(batches).toBe(4)
        expect(scanned).toHaveLength(11)
        expect(new Set(scanned)).toEqual(ids)
      })
    })

    describe('tenant summaries', () => {
      it('count by app, cloud and status as registrations are created and change status', async () => {
        const [a, b, none] = [randomUUID(), randomUUID(), randomUUID()]
        const made: Registration[] = []
        const plan: Array<Partial<Omit<Registration, 'version'>>> = [
          { tenantId: a, app: 'ms-graph-mail', cloud: 'global' },
          { tenantId: a, app: 'ms-graph-mail', cloud: 'global', kind: 'admin' },
          { tenantId: a, app: 'ms-graph-mail', cloud: 'usgov' },
          { tenantId: a, app: 'ms-defender-atp', cloud: 'global', kind: 'admin' },
          { tenantId: b, app: 'ms-defender-atp', cloud: 'global', status: 'needs_consent' },
          { tenantId: b, app: 'ms-graph-mail', cloud: 'global', status: 'revoked' },
        ]
        for (const [i, overrides] of plan.entries()) {
          made.push(
            await mustCreate(
              store,
              sampleRegistration({ ...overrides, createdAt: iso(T0 + i), consentedAt: iso(T0 + i * 1000) }),
            ),
          )
        }
        const apps = ['ms-graph-mail', 'ms-defender-atp', 'unknown-app']
        await expectSummariesWalked(store, [a, b, none], apps)
        const [first] = await store.registrations.summarizeTenants([a])
        expect(first).toEqual({
          tenantId: a,
          apps: ['ms-defender-atp', 'ms-graph-mail'],
          clouds: ['global', 'usgov'],
          registrations: { active: 4, needs_consent: 0, revoked: 0, total: 4 },
          lastConsentAt: iso(T0 + 3000),
        })
        // a tenant without registrations counts nothing
        expect((await store.registrations.summarizeTenants([none]))[0]!.registrations.total).toBe(0)

        // needs_consent, renewed (with a new consent), revoked; an update without a status change
        await store.registrations.update(made[0]!.id, 1, { status: 'needs_consent' })
        await store.registrations.update(made[0]!.id, 2, { status: 'active', consentedAt: iso(T0 + 60_000) })
        await store.registrations.update(made[1]!.id, 1, { status: 'revoked' })
        await store.registrations.update(made[2]!.id, 1, { status: 'needs_consent' })
        await store.registrations.update(made[3]!.id, 1, { userDisplayName: 'Renamed' })
        await store.registrations.update(made[4]!.id, 1, { status: 'active', consentedAt: iso(T0 + 90_000) })
        await expectSummariesWalked(store, [a, b], apps)
        const [afterA, afterB] = await store.registrations.summarizeTenants([a, b], 'ms-graph-mail')
        expect(afterA).toMatchObject({
          apps: ['ms-graph-mail'],
          clouds: ['global', 'usgov'],
          registrations: { active: 1, needs_consent: 1, revoked: 1, total: 3 },
          lastConsentAt: iso(T0 + 60_000),
        })
        expect(afterB).toMatchObject({
          registrations: { active: 0, needs_consent: 0, revoked: 1, total: 1 },
          lastConsentAt: iso(T0 + 5000),
        })
        // another instance reads the same figures
        const peer = await harness.peer()
        expect(await peer.registrations.summarizeTenants([a, b])).toEqual(
          await store.registrations.summarizeTenants([a, b]),
        )
      })

      it('the tenants page shows the same figures as a walk, with and without an app filter', async () => {
        const tenants: string[] = [randomUUID(), randomUUID(), randomUUID()]
        for (let i = 0; i < 15; i++) {
          const created = await mustCreate(
            store,
            sampleRegistration({
              tenantId: tenants[i % 3]!,
              app: i % 4 === 0 ? 'ms-defender-atp' : 'ms-graph-mail',
              cloud: i % 5 === 0 ? 'usgov' : 'global',
              kind: i % 2 === 0 ? 'admin' : 'delegated',
              createdAt: iso(T0 + i),
              consentedAt: iso(T0 + i * 1000),
            }),
          )
          if (i % 6 === 1) await store.registrations.update(created.id, 1, { status: 'revoked' })
          if (i % 6 === 2) await store.registrations.update(created.id, 1, { status: 'needs_consent' })
        }
        const listed = await summarizeTenants(store, { limit: 500 })
        const mine = listed.tenants.filter((tenant) => tenants.includes(tenant.tenantId))
        expect(mine).toEqual(await Promise.all([...tenants].sort().map((t) => walkedSummary(store, t))))
        const ofApp = await summarizeTenants(store, { app: 'ms-defender-atp', limit: 500 })
        const mineOfApp = ofApp.tenants.filter((tenant) => tenants.includes(tenant.tenantId))
        const expected = await Promise.all(
          [...tenants].sort().map((t) => walkedSummary(store, t, 'ms-defender-atp')),
        )
        expect(mineOfApp).toEqual(expected.filter((tenant) => tenant.registrations.total > 0))
      })
    })

    describe('tenant labels', () => {
      it('keeps the first suggested label, lets an operator replace it, and reads many at once', async () => {
        const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()]
        expect(await store.tenantLabels.get([a, b])).toEqual(new Map())
        expect(await store.tenantLabels.suggest(a, 'contoso.example')).toBe(true)
        // a later consent of the same tenant suggests another default: the first one stays
        expect(await store.tenantLabels.suggest(a, 'fabrikam.example')).toBe(false)
        expect(await store.tenantLabels.get([a])).toEqual(new Map([[a, 'contoso.example']]))
        await store.tenantLabels.set(a, 'Contoso Ltd (EU)')
        expect(await store.tenantLabels.suggest(a, 'contoso.example')).toBe(false)
        await store.tenantLabels.set(b, 'Operator first')
        expect(await store.tenantLabels.suggest(b, 'b.example')).toBe(false)
        const peer = await harness.peer()
        expect(await peer.tenantLabels.get([a, b, c])).toEqual(
          new Map([
            [a, 'Contoso Ltd (EU)'],
            [b, 'Operator first'],
          ]),
        )
        expect(await store.tenantLabels.get([])).toEqual(new Map())
      })

      it('lets exactly one of many concurrent suggestions win, across instances', async () => {
        const tenantId = randomUUID()
        const peer = await harness.peer()
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            (i % 2 === 0 ? store : peer).tenantLabels.suggest(tenantId, `d${i}.example`),
          ),
        )
        expect(results.filter(Boolean)).toHaveLength(1)
        const winner = results.indexOf(true)
        expect(await store.tenantLabels.get([tenantId])).toEqual(new Map([[tenantId, `d${winner}.example`]]))
      })

      it('refuses labels that are blank, too long or carry control characters', async () => {
        const tenantId = randomUUID()
        const refused = REFUSED_EXAMPLES.map(([, character]) => `one${character}line`)
        for (const bad of ['', '   ', 'x'.repeat(101), 'line\nbreak', 'tab\there', 'del\u007f', ...refused]) {
          await expect(store.tenantLabels.set(tenantId, bad)).rejects.toThrow(/tenant label/)
          await expect(store.tenantLabels.suggest(tenantId, bad)).rejects.toThrow(/tenant label/)
        }
        await store.tenantLabels.set(tenantId, 'x'.repeat(100))
        expect((await store.tenantLabels.get([tenantId])).get(tenantId)).toHaveLength(100)
      })
    })

    describe('ephemeral', () => {
      it('puts, gets, takes once and deletes', async () => {
        await store.ephemeral.put('flow:1', 'state-1', 60_000)
        expect(await store.ephemeral.get('flow:1')).toBe('state-1')
        expect(await store.ephemeral.get('flow:1')).toBe('state-1')
        const takes = await Promise.all([store.ephemeral.take('flow:1'), store.ephemeral.take('flow:1')])
        expect(takes.filter((v) => v === 'state-1')).toHaveLength(1)
        expect(takes.filter((v) => v === null)).toHaveLength(1)
        expect(await store.ephemeral.get('flow:1')).toBeNull()

        await store.ephemeral.put('flow:2', 'state-2', 60_000)
        await store.ephemeral.delete('flow:2')
        expect(await store.ephemeral.take('flow:2')).toBeNull()
        await store.ephemeral.delete('never-set')
      })

      it('seals secret values', async () => {
        await store.ephemeral.put('result:1', 'Key=abc', 60_000, { secret: true })
        const raw = await store.ephemeral.get('result:1')
        expect(raw).not.toBe('Key=abc')
        expect(raw).not.toContain('abc')
        expect(await store.ephemeral.get('result:1', { secret: true })).toBe('Key=abc')
        expect(await store.ephemeral.take('result:1', { secret: true })).toBe('Key=abc')
        expect(await store.ephemeral.take('result:1', { secret: true })).toBeNull()
      })

      it('claims a marker once', async () => {
        const claims = await Promise.all(
          Array.from({ length: 8 }, () => store.ephemeral.claim('jti:1', 60_000)),
        )
        expect(claims.filter(Boolean)).toHaveLength(1)
        expect(await store.ephemeral.claim('jti:2', 60_000)).toBe(true)
      })

      it('expires values and markers', async () => {
        await store.ephemeral.put('short', 'v', 100)
        expect(await store.ephemeral.claim('marker', 100)).toBe(true)
        await elapse(200)
        expect(await store.ephemeral.get('short')).toBeNull()
        expect(await store.ephemeral.take('short')).toBeNull()
        expect(await store.ephemeral.claim('marker', 100)).toBe(true)
      })
    })

    describe('credential health', () => {
      const A = 'mail|global|certificate:AB'
      const B = 'mail|global|secret:MAIL_SECRET'
      it('marks a credential failing once across concurrent callers, reads marks and clears them', async () => {
        const marks = await Promise.all(
          Array.from({ length: 6 }, () => store.credentialHealth.markFailing(A, 'AADSTS700027', 60_000)),
        )
        expect(marks.filter(Boolean)).toHaveLength(1)
        expect(await store.credentialHealth.failing([A, B])).toEqual(new Map([[A, 'AADSTS700027']]))
        expect(await store.credentialHealth.failing([])).toEqual(new Map())
        expect(await store.credentialHealth.clearFailing(A)).toBe(true)
        expect(await store.credentialHealth.clearFailing(A)).toBe(false)
        expect(await store.credentialHealth.failing([A])).toEqual(new Map())
      })

      it('expires failing marks and keeps the last success', async () => {
        expect(await store.credentialHealth.markFailing(B, 'AADSTS7000215', 100)).toBe(true)
        await store.credentialHealth.recordSuccess(A, 1_700_000_000_000, 60_000)
        await store.credentialHealth.recordSuccess(A, 1_700_000_001_000, 60_000)
        expect(await store.credentialHealth.lastSuccess([A, B])).toEqual(new Map([[A, 1_700_000_001_000]]))
        await elapse(200)
        expect(await store.credentialHealth.failing([B])).toEqual(new Map())
        expect(await store.credentialHealth.markFailing(B, 'AADSTS7000215', 100)).toBe(true)
      })
    })

    describe('upstream failures', () => {
      const MINUTE = 60_000
      // A minute boundary far from any other test's writes.
      const T = Date.parse('2031-03-04T05:06:00.000Z')
      it('counts per app and code per minute, sums whole minutes of a window, most first', async () => {
        const writes = [
          ['mail', 'upstream_unavailable', T],
          ['mail', 'upstream_unavailable', T + 59_999],
          ['mail', 'upstream_unavailable', T + 30 * MINUTE],
          ['mail', 'upstream_throttled', T + 30 * MINUTE],
          ['user', 'needs_consent', T + 59 * MINUTE],
          ['user', 'needs_consent', T + 61 * MINUTE],
        ] as const
        await Promise.all(writes.map(([app, code, at]) => store.upstreamFailures.record(app, code, at)))
        // The hour from T to T + 60 min: the minute of T counts whole, the write after it doesn't.
        expect(await store.upstreamFailures.count(T + 1_000, T + 60 * MINUTE - 1)).toEqual([
          { app: 'mail', code: 'upstream_unavailable', failures: 3 },
          { app: 'mail', code: 'upstream_throttled', failures: 1 },
          { app: 'user', code: 'needs_consent', failures: 1 },
        ])
        expect(await store.upstreamFailures.count(T + 31 * MINUTE, T + 62 * MINUTE)).toEqual([
          { app: 'user', code: 'needs_consent', failures: 2 },
        ])
        expect(await store.upstreamFailures.count(T - 10 * MINUTE, T - MINUTE)).toEqual([])
        // Older than the kept two hours: not read, whatever the window asks.
        expect(await store.upstreamFailures.count(T - MINUTE, T + 183 * MINUTE)).toEqual([])
      })

      it('refuses an app or code that is empty or has a space', async () => {
        await expect(store.upstreamFailures.record('', 'x', T)).rejects.toThrow(TypeError)
        await expect(store.upstreamFailures.record('mail', 'a b', T)).rejects.toThrow(TypeError)
      })
    })

    describe('token cache', () => {
      const token = (accessToken: string, scope = 'https://graph.microsoft.com/.default') => ({
        accessToken,
        expiresAt: T0 + 3_600_000,
        scope,
      })

      it('sets and gets per group and scope', async () => {
        await store.tokens.set('reg:1', 'scope-a', token('at-1a', 'scope-a'), 60_000)
        await store.tokens.set('reg:1', 'scope-b', token('at-1b', 'scope-b'), 60_000)
        await store.tokens.set('reg:2', 'scope-a', token('at-2a', 'scope-a'), 60_000)
        expect(await store.tokens.get('reg:1', 'scope-a')).toEqual(token('at-1a', 'scope-a'))
        expect(await store.tokens.get('reg:1', 'scope-b')).toEqual(token('at-1b', 'scope-b'))
        expect(await store.tokens.get('reg:2', 'scope-a')).toEqual(token('at-2a', 'scope-a'))
        expect(await store.tokens.get('reg:2', 'scope-b')).toBeNull()
        await store.tokens.set('reg:1', 'scope-a', token('at-1a-new', 'scope-a'), 60_000)
        expect(await store.tokens.get('reg:1', 'scope-a')).toEqual(token('at-1a-new', 'scope-a'))
      })

      it('deletes every scope of a group and nothing else', async () => {
        const group = 'tenant:ms-graph-mail:global:{weird}%group'
        await store.tokens.set(group, 'scope-a', token('at-a'), 60_000)
        await store.tokens.set(group, 'scope-b', token('at-b'), 60_000)
        await store.tokens.set('reg:other', 'scope-a', token('at-other'), 60_000)
        await store.tokens.deleteGroup(group)
        expect(await store.tokens.get(group, 'scope-a')).toBeNull()
        expect(await store.tokens.get(group, 'scope-b')).toBeNull()
        expect(await store.tokens.get('reg:other', 'scope-a')).toEqual(token('at-other'))
        await store.tokens.deleteGroup('never-used')
        // the group works again afterwards
        await store.tokens.set(group, 'scope-a', token('at-a2'), 60_000)
        expect((await store.tokens.get(group, 'scope-a'))?.accessToken).toBe('at-a2')
      })

      it('expires cached tokens', async () => {
        await store.tokens.set('reg:1', 'short', token('at-short'), 100)
        await store.tokens.set('reg:1', 'long', token('at-long'), 60_000)
        await elapse(200)
        expect(await store.tokens.get('reg:1', 'short')).toBeNull()
        expect((await store.tokens.get('reg:1', 'long'))?.accessToken).toBe('at-long')
        await store.tokens.deleteGroup('reg:1')
        expect(await store.tokens.get('reg:1', 'long')).toBeNull()
      })
    })

    describe('locks', () => {
      it('lets exactly one of many concurrent acquirers win, across instances', async () => {
        const peer = await harness.peer()
        const handles = await Promise.all(
          Array.from({ length: 16 }, (_, i) =>
            (i % 2 === 0 ? store : peer).locks.acquire('refresh:reg-1', 10_000),
          ),
        )
        const held = handles.filter((h) => h !== null)
        expect(held).toHaveLength(1)
        expect(held[0]!.name).toBe('refresh:reg-1')
        expect(held[0]!.token).toMatch(/^[0-9a-f]{32,}$/)
        expect(await store.locks.acquire('refresh:reg-2', 10_000)).not.toBeNull()
      })

      it('releases only with the holder token', async () => {
        const handle = await store.locks.acquire('lock-a', 10_000)
        expect(handle).not.toBeNull()
        expect(await store.locks.release({ name: 'lock-a', token: 'f'.repeat(40) })).toBe(false)
        expect(await store.locks.acquire('lock-a', 10_000)).toBeNull()
        expect(await store.locks.renew({ name: 'lock-a', token: 'f'.repeat(40) }, 10_000)).toBe(false)
        expect(await store.locks.release(handle!)).toBe(true)
        expect(await store.locks.release(handle!)).toBe(false)
        const next = await store.locks.acquire('lock-a', 10_000)
        expect(next).not.toBeNull()
        expect(next!.token).not.toBe(handle!.token)
      })

      it('renews a lease while held; an expired lease is lost', async () => {
        const handle = await store.locks.acquire('lease', 1000)
        await elapse(100)
        expect(await store.locks.renew(handle!, 3000)).toBe(true)
        await elapse(1100) // past the original lease
        expect(await store.locks.acquire('lease', 1000)).toBeNull()

        const short = await store.locks.acquire('short-lease', 100)
        await elapse(200)
        expect(await store.locks.renew(short!, 10_000)).toBe(false)
        const other = await store.locks.acquire('short-lease', 10_000)
        expect(other).not.toBeNull()
        // the previous holder can't free the new holder's lock
        expect(await store.locks.release(short!)).toBe(false)
        expect(await store.locks.acquire('short-lease', 10_000)).toBeNull()
      })
    })

    describe('device code flows', () => {
      it('share a sealed flow record across instances, poll under one lease, and end once', async () => {
        const peer = await harness.peer()
        const here = new DeviceFlowRecords(store, clock.now)
        const there = new DeviceFlowRecords(peer, clock.now)
        const flowId = randomBytes(32).toString('base64url')
        const deviceCode = `DAQABAAEAAAD${randomBytes(24).toString('base64url')}`
        const record = {
          v: 1 as const,
          app: 'ms-graph-mail-listener',
          cloud: 'global' as const,
          tenantId: randomUUID(),
          clientId: randomUUID(),
          browser: 'b'.repeat(64),
          deviceCode,
          userCode: 'BCDFGHJKL',
          verificationUri: 'https://microsoft.com/devicelogin',
          expiresAt: clock.now() + 900_000,
          intervalMs: 5000,
          nextPollAt: clock.now(),
          state: 'pending' as const,
        }
        await here.put(flowId, record)
        expect(await there.get(flowId)).toEqual(record)
        // One poller: the lease goes to one instance; the other gets it once the holder lets it lapse.
        const lease = pollLeaseName(flowId)
        const holder = await store.locks.acquire(lease, 1000)
        expect(holder).not.toBeNull()
        expect(await peer.locks.acquire(lease, 1000)).toBeNull()
        expect(await store.locks.renew(holder!, 1000)).toBe(true)
        await elapse(1100)
        const successor = await peer.locks.acquire(lease, 10_000)
        expect(successor).not.toBeNull()
        expect(await store.locks.renew(holder!, 10_000)).toBe(false)
        // The successor's schedule change is what the first instance reads next.
        await there.put(flowId, { ...record, intervalMs: 10_000 })
        expect((await here.get(flowId))?.intervalMs).toBe(10_000)
        // The end is claimed once, whichever instance asks first.
        const claims = await Promise.all([here.claimEnd(flowId, 10_000), there.claimEnd(flowId, 10_000)])
        expect(claims.filter(Boolean)).toHaveLength(1)
        // Collected once.
        expect((await there.take(flowId))?.deviceCode).toBe(deviceCode)
        expect(await here.take(flowId)).toBeUndefined()
      })
    })

    describe('webhooks outbox', () => {
      // The dispatcher's grace and a lease as it configures them; the claims run on the store's clock.
      const GRACE = 30_000
      const LEASE = 15_000

      /** Claims due subjects and, like the dispatcher, handles every entry read (or none). */
      const fanOut = async (on: Store = store, handle = true) => {
        const claimed = await on.webhooks.claimSubjects(100, LEASE)
        for (const { item, lease } of claimed) {
          const entries = await on.webhooks.readOutbox(item)
          await on.webhooks.finishSubject(item, lease, handle ? entries.map((e) => e.id) : [], GRACE)
        }
        return claimed.map((c) => c.item)
      }

      it('claims an announcement at once, leased to one caller, and ignores a finish without the lease', async () => {
        const peer = await harness.peer()
        await store.webhooks.announce('s-1')
        const [claimed, ...more] = await store.webhooks.claimSubjects(100, LEASE)
        expect(claimed?.item).toBe('s-1')
        expect(more).toEqual([])
        expect(await peer.webhooks.claimSubjects(100, LEASE)).toEqual([])
        // a lease that isn't this subject's current one changes nothing
        await peer.webhooks.finishSubject('s-1', `${clock.now() + LEASE + 1}:${clock.now()}`, [], GRACE)
        expect(await peer.webhooks.claimSubjects(100, LEASE)).toEqual([])
        clock.advance(LEASE)
        // the lease lapsed (its holder died): due again, for another caller
        expect((await peer.webhooks.claimSubjects(100, LEASE)).map((c) => c.item)).toEqual(['s-1'])
      })

      it('drops a handled subject once its grace has passed: one claim more, not one every grace', async () => {
        const registration = await mustCreate(store, sampleRegistration())
        clock.advance(1_000)
        expect(await fanOut()).toEqual([registration.id])
        expect(await store.webhooks.readOutbox(registration.id)).toEqual([])
        // a writer may still be between its announcement and its write: it comes back after the grace
        clock.advance(GRACE - 1_001)
        expect(await fanOut()).toEqual([])
        clock.advance(1)
        expect(await fanOut()).toEqual([registration.id])
        // then it is gone, however long the dispatcher keeps polling
        let later = 0
        for (let i = 0; i < 20; i++) {
          clock.advance(GRACE)
          later += (await fanOut()).length
        }
        expect(later).toBe(0)
      })

      it('keeps an announcement without an entry for the grace, then drops it', async () => {
        // a conditional update that lost on its version announced but wrote nothing
        await store.webhooks.announce('s-empty')
        clock.advance(1_000)
        expect(await fanOut()).toEqual(['s-empty'])
        clock.advance(GRACE - 1_001)
        expect(await fanOut()).toEqual([])
        clock.advance(1)
        expect(await fanOut()).toEqual(['s-empty'])
        clock.advance(10 * GRACE)
        expect(await fanOut()).toEqual([])
      })

      it('an entry written within the grace after a handled one is claimable at once, then dropped', async () => {
        const registration = await mustCreate(store, sampleRegistration({ kind: 'admin' }))
        clock.advance(1_000)
        expect(await fanOut()).toEqual([registration.id])
        clock.advance(1_000)
        await store.registrations.update(registration.id, 1, {
          status: 'revoked',
          statusDetail: { code: 'operator_revoked', at: iso(clock.now()) },
        })
        const [claimed] = await store.webhooks.claimSubjects(100, LEASE)
        expect(claimed?.item).toBe(registration.id)
        const entries = await store.webhooks.readOutbox(registration.id)
        expect(entries.map((e) => e.kind)).toEqual(['registration.revoked'])
        await store.webhooks.finishSubject(registration.id, claimed!.lease, [entries[0]!.id], GRACE)
        // the grace runs from the latest announcement (2 s after the first), once
        clock.advance(GRACE - 1)
        expect(await fanOut()).toEqual([])
        clock.advance(1)
        expect(await fanOut()).toEqual([registration.id])
        clock.advance(GRACE)
        expect(await fanOut()).toEqual([])
      })

      it('an announcement while the subject is leased makes it due again when that lease is finished', async () => {
        const peer = await harness.peer()
        await store.webhooks.announce('s-2')
        clock.advance(1_000)
        const [claimed] = await store.webhooks.claimSubjects(100, LEASE)
        // another writer announces (and writes) while the dispatcher holds the subject
        clock.advance(1_000)
        await peer.webhooks.announce('s-2')
        await store.webhooks.finishSubject('s-2', claimed!.lease, [], GRACE)
        expect(await fanOut(peer)).toEqual(['s-2'])
        clock.advance(GRACE - 1)
        expect(await fanOut(peer)).toEqual([])
        clock.advance(1)
        expect(await fanOut(peer)).toEqual(['s-2'])
        clock.advance(GRACE)
        expect(await fanOut(peer)).toEqual([])
      })

      it('keeps the announcement time across a lapsed lease and across entries left unhandled', async () => {
        const registration = await mustCreate(store, sampleRegistration())
        clock.advance(1_000)
        // claimed, then its holder died: due again when the lease ends, its grace still from the creation
        expect((await store.webhooks.claimSubjects(100, LEASE)).map((c) => c.item)).toEqual([registration.id])
        clock.advance(LEASE)
        // read but not handled: due again at once
        expect(await fanOut(store, false)).toEqual([registration.id])
        expect(await fanOut()).toEqual([registration.id])
        expect(await store.webhooks.readOutbox(registration.id)).toEqual([])
        clock.advance(GRACE - LEASE - 1_001)
        expect(await fanOut()).toEqual([])
        clock.advance(1)
        expect(await fanOut()).toEqual([registration.id])
        clock.advance(GRACE)
        expect(await fanOut()).toEqual([])
      })
    })

    describe('rate limiter', () => {
      const WINDOW_MS = 60_000

      it('counts a fixed window and reports when a slot frees', async () => {
        const results = []
        for (let i = 0; i < 4; i++) results.push(await store.rateLimiter.hit('reg:1', 3, WINDOW_MS))
        expect(results.map((r) => r.allowed)).toEqual([true, true, true, false])
        expect(results.map((r) => r.remaining)).toEqual([2, 1, 0, 0])
        expect(results.slice(0, 3).every((r) => r.retryAfterMs === 0)).toBe(true)
        expect(results[3]!.retryAfterMs).toBeGreaterThan(0)
        expect(results[3]!.retryAfterMs).toBeLessThanOrEqual(WINDOW_MS)

        // another key has its own window
        expect((await store.rateLimiter.hit('reg:2', 3, WINDOW_MS)).remaining).toBe(2)

        // a window ends and the next hit starts a new one (2 remaining, not 1)
        expect((await store.rateLimiter.hit('reg:3', 3, 300)).remaining).toBe(2)
        await elapse(350)
        const fresh = await store.rateLimiter.hit('reg:3', 3, 300)
        expect(fresh).toEqual({ allowed: true, remaining: 2, retryAfterMs: 0 })
      })

      it('refuses a limit that is not a positive integer, before counting', async () => {
        for (const limit of [0, -1, 1.5, Number.NaN]) {
          await expect(store.rateLimiter.hit('reg:bad', limit, WINDOW_MS)).rejects.toThrow(/limit/)
          await expect(store.rateLimiter.take('reg:bad', limit, WINDOW_MS)).rejects.toThrow(/limit/)
        }
        expect((await store.rateLimiter.hit('reg:bad', 2, WINDOW_MS)).remaining).toBe(1)
      })

      it('take counts only the slots it grants, so a lower limit never eats a higher one', async () => {
        const low = []
        for (let i = 0; i < 4; i++) low.push(await store.rateLimiter.take('upstream:a', 2, WINDOW_MS))
        expect(low.map((r) => r.allowed)).toEqual([true, true, false, false])
        expect(low[3]!.retryAfterMs).toBeGreaterThan(0)
        expect(low[3]!.retryAfterMs).toBeLessThanOrEqual(WINDOW_MS)
        // the refused takes were not counted: a higher limit still finds 2 taken of its 4
        const high = []
        for (let i = 0; i < 3; i++) high.push(await store.rateLimiter.take('upstream:a', 4, WINDOW_MS))
        expect(high.map((r) => [r.allowed, r.remaining])).toEqual([
          [true, 1],
          [true, 0],
          [false, 0],
        ])
        // a window ends and the next take starts a new one (1 remaining, not 0)
        expect((await store.rateLimiter.take('upstream:c', 2, 300)).remaining).toBe(1)
        await elapse(350)
        expect(await store.rateLimiter.take('upstream:c', 2, 300)).toEqual({
          allowed: true,
          remaining: 1,
          retryAfterMs: 0,
        })
      })

      it('counts concurrent takes exactly', async () => {
        const peer = await harness.peer()
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? store : peer).rateLimiter.take('upstream:b', 7, 60_000),
          ),
        )
        expect(results.filter((r) => r.allowed)).toHaveLength(7)
      })

      it('counts concurrent hits exactly', async () => {
        const peer = await harness.peer()
        const results = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            (i % 2 === 0 ? store : peer).rateLimiter.hit('ip:1', 10, 60_000),
          ),
        )
        expect(results.filter((r) => r.allowed)).toHaveLength(10)
        expect(results.map((r) => r.remaining).sort((a, b) => a - b)).toEqual([
          ...Array(21).fill(0),
          1,
          2,
          3,
          4,
          5,
          6,
          7,
          8,
          9,
        ])
      })
    })

    describe('audit', () => {
      it('appends and reads oldest first with an exclusive cursor', async () => {
        const ids: string[] = []
        for (let i = 0; i < 5; i++) {
          clock.advance(1000)
          ids.push(
            await store.audit.append({
              type: i === 0 ? 'consent.completed' : 'registration.revoked',
              actor: i === 0 ? 'user:t/o' : 'operator:alice',
              tenantId: 'tenant-1',
              ...(i % 2 === 0 ? { app: 'ms-graph-mail', registrationId: `reg-${i}` } : {}),
              detail: { index: i, reason: 'test', final: i === 4 },
            }),
          )
        }
        expect(new Set(ids).size).toBe(5)
        const first = await store.audit.read({ limit: 2 })
        expect(first.items.map((r) => r.id)).toEqual(ids.slice(0, 2))
        expect(first.items[0]).toEqual({
          id: ids[0],
          type: 'consent.completed',
          actor: 'user:t/o',
          tenantId: 'tenant-1',
          app: 'ms-graph-mail',
          registrationId: 'reg-0',
          detail: { index: 0, reason: 'test', final: false },
          at: iso(clock.now() - 4000),
        })
        expect(first.items[1]).not.toHaveProperty('app')
        expect(first.nextCursor).toBe(ids[1])
        const second = await store.audit.read({ limit: 2, cursor: first.nextCursor! })
        expect(second.items.map((r) => r.id)).toEqual(ids.slice(2, 4))
        const third = await store.audit.read({ limit: 2, cursor: second.nextCursor! })
        expect(third.items.map((r) => r.id)).toEqual(ids.slice(4))
        expect(third.nextCursor).toBeUndefined()
        expect((await store.audit.read({})).items).toHaveLength(5)
        expect((await store.audit.read({ cursor: ids[4]! })).items).toEqual([])
        await expect(store.audit.read({ cursor: 'bogus' })).rejects.toMatchObject({
          code: 'invalid_argument',
        })

        // newest first, before the cursor
        const newest = await store.audit.read({ limit: 2, order: 'desc' })
        expect(newest.items.map((r) => r.id)).toEqual([ids[4], ids[3]])
        expect(newest.items[0]).toMatchObject({
          type: 'registration.revoked',
          detail: { index: 4, final: true },
        })
        expect(newest.nextCursor).toBe(ids[3])
        const older = await store.audit.read({ limit: 2, order: 'desc', cursor: newest.nextCursor! })
        expect(older.items.map((r) => r.id)).toEqual([ids[2], ids[1]])
        const oldest = await store.audit.read({ limit: 2, order: 'desc', cursor: older.nextCursor! })
        expect(oldest.items.map((r) => r.id)).toEqual([ids[0]])
        expect(oldest.nextCursor).toBeUndefined()
        expect((await store.audit.read({ order: 'desc', cursor: ids[0]! })).items).toEqual([])
        await expect(store.audit.read({ order: 'desc', cursor: 'bogus' })).rejects.toMatchObject({
          code: 'invalid_argument',
        })
      })

      it('refuses a cursor past a stream id’s range; past either end of the log, an empty page', async () => {
        const MAX = '18446744073709551615'
        const older = await store.audit.append({ type: 'operator.signed_in', actor: 'operator:alice' })
        const newer = await store.audit.append({ type: 'operator.signed_out', actor: 'operator:alice' })
        for (const order of ['asc', 'desc'] as const) {
          for (const cursor of [
            '99999999999999999999-1',
            '18446744073709551616-0',
            `0-18446744073709551616`,
            `${'9'.repeat(60)}-${'9'.repeat(60)}`,
          ]) {
            await expect(store.audit.read({ cursor, order }), `${order} ${cursor}`).rejects.toMatchObject({
              code: 'invalid_argument',
              message: expect.stringContaining('out of range'),
            })
          }
        }
        const ids = async (cursor: string, order: 'asc' | 'desc') =>
          (await store.audit.read({ cursor, order })).items.map((r) => r.id)
        // an exclusive cursor with nothing beyond it
        expect(await ids(`${MAX}-${MAX}`, 'asc')).toEqual([])
        expect(await ids('0-0', 'desc')).toEqual([])
        expect(await ids(`${MAX}-0`, 'asc')).toEqual([])
        expect(await ids('0-1', 'desc')).toEqual([])
        // the same bounds read the whole log the other way; leading zeros are the same id
        expect(await ids(`${MAX}-${MAX}`, 'desc')).toEqual([newer, older])
        expect(await ids('0-0', 'asc')).toEqual([older, newer])
        expect(await ids(`0${older}`, 'asc')).toEqual([newer])
      })

      it('trims events past the retention period', async () => {
        const retained = await makeHarness({
          keyRing: rotation.ring,
          clock: clock.now,
          auditRetentionMs: 150,
        })
        extra.push(retained)
        const audit = retained.store.audit
        const old = await audit.append({ type: 'operator.signed_in', actor: 'operator:alice' })
        await elapse(300)
        const recent = await audit.append({ type: 'operator.signed_out', actor: 'operator:alice' })
        const items = (await audit.read({})).items
        expect(items.map((r) => r.id)).toEqual([recent])
        expect(items.map((r) => r.id)).not.toContain(old)
      })
    })

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined()
    })

    it('is contracted when created by this release: start-up and a finish change nothing', async () => {
      const made = [
        await mustCreate(store, sampleRegistration({ createdAt: iso(T0 + 1) })),
        await mustCreate(store, sampleRegistration({ kind: 'admin', createdAt: iso(T0 + 2) })),
      ]
      await store.registrations.update(made[1]!.id, 1, { status: 'needs_consent' })
      const before = await store.registrations.list({})
      const counts = await store.registrations.countByStatus()
      expect(await store.registrations.ensureIndexes()).toEqual({
        rebuilt: false,
        registrations: 0,
        upgrade: 'contracted',
      })
      expect(await store.registrations.upgradeState()).toBe('contracted')
      expect(await store.registrations.finishUpgrade()).toEqual({ registrations: 0, pruned: 0 })
      expect(await store.registrations.list({})).toEqual(before)
      expect(await store.registrations.countByStatus()).toEqual(counts)
      expect(await store.registrations.create({ ...made[0]!, id: randomUUID() }, sampleSecrets())).toEqual({
        created: false,
        existingId: made[0]!.id,
      })
    })
  })
}

/** A Redis store over `keyPrefix` and a raw client on the same server (for what a store never does). */
export interface RawRedisHarness {
  store: Store
  redis: RedisClient
  close(): Promise<void>
}

/**
 * Data of earlier releases (the previous one, marker "2", and the one before, no marker and a
 * tenants SET): simulated by rewriting the indexes as they left them. Every read answers right
 * before start-up, while the store stays expanded, and after the finish, which, run while statuses
 * change, leaves indexes that agree with the records.
 */
export function describeIndexRebuild(
  name: string,
  open: (keyPrefix: string) => Promise<RawRedisHarness>,
): void {
  describe(`index rebuild: ${name}`, () => {
    it('counts a tenant written before tenant summaries once, on its first listing, then keeps it', async () => {
      const keyPrefix = `ts${randomBytes(6).toString('hex')}:`
      const harness = await open(keyPrefix)
      try {
        const { store, redis } = harness
        const tenants = [randomUUID(), randomUUID()]
        const made: Registration[] = []
        for (let i = 0; i < 12; i++) {
          made.push(
            await mustCreate(
              store,
              sampleRegistration({
                tenantId: tenants[i % 2]!,
                app: i % 3 === 0 ? 'ms-defender-atp' : 'ms-graph-mail',
                cloud: i % 4 === 0 ? 'usgov' : 'global',
                createdAt: iso(T0 + i),
                consentedAt: iso(T0 + i * 1000),
              }),
            ),
          )
        }
        await store.registrations.update(made[2]!.id, 1, { status: 'needs_consent' })
        await store.registrations.update(made[3]!.id, 1, { status: 'revoked' })
        const apps = ['ms-graph-mail', 'ms-defender-atp']
        const before = await store.registrations.summarizeTenants(tenants)
        // the data as a version without summaries left it: one tenant without any, one with
        // changes counted after (only its generation: an earlier version of this code never wrote one)
        const keys = redisKeys(keyPrefix)
        await redis.del(keys.tenantSummary(tenants[0]!))
        await redis.del(keys.tenantSummary(tenants[1]!))
        await store.registrations.update(made[1]!.id, 1, { status: 'needs_consent' })
        expect(await redis.hget(keys.tenantSummary(tenants[1]!), 'v')).toBeNull()
        await expectSummariesWalked(store, tenants, apps)
        // repaired: the summaries are complete again and followed from now on
        for (const tenantId of tenants) expect(await redis.hget(keys.tenantSummary(tenantId), 'v')).toBe('1')
        expect((await store.registrations.summarizeTenants(tenants))[0]).toEqual(before[0])
        await store.registrations.update(made[0]!.id, 1, { status: 'revoked' })
        await store.registrations.update(made[1]!.id, 2, { status: 'active', consentedAt: iso(T0 + 99_000) })
        await mustCreate(store, sampleRegistration({ tenantId: tenants[0]!, createdAt: iso(T0 + 50) }))
        await expectSummariesWalked(store, tenants, apps)
      } finally {
        await harness.close()
      }
    })
    for (const earlier of [
      { marker: '2', what: 'the previous release (marker "2")' },
      { marker: undefined, what: 'the release before (no marker, tenants SET)' },
    ] as const) {
      it(`answers right from data of ${earlier.what} while expanded, during and after a concurrent finish`, async () => {
        const keyPrefix = `rb${randomBytes(6).toString('hex')}:`
        const writer = await open(keyPrefix)
        const reader = await open(keyPrefix)
        try {
          const tenants = [randomUUID(), randomUUID(), randomUUID()]
          const made: Array<Omit<Registration, 'version'>> = []
          for (let i = 0; i < 40; i++) {
            const registration = sampleRegistration({
              kind: i % 3 === 0 ? 'delegated' : 'admin',
              tenantId: tenants[i % 3]!,
              app: i % 12 === 0 ? 'ms-defender-atp' : 'ms-graph-mail',
              createdAt: iso(T0 + i * 1000),
            })
            made.push(registration)
            await mustCreate(writer.store, registration)
          }
          for (let i = 0; i < 8; i++)
            await writer.store.registrations.update(made[i]!.id, 1, { status: 'needs_consent' })
          for (let i = 8; i < 12; i++)
            await writer.store.registrations.update(made[i]!.id, 1, { status: 'revoked' })
          const ids = made.map((r) => r.id)
          const expected = { active: 28, needs_consent: 8, revoked: 4 }
          expect(await writer.store.registrations.countByStatus()).toEqual(expected)

          // the data as the earlier layout left it
          const keys = await toEarlierLayout(
            writer.redis,
            keyPrefix,
            await recorded(writer.store, ids),
            earlier.marker,
          )

          // a fresh instance reads right before start-up, from the earlier indexes
          const store = reader.store
          expect(await store.registrations.countByStatus()).toEqual(expected)
          expect((await store.registrations.listTenants({})).tenantIds).toEqual([...tenants].sort())
          // ms-defender-atp: registrations 0, 12, 24, 36, all of the first tenant
          expect((await store.registrations.listTenants({ app: 'ms-defender-atp' })).tenantIds).toEqual([
            tenants[0],
          ])
          await expectEveryListing(store, await recorded(writer.store, ids))
          // writes keep the earlier indexes exact: a new app, a status change
          const late = sampleRegistration({
            kind: 'admin',
            tenantId: tenants[1]!,
            app: 'ms-azure-log-analytics',
            createdAt: iso(T0 + 5500),
          })
          await mustCreate(writer.store, late)
          ids.push(late.id)
          await writer.store.registrations.update(made[30]!.id, 1, { status: 'needs_consent' })
          await writer.store.registrations.update(made[30]!.id, 2, { status: 'active' })
          await expectEveryListing(store, await recorded(writer.store, ids))

          // start-up leaves the store expanded (the previous release may still run on it): an older
          // store is indexed the previous release's way too and given its marker; nothing is dropped
          expect(await store.registrations.ensureIndexes()).toEqual(
            earlier.marker === undefined
              ? { rebuilt: true, registrations: 41, upgrade: 'expanded' }
              : { rebuilt: false, registrations: 0, upgrade: 'expanded' },
          )
          expect(await writer.redis.get(keys.indexes)).toBe('2')
          expect(await writer.redis.exists(keys.all, ...keys.statuses.slice(1))).toBeGreaterThan(0)
          expect(await store.registrations.upgradeState()).toBe('expanded')
          await expectEveryListing(store, await recorded(writer.store, ids))

          // the finish, while another instance changes statuses
          const [rebuild] = await Promise.all([
            store.registrations.finishUpgrade(),
            (async () => {
              for (let i = 12; i < 20; i++)
                await writer.store.registrations.update(made[i]!.id, 1, { status: 'needs_consent' })
              for (let i = 0; i < 4; i++)
                await writer.store.registrations.update(made[i]!.id, 2, { status: 'active' })
            })(),
          ])
          expect(rebuild).toEqual({ registrations: 41, pruned: 0 })
          expect(await store.registrations.upgradeState()).toBe('contracted')
          expect(await writer.redis.get(keys.indexes)).toBe('3')
          // the earlier indexes are gone
          const apps = ['ms-graph-mail', 'ms-defender-atp', 'ms-azure-log-analytics']
          const earlierKeys = [
            keys.all,
            keys.legacyTenants,
            ...keys.statuses,
            ...tenants.map((tenantId) => keys.tenant(tenantId)),
            ...apps.map((app) => keys.app(app)),
          ]
          expect(await writer.redis.exists(...earlierKeys)).toBe(0)
          const after = { active: 25, needs_consent: 12, revoked: 4 }
          expect(await store.registrations.countByStatus()).toEqual(after)
          expect(await writer.store.registrations.countByStatus()).toEqual(after)
          const now = await recorded(writer.store, ids)
          for (const i of made.keys()) expect(now[i]!.status, `registration ${i}`).toBe(statusAfter(i))
          await expectEveryListing(store, now)
          await expectEveryListing(writer.store, now, 5)
          // the indexes themselves agree with the records
          for (const app of apps) {
            for (const status of ['active', 'needs_consent', 'revoked'] as const) {
              const indexed = (await writer.redis.zrange(keys.appStatus(status, app), '0', '-1')).sort()
              const want = now
                .filter((r) => r.app === app && r.status === status)
                .map((r) => r.id)
                .sort()
              expect(indexed, `${app} ${status}`).toEqual(want)
              for (const tenantId of tenants) {
                const ofTenant = (
                  await writer.redis.zrange(keys.tenantStatus(status, app, tenantId), '0', '-1')
                ).sort()
                const wantOfTenant = now
                  .filter((r) => r.app === app && r.status === status && r.tenantId === tenantId)
                  .map((r) => r.id)
                  .sort()
                expect(ofTenant, `${app} ${status} ${tenantId}`).toEqual(wantOfTenant)
              }
            }
          }
          expect((await store.registrations.listTenants({ limit: 2 })).tenantIds).toEqual(
            [...tenants].sort().slice(0, 2),
          )
          expect(await store.registrations.ensureIndexes()).toEqual({
            rebuilt: false,
            registrations: 0,
            upgrade: 'contracted',
          })
          expect(await store.registrations.finishUpgrade()).toEqual({ registrations: 0, pruned: 0 })
          // tenant summaries agree with a walk (the finish has them recounted on reading)
          await expectSummariesWalked(store, tenants, apps)

          // an interrupted finish (or an instance of the previous release, not supported after it)
          // left a registration in the earlier indexes only: the next start-up indexes it and drops them
          const straggler = sampleRegistration({
            kind: 'admin',
            tenantId: tenants[2]!,
            createdAt: iso(T0 + 2500),
          })
          await mustCreate(writer.store, straggler)
          ids.push(straggler.id)
          await toEarlierLayout(writer.redis, keyPrefix, await recorded(writer.store, [straggler.id]), '3')
          expect((await listedIds(store, { tenantId: tenants[2]! }, 50)).includes(straggler.id)).toBe(false)
          expect(await store.registrations.ensureIndexes()).toEqual({
            rebuilt: false,
            registrations: 0,
            upgrade: 'contracted',
          })
          expect(await writer.redis.exists(keys.all, keys.tenant(tenants[2]!))).toBe(0)
          await expectEveryListing(store, await recorded(writer.store, ids))
        } finally {
          await writer.close()
          await reader.close()
        }
      })
    }
  })
}

/** The status of registration `i` of the rebuild test once every update has run. */
function statusAfter(i: number): Registration['status'] {
  if (i >= 8 && i < 12) return 'revoked'
  if ((i >= 4 && i < 8) || (i >= 12 && i < 20)) return 'needs_consent'
  return 'active'
}
