// The key rotation's batches, in process and deterministic (no timing): a pass stopped mid-way
// (shutdown) or whose instance died mid-batch resumes on another instance at the last saved batch,
// on memory, Redis and a one-node Cluster; a record changed between a batch's read and its write
// is read again, never overwritten with what was read (Redis: the client is wrapped to write
// concurrently at that moment), and one that keeps changing counts as failed, left as written.
import { randomBytes, randomUUID } from 'node:crypto'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { KeyRing, type MasterKey } from '../../src/crypto/envelope.js'
import { createLogger } from '../../src/logger.js'
import { KeyRotation } from '../../src/services/key-rotation.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { redisKeys } from '../../src/store/redis/keys.js'
import { createRedisStore } from '../../src/store/redis.js'
import {
  createRedisConnection,
  type RedisClient,
  type RedisConnectionOptions,
  waitForReady,
} from '../../src/store/redis-connection.js'
import type { Registration, RegistrationSecrets, RegistrationStore, Store } from '../../src/store/types.js'
import { type RedisServerHandle, startSingleNodeCluster } from '../support/redis-server.js'
import { masterKey, swappableKeyRing, type TestClock, testClock } from '../support/store-contract.js'

const OPERATOR = { kind: 'operator', name: 'ops' } as const
const log = createLogger('silent')

interface Harness {
  /** A store over the shared data (another broker instance on Redis; memory: the one store). */
  instance(keyRing: KeyRing, wrap?: (redis: RedisClient) => RedisClient): Promise<Store>
  /** What the rotation lock's lease running out looks like (after `clock` passed it). */
  expireRotationLock(): Promise<void>
  close(): Promise<void>
}

type HarnessFactory = (clock: TestClock) => Promise<Harness>

function redisHarness(connection: () => RedisConnectionOptions): HarnessFactory {
  return async (clock) => {
    const keyPrefix = `t${randomBytes(6).toString('hex')}:`
    const stores: Store[] = []
    const raw = createRedisConnection(connection())
    await waitForReady(raw, 10_000)
    return {
      async instance(keyRing, wrap) {
        const redis = createRedisConnection(connection())
        await waitForReady(redis, 10_000)
        const store = createRedisStore({
          redis: wrap?.(redis) ?? redis,
          keyPrefix,
          keyRing,
          clock: clock.now,
        })
        stores.push(store)
        return store
      },
      async expireRotationLock() {
        await raw.del(redisKeys(keyPrefix).lock('key-rotation'))
      },
      async close() {
        await Promise.all(stores.map((store) => store.close()))
        await raw.quit()
      },
    }
  }
}

const memoryHarness: HarnessFactory = async (clock) => {
  let store: Store | undefined
  return {
    async instance(keyRing) {
      store ??= createMemoryStore({ keyRing, clock: clock.now })
      return store
    },
    // the memory lock expires on the store's clock, which the test advanced
    async expireRotationLock() {},
    async close() {
      await store?.close()
    },
  }
}

/** `store` with some of its registrations' methods replaced (the rest as they are). */
function withRegistrations(store: Store, replace: Partial<RegistrationStore>): Store {
  const registrations = new Proxy(store.registrations, {
    get(target, property) {
      const replaced = (replace as Record<string | symbol, unknown>)[property]
      if (replaced !== undefined) return replaced
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  return { ...store, registrations }
}

/**
 * A client whose HGETALL of registration `id`'s record runs `after` once the read is back, before
 * answering with what it read (a concurrent write lands between the read and the write).
 */
function onRead(redis: RedisClient, id: string, after: (reads: number) => Promise<void>): RedisClient {
  const key = redisKeys('').reg(id) // the store's key ends with it (after the key prefix)
  let reads = 0
  return new Proxy(redis, {
    get(target, property) {
      if (property === 'hgetall') {
        return async (readKey: string) => {
          const stored = await target.hgetall(readKey)
          if (readKey.endsWith(key)) await after(++reads)
          return stored
        }
      }
      const value: unknown = Reflect.get(target, property, target)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

interface Seeded {
  registration: Registration
  secrets: RegistrationSecrets
}

async function seed(store: Store, count: number): Promise<Seeded[]> {
  const out: Seeded[] = []
  for (let from = 0; from < count; from += 50) {
    const made = await Promise.all(
      Array.from({ length: Math.min(50, count - from) }, async (_, i) => {
        const delegated = (from + i) % 3 === 0
        const at = new Date(Date.UTC(2026, 0, 1) + from + i).toISOString()
        const secrets: RegistrationSecrets = {
          key: randomBytes(32).toString('base64'),
          ...(delegated ? { refreshToken: `rt-${randomBytes(16).toString('hex')}` } : {}),
        }
        const result = await store.registrations.create(
          {
            id: randomUUID(),
            app: delegated ? 'ms-graph-mail-listener' : 'ms-graph-user',
            cloud: 'global',
            tenantId: randomUUID(),
            kind: delegated ? 'delegated' : 'admin',
            ...(delegated ? { userOid: randomUUID(), userName: `user${from + i}@example.test` } : {}),
            status: 'active',
            createdAt: at,
            updatedAt: at,
            consentedAt: at,
          },
          secrets,
        )
        if (!result.created) throw new Error('seed registration not created')
        return { registration: result.registration, secrets }
      }),
    )
    out.push(...made)
  }
  return out
}

/** Every seeded registration opens, with `keyRing`'s keys alone, to what was seeded. */
async function expectAllOpen(store: Store, seeded: readonly Seeded[]): Promise<void> {
  for (const { registration, secrets } of seeded) {
    expect((await store.registrations.get(registration.id))?.secrets).toEqual(secrets)
  }
}

let clusterNode: RedisServerHandle | undefined
beforeAll(async () => {
  clusterNode = await startSingleNodeCluster()
})
afterAll(async () => {
  await clusterNode?.destroy()
})

const topologies: Array<[string, HarnessFactory]> = [
  ['memory', memoryHarness],
  ['redis', redisHarness(() => ({ url: inject('redisUrl') }))],
  [
    'redis cluster (one node)',
    redisHarness(() => {
      if (clusterNode === undefined) throw new Error('cluster node not started')
      return { clusterNodes: [{ host: clusterNode.host, port: clusterNode.port }] }
    }),
  ],
]

describe.each(topologies)('key rotation batches: %s', (_name, makeHarness) => {
  let harness: Harness
  let clock: TestClock
  let k1: MasterKey
  let k2: MasterKey
  let ring: ReturnType<typeof swappableKeyRing>

  const rotationOn = (store: Store) =>
    new KeyRotation({ store, keyRing: ring.ring, log, clock: clock.now, batchSize: 50 })

  afterEach(async () => {
    await harness.close()
  })

  const setUp = async (count: number) => {
    clock = testClock()
    harness = await makeHarness(clock)
    k1 = masterKey('k1')
    k2 = masterKey('k2')
    ring = swappableKeyRing(new KeyRing([k1]))
    const seeded = await seed(await harness.instance(ring.ring), count)
    // every instance now runs with k2 first and k1 still listed
    ring.swap(new KeyRing([k2, k1]))
    return seeded
  }

  it('a pass stopped mid-way (shutdown) resumes on another instance at the batch it stopped after', async () => {
    const seeded = await setUp(250)
    const first = await harness.instance(ring.ring)
    let scans = 0
    let a: KeyRotation | undefined
    const scanning = withRegistrations(first, {
      scanIds: (cursor, count) => {
        // the third scan: the app shuts down while that batch is processed
        if (++scans === 3) void a?.stop()
        return first.registrations.scanIds(cursor, count)
      },
    })
    a = rotationOn(scanning)
    expect((await a.start(OPERATOR)).started).toBe(true)
    await a.settled()

    const b = rotationOn(await harness.instance(ring.ring))
    expect(await b.status()).toMatchObject({ state: 'interrupted', scanned: 150, resealed: 150, failed: 0 })
    const resumed = await b.start(OPERATOR)
    expect(resumed).toMatchObject({ started: true, status: { state: 'running', scanned: 150 } })
    await b.settled()
    expect(await b.status()).toMatchObject({
      state: 'completed',
      scanned: 250,
      resealed: 250,
      unchanged: 0,
      failed: 0,
    })

    // the old key can go: everything opens with k2 alone
    ring.swap(new KeyRing([k2]))
    await expectAllOpen(await harness.instance(ring.ring), seeded)
  })

  it('a pass whose instance died mid-batch resumes at the last saved batch; the batch redone counts as unchanged', async () => {
    const seeded = await setUp(250)
    const first = await harness.instance(ring.ring)
    let batches = 0
    let died: () => void = () => undefined
    const death = new Promise<void>((resolve) => (died = resolve))
    const dying = withRegistrations(first, {
      resealBatch: async (ids) => {
        const outcomes = await first.registrations.resealBatch(ids)
        if (++batches < 3) return outcomes
        // the third batch is re-sealed in Redis, then the process is gone: nothing more happens
        died()
        return new Promise(() => undefined)
      },
    })
    const a = rotationOn(dying)
    expect((await a.start(OPERATOR)).started).toBe(true)
    await death

    const b = rotationOn(await harness.instance(ring.ring))
    // its lease still runs: nobody else may start a pass
    expect(await b.start(OPERATOR)).toMatchObject({ started: false, status: { state: 'running' } })
    clock.advance(61_000)
    await harness.expireRotationLock()
    expect(await b.status()).toMatchObject({ state: 'interrupted', scanned: 100, resealed: 100 })
    expect(await b.start(OPERATOR)).toMatchObject({ started: true, status: { scanned: 100 } })
    await b.settled()
    expect(await b.status()).toMatchObject({
      state: 'completed',
      scanned: 250,
      resealed: 200,
      unchanged: 50,
      failed: 0,
    })
    ring.swap(new KeyRing([k2]))
    await expectAllOpen(await harness.instance(ring.ring), seeded)
  })
})

describe.each(topologies.slice(1))(
  'key rotation batches under concurrent writes: %s',
  (_name, makeHarness) => {
    let harness: Harness
    afterEach(async () => {
      await harness.close()
    })

    it('a record changed between the batch read and its write is read again, never overwritten', async () => {
      const clock = testClock()
      harness = await makeHarness(clock)
      const k1 = masterKey('k1')
      const k2 = masterKey('k2')
      const seeded = await seed(await harness.instance(new KeyRing([k1])), 120)
      const target = seeded.find((s) => s.secrets.refreshToken !== undefined && seeded.indexOf(s) > 60)!
      const id = target.registration.id
      // another instance (already on k2) writes a new refresh token while the batch is in flight
      const writer = await harness.instance(new KeyRing([k2, k1]))
      let reads = 0
      const rotating = await harness.instance(new KeyRing([k2, k1]), (redis) =>
        onRead(redis, id, async (n) => {
          reads = n
          if (n !== 1) return
          const current = await writer.registrations.getMeta(id)
          const updated = await writer.registrations.update(
            id,
            current!.version,
            {},
            { refreshToken: 'rt-concurrent' },
          )
          expect(updated).not.toBeNull()
        }),
      )
      const rotation = new KeyRotation({
        store: rotating,
        keyRing: new KeyRing([k2, k1]),
        log,
        clock: clock.now,
        batchSize: 50,
      })
      await rotation.start(OPERATOR)
      await rotation.settled()
      expect(reads).toBe(2) // read, lost the write to the concurrent one, read again
      expect(await rotation.status()).toMatchObject({
        state: 'completed',
        scanned: 120,
        resealed: 120,
        failed: 0,
      })
      const after = await harness.instance(new KeyRing([k2]))
      expect((await after.registrations.get(id))?.secrets).toEqual({
        key: target.secrets.key,
        refreshToken: 'rt-concurrent',
      })
      await expectAllOpen(
        after,
        seeded.filter((s) => s !== target),
      )
    })

    it('a record that keeps changing under the re-seal is counted failed and keeps what was written', async () => {
      const clock = testClock()
      harness = await makeHarness(clock)
      const k1 = masterKey('k1')
      const k2 = masterKey('k2')
      const seeded = await seed(await harness.instance(new KeyRing([k1])), 6)
      const target = seeded[0]! // delegated: it has a refresh token
      const id = target.registration.id
      // an instance still on k1 (it missed the restart) keeps writing new refresh tokens
      const stale = await harness.instance(new KeyRing([k1]))
      const resealer = await harness.instance(new KeyRing([k2, k1]), (redis) =>
        onRead(redis, id, async (n) => {
          const current = await stale.registrations.getMeta(id)
          await stale.registrations.update(id, current!.version, {}, { refreshToken: `rt-write-${n}` })
        }),
      )
      const outcomes = await resealer.registrations.resealBatch(seeded.map((s) => s.registration.id))
      expect(outcomes.map((o) => o.outcome)).toEqual([
        'failed',
        'resealed',
        'resealed',
        'resealed',
        'resealed',
        'resealed',
      ])
      const failed = outcomes[0]!
      expect(failed.outcome === 'failed' && failed.error.message).toBe(
        `registration ${id}: reseal kept racing with concurrent writes`,
      )
      const reader = await harness.instance(new KeyRing([k2, k1]))
      expect((await reader.registrations.get(id))?.secrets).toEqual({
        key: target.secrets.key,
        refreshToken: 'rt-write-5',
      })
      await expectAllOpen(await harness.instance(new KeyRing([k2])), seeded.slice(1))
    })
  },
)
