// A status change on a Redis Cluster writes the record, then moves its index entries (the `{idx}`
// slot) as a second command. These tests fail that second step (the `{idx}` node failing over,
// CLUSTERDOWN) or the journal write before it, and check that no such failure leaves listings,
// counts and tenant summaries stale for good: the retry that finds the record already changed
// moves the entries, a re-consent finds the registration that waits for it, and the background
// index maintenance of any instance repairs what nobody retries. Three ways to reach the two-step
// path: a single server seen as a Cluster (the audit's reproduction), a one-node Cluster, and a
// cluster-mode node behind a plain connection (a proxy refusing CROSSSLOT).
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { IndexRebuild } from '../../src/services/index-rebuild.js'
import { reactivateAdminRegistrations } from '../../src/services/registrations.js'
import { revokeRegistration } from '../../src/services/revocation.js'
import { MOVE_STATUS_COUNTED } from '../../src/store/redis/index-lua.js'
import { createRedisStore } from '../../src/store/redis.js'
import { createRedisConnection, type RedisClient, waitForReady } from '../../src/store/redis-connection.js'
import type { Store } from '../../src/store/types.js'
import { type RedisServerHandle, startSingleNodeCluster } from '../support/redis-server.js'
import { newKeyRing, sampleRegistration, sampleSecrets } from '../support/store-contract.js'

const log = pino({ level: 'silent' }) as unknown as FastifyBaseLogger
const HOUR_MS = 3_600_000

let clusterNode: RedisServerHandle | undefined
const clients: RedisClient[] = []

beforeAll(async () => {
  clusterNode = await startSingleNodeCluster()
})

afterAll(async () => {
  for (const client of clients.splice(0)) client.disconnect()
  await clusterNode?.destroy()
})

/** Faults to inject in a client's commands. */
interface Faults {
  /** Index moves (MOVE_STATUS_COUNTED) still to fail. */
  moves: number
  /** Writes of the pending-moves journal still to fail. */
  journal: number
}

/** A connection of one topology, plus whether it must be presented as a Cluster. */
type Topology = () => Promise<{ redis: RedisClient; asCluster: boolean }>

async function connected(redis: RedisClient): Promise<RedisClient> {
  clients.push(redis)
  await waitForReady(redis, 15_000)
  return redis
}

const TOPOLOGIES: Array<[string, Topology]> = [
  [
    'a single server seen as a Cluster',
    async () => ({
      redis: await connected(createRedisConnection({ url: inject('redisUrl') })),
      asCluster: true,
    }),
  ],
  [
    'a one-node Cluster',
    async () => ({
      redis: await connected(
        createRedisConnection({ clusterNodes: [{ host: clusterNode!.host, port: clusterNode!.port }] }),
      ),
      asCluster: false,
    }),
  ],
  [
    'a cluster-mode node behind a plain connection (a proxy refusing CROSSSLOT)',
    async () => ({
      redis: await connected(createRedisConnection({ url: clusterNode!.url })),
      asCluster: false,
    }),
  ],
]

/** `redis` with `faults` injected: the next index moves, or journal writes, fail as on a failover. */
function faulty(redis: RedisClient, asCluster: boolean, faults: Faults): RedisClient {
  return new Proxy(redis, {
    get(target, property) {
      if (property === 'isCluster' && asCluster) return true
      const value = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      if (property === 'evalsha') {
        return (sha: string, ...rest: unknown[]) => {
          if (sha === MOVE_STATUS_COUNTED.sha && faults.moves > 0) {
            faults.moves--
            return Promise.reject(new Error('CLUSTERDOWN The cluster is down'))
          }
          return value.call(target, sha, ...rest)
        }
      }
      if (property === 'zadd') {
        return (key: string, ...rest: unknown[]) => {
          if (key.endsWith('{idx}:moves') && faults.journal > 0) {
            faults.journal--
            return Promise.reject(new Error('CLUSTERDOWN The cluster is down'))
          }
          return value.call(target, key, ...rest)
        }
      }
      return value.bind(target)
    },
  }) as RedisClient
}

describe.each(TOPOLOGIES)(
  'a status change interrupted between the record and its index: %s',
  (_, topology) => {
    /** A store on a fresh key prefix whose client fails as `faults` says, its clock `now()`. */
    async function open(
      faults: Faults,
      now: () => number,
      keyPrefix = `m${randomBytes(6).toString('hex')}:`,
    ) {
      const { redis, asCluster } = await topology()
      const store = createRedisStore({
        redis: faulty(redis, asCluster, faults),
        keyRing: newKeyRing(),
        keyPrefix,
        clock: now,
      })
      return { store, redis, keyPrefix }
    }

    async function createAdmin(store: Store) {
      const registration = sampleRegistration({ kind: 'admin' })
      expect((await store.registrations.create(registration, sampleSecrets(false))).created).toBe(true)
      return registration
    }

    /** What listings, counts and the tenant summary say about one registration. */
    async function indexed(store: Store, registration: { id: string; tenantId: string; app: string }) {
      const listed = async (status: 'active' | 'needs_consent' | 'revoked') =>
        (await store.registrations.list({ status, tenantId: registration.tenantId })).items.map(
          (item) => item.id,
        )
      const [summary] = await store.registrations.summarizeTenants([registration.tenantId])
      return {
        record: (await store.registrations.getMeta(registration.id))?.status,
        active: await listed('active'),
        needs_consent: await listed('needs_consent'),
        revoked: await listed('revoked'),
        counts: await store.registrations.countByStatus(),
        summary: summary?.registrations,
      }
    }

    const revoke = (store: Store, id: string) =>
      revokeRegistration({ store, clock: Date.now, log }, id, {
        actor: { kind: 'operator', name: 'alice' },
        reason: 'offboarded',
      })

    /** What `indexed` says of a store whose one registration, `id`, is revoked. */
    const revokedOnly = (id: string) => ({
      record: 'revoked',
      active: [],
      needs_consent: [],
      revoked: [id],
      counts: { active: 0, needs_consent: 0, revoked: 1 },
      summary: { active: 0, needs_consent: 0, revoked: 1, total: 1 },
    })

    const needsConsent = () => ({
      status: 'needs_consent' as const,
      statusDetail: { code: 'AADSTS65001', at: new Date().toISOString() },
    })

    it('a re-consent re-activates a registration whose move to needs_consent failed', async () => {
      const faults = { moves: 0, journal: 0 }
      const { store } = await open(faults, Date.now)
      const registration = await createAdmin(store)
      faults.moves = 1
      await expect(store.registrations.update(registration.id, 1, needsConsent())).rejects.toThrow(
        /CLUSTERDOWN/,
      )
      expect((await store.registrations.getMeta(registration.id))?.status).toBe('needs_consent')
      // the tenant's administrator consents again: consent-completion re-activates what waits for it
      const reactivated = await reactivateAdminRegistrations(store, {
        app: registration.app,
        cloud: registration.cloud,
        tenantId: registration.tenantId,
        now: new Date().toISOString(),
      })
      expect(reactivated).toEqual([registration.id])
      expect(await indexed(store, registration)).toEqual({
        record: 'active',
        active: [registration.id],
        needs_consent: [],
        revoked: [],
        counts: { active: 1, needs_consent: 0, revoked: 0 },
        summary: { active: 1, needs_consent: 0, revoked: 0, total: 1 },
      })
    })

    it('revoking again moves the entry of a revocation whose move failed (already revoked)', async () => {
      const faults = { moves: 0, journal: 0 }
      const { store } = await open(faults, Date.now)
      const registration = await createAdmin(store)
      faults.moves = 1
      await expect(revoke(store, registration.id)).rejects.toThrow(/CLUSTERDOWN/)
      const again = await revoke(store, registration.id)
      expect(again.alreadyRevoked).toBe(true)
      expect(await indexed(store, registration)).toEqual(revokedOnly(registration.id))
    })

    it("another instance's index maintenance repairs a move nobody retries", async () => {
      const faults = { moves: 0, journal: 0 }
      let now = Date.now()
      const writer = await open(faults, () => now)
      const registration = await createAdmin(writer.store)
      faults.moves = 1
      // the writer's process dies right after this (nothing retries the status change)
      await expect(writer.store.registrations.update(registration.id, 1, needsConsent())).rejects.toThrow(
        /CLUSTERDOWN/,
      )
      now += HOUR_MS
      const peer = await open({ moves: 0, journal: 0 }, () => now, writer.keyPrefix)
      const maintenance = new IndexRebuild({ store: peer.store, logger: log, repairEveryMs: 50 })
      maintenance.start()
      try {
        await expect
          .poll(async () => (await peer.store.registrations.countByStatus()).needs_consent, {
            timeout: 10_000,
          })
          .toBe(1)
        await expect.poll(() => peer.redis.zcard(`${peer.keyPrefix}{idx}:moves`), { timeout: 10_000 }).toBe(0)
      } finally {
        await maintenance.stop()
      }
      expect(await indexed(peer.store, registration)).toEqual({
        record: 'needs_consent',
        active: [],
        needs_consent: [registration.id],
        revoked: [],
        counts: { active: 0, needs_consent: 1, revoked: 0 },
        summary: { active: 0, needs_consent: 1, revoked: 0, total: 1 },
      })
    })

    it('keeps a pending move while it is young, and forgets it once the record and index agree', async () => {
      const faults = { moves: 0, journal: 0 }
      let now = Date.now()
      const { store, redis, keyPrefix } = await open(faults, () => now)
      const registration = await createAdmin(store)
      faults.moves = 1
      await expect(store.registrations.update(registration.id, 1, needsConsent())).rejects.toThrow(
        /CLUSTERDOWN/,
      )
      // young: moved (a reader may need it now) but kept, as its writer may still be between its steps
      expect(await store.registrations.repairIndexes()).toBe(0)
      expect((await indexed(store, registration)).needs_consent).toEqual([registration.id])
      expect(await redis.zcard(`${keyPrefix}{idx}:moves`)).toBe(1)
      now += HOUR_MS
      expect(await store.registrations.repairIndexes()).toBe(1)
      expect(await redis.zcard(`${keyPrefix}{idx}:moves`)).toBe(0)
      // a status change that completes leaves nothing behind
      const current = await store.registrations.getMeta(registration.id)
      await store.registrations.update(registration.id, current!.version, {
        status: 'active',
        statusDetail: null,
      })
      expect(await redis.zcard(`${keyPrefix}{idx}:moves`)).toBe(0)
      expect((await indexed(store, registration)).active).toEqual([registration.id])
    })

    it('refuses a status change whose journal entry cannot be written, before touching the record', async () => {
      const faults = { moves: 0, journal: 0 }
      const { store } = await open(faults, Date.now)
      const registration = await createAdmin(store)
      faults.journal = 1
      await expect(store.registrations.update(registration.id, 1, needsConsent())).rejects.toThrow(
        /CLUSTERDOWN/,
      )
      expect(await indexed(store, registration)).toMatchObject({
        record: 'active',
        active: [registration.id],
        needs_consent: [],
      })
    })

    it('still revokes when the journal cannot be written: the record first, its entries moved after', async () => {
      const faults = { moves: 0, journal: 0 }
      const { store } = await open(faults, Date.now)
      const registration = await createAdmin(store)
      faults.journal = 1
      const revoked = await revoke(store, registration.id)
      expect(revoked.alreadyRevoked).toBe(false)
      expect(await indexed(store, registration)).toEqual(revokedOnly(registration.id))

      // Journal and move both failing: the revocation still holds (no token is served), the caller
      // is told of the failure, and its retry puts the entries right.
      const second = await createAdmin(store)
      faults.journal = 1
      faults.moves = 1
      await expect(revoke(store, second.id)).rejects.toThrow(/CLUSTERDOWN/)
      expect((await store.registrations.getMeta(second.id))?.status).toBe('revoked')
      expect((await revoke(store, second.id)).alreadyRevoked).toBe(true)
      expect((await indexed(store, second)).revoked).toContain(second.id)
    })
  },
)
