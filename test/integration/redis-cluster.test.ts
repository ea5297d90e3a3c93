// The Store contract on a real three-master Redis Cluster (redis-cli --cluster create): keys of a
// registration, its indexes, token cache, locks and audit land on different masters, so every
// script and multi-key command must stay in one hash slot (CROSSSLOT otherwise) and the client must
// follow MOVED redirections. The suite is the same one memory and single-server Redis pass. A
// status change, which writes the record and then its index entries on another master, is failed
// between the two, and completed afterwards.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startEmulator } from '../../emulator/server.js'
import { IndexRebuild } from '../../src/services/index-rebuild.js'
import { revokeRegistration } from '../../src/services/revocation.js'
import { MOVE_STATUS_COUNTED } from '../../src/store/redis/index-lua.js'
import { createRedisStore } from '../../src/store/redis.js'
import { createRedisConnection, waitForReady } from '../../src/store/redis-connection.js'
import type { Store } from '../../src/store/types.js'
import { consentViaEmulator, listenOnConfig } from '../support/broker.js'
import { testConfig } from '../support/config.js'
import { type RedisClusterHandle, startRedisCluster } from '../support/redis-cluster.js'
import {
  describeIndexRebuild,
  describeStoreContract,
  newKeyRing,
  type StoreHarness,
  type StoreHarnessOptions,
  sampleRegistration,
  sampleSecrets,
} from '../support/store-contract.js'
import { describeRollingUpgrade } from '../support/upgrade-contract.js'
import { XsoarClient } from '../support/xsoar-client.js'

let cluster: RedisClusterHandle | undefined
const silent = pino({ level: 'silent' }) as unknown as FastifyBaseLogger

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3 })
}, 60_000)

afterAll(async () => {
  await cluster?.destroy()
})

async function openStore(options: StoreHarnessOptions & { keyPrefix: string }): Promise<Store> {
  if (cluster === undefined) throw new Error('cluster not started')
  const redis = createRedisConnection({ clusterNodes: [...cluster.nodes] })
  await waitForReady(redis, 15_000)
  return createRedisStore({ redis, ...options })
}

describeStoreContract('redis cluster (3 masters)', async (options): Promise<StoreHarness> => {
  const keyPrefix = `c${randomBytes(6).toString('hex')}:`
  const stores: Store[] = [await openStore({ ...options, keyPrefix })]
  return {
    store: stores[0]!,
    peer: async () => {
      const store = await openStore({ ...options, keyPrefix })
      stores.push(store)
      return store
    },
    close: async () => {
      await Promise.all(stores.map((store) => store.close()))
    },
  }
})

/** A store and a raw client of its own on the three-master cluster. */
async function rawClusterHarness(keyPrefix: string) {
  const store = await openStore({ keyRing: newKeyRing('k1'), clock: Date.now, keyPrefix })
  if (cluster === undefined) throw new Error('cluster not started')
  const redis = createRedisConnection({ clusterNodes: [...cluster.nodes] })
  await waitForReady(redis, 15_000)
  return {
    store,
    redis,
    close: async () => {
      await store.close()
      redis.disconnect()
    },
  }
}

describeRollingUpgrade('redis cluster (3 masters)', rawClusterHarness)

describeIndexRebuild('redis cluster (3 masters)', rawClusterHarness)

describe('redis cluster (3 masters): the data really spreads', () => {
  it('is a healthy three-master cluster with the slots split', async () => {
    const info = await cluster!.clusterInfo()
    expect(info).toContain('cluster_state:ok')
    expect(info).toContain('cluster_known_nodes:3')
    expect(info).toContain('cluster_size:3')
  })

  it('stores registrations on every master and reads them all back through one client', async () => {
    const keyPrefix = `s${randomBytes(6).toString('hex')}:`
    const store = await openStore({ keyRing: newKeyRing('k1'), clock: Date.now, keyPrefix })
    try {
      const created = []
      for (let i = 0; i < 48; i++) {
        const registration = sampleRegistration({ kind: 'admin' })
        const secrets = sampleSecrets(false)
        const result = await store.registrations.create(registration, secrets)
        expect(result.created).toBe(true)
        created.push({ id: registration.id, key: secrets.key })
      }
      // Owners of the record keys: with 48 random ids over 3 masters, all three are used (the
      // chance that one master gets none is 3·(2/3)^48 ≈ 1e-8).
      const owners = new Set<number>()
      for (const { id } of created) owners.add(await cluster!.ownerOf(`${keyPrefix}reg:{${id}}`))
      expect(owners.size).toBe(3)
      for (const { id, key } of created) {
        expect((await store.registrations.get(id))?.secrets.key).toBe(key)
      }
      const page = await store.registrations.list({ limit: 500 })
      expect(page.items.map((item) => item.id).sort()).toEqual(created.map((c) => c.id).sort())
    } finally {
      await store.close()
    }
  })
})

describe('redis cluster (3 masters): auto-pipelining', () => {
  it('queues the commands of one tick per node and answers each from its own master', async () => {
    const redis = createRedisConnection({ clusterNodes: [...cluster!.nodes] })
    await waitForReady(redis, 15_000)
    try {
      const prefix = `p${randomBytes(6).toString('hex')}:`
      // 60 hash tags over 3 masters: every master owns some (none missing: 3·(2/3)^60 ≈ 1e-10).
      const keys = Array.from({ length: 60 }, (_, i) => `${prefix}{k${i}}`)
      const owners = new Set(await Promise.all(keys.map((key) => cluster!.ownerOf(key))))
      expect(owners.size).toBe(3)
      const writes = keys.map((key, i) => redis.set(key, String(i), 'PX', 60_000))
      expect(redis.autoPipelineQueueSize).toBe(keys.length)
      expect(await Promise.all(writes)).toEqual(keys.map(() => 'OK'))
      expect(await Promise.all(keys.map((key) => redis.get(key)))).toEqual(keys.map((_, i) => String(i)))
    } finally {
      await redis.quit()
    }
  })
})

describe('redis cluster (3 masters): a status change whose index move fails', () => {
  it('is completed by the retry that finds it done, or by the index maintenance of another instance', async () => {
    const keyPrefix = `f${randomBytes(6).toString('hex')}:`
    let failMoves = 0
    let now = Date.now()
    const options = { keyRing: newKeyRing('k1'), clock: () => now, keyPrefix }
    const redis = createRedisConnection({ clusterNodes: [...cluster!.nodes] })
    await waitForReady(redis, 15_000)
    // the `{idx}` master failing over just after the record's write: its next move is refused
    const failing = new Proxy(redis, {
      get(target, property) {
        const value = Reflect.get(target, property, target)
        if (property === 'evalsha' && typeof value === 'function') {
          return (sha: string, ...rest: unknown[]) => {
            if (sha === MOVE_STATUS_COUNTED.sha && failMoves > 0) {
              failMoves--
              return Promise.reject(new Error('CLUSTERDOWN The cluster is down'))
            }
            return value.call(target, sha, ...rest)
          }
        }
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const store = createRedisStore({ redis: failing, ...options })
    const peer = await openStore(options)
    try {
      // registrations whose record is on another master than the `{idx}` slot
      const idxOwner = await cluster!.ownerOf(`${keyPrefix}{idx}:moves`)
      const elsewhere = async () => {
        for (;;) {
          const registration = sampleRegistration({ kind: 'admin' })
          if ((await cluster!.ownerOf(`${keyPrefix}reg:{${registration.id}}`)) === idxOwner) continue
          expect((await store.registrations.create(registration, sampleSecrets(false))).created).toBe(true)
          return registration
        }
      }
      const revoked = await elsewhere()
      const waiting = await elsewhere()
      const deps = { store, clock: () => now, log: silent }
      const revocation = { actor: { kind: 'operator', name: 'alice' } as const, reason: 'offboarded' }
      failMoves = 1
      await expect(revokeRegistration(deps, revoked.id, revocation)).rejects.toThrow(/CLUSTERDOWN/)
      expect((await revokeRegistration(deps, revoked.id, revocation)).alreadyRevoked).toBe(true)
      expect((await store.registrations.list({ status: 'revoked' })).items.map((r) => r.id)).toEqual([
        revoked.id,
      ])

      failMoves = 1
      const detail = { code: 'AADSTS65001', at: new Date(now).toISOString() }
      await expect(
        store.registrations.update(waiting.id, 1, { status: 'needs_consent', statusDetail: detail }),
      ).rejects.toThrow(/CLUSTERDOWN/)
      // nobody retries it: another instance's index maintenance, once the change is minutes old
      now += 3_600_000
      const maintenance = new IndexRebuild({
        store: peer,
        logger: silent,
        repairEveryMs: 50,
      })
      maintenance.start()
      try {
        await expect.poll(() => redis.zcard(`${keyPrefix}{idx}:moves`), { timeout: 15_000 }).toBe(0)
      } finally {
        await maintenance.stop()
      }
      expect((await peer.registrations.list({ status: 'needs_consent' })).items.map((r) => r.id)).toEqual([
        waiting.id,
      ])
      expect(await peer.registrations.countByStatus()).toEqual({ active: 0, needs_consent: 1, revoked: 1 })
      const [summary] = await peer.registrations.summarizeTenants([waiting.tenantId])
      expect(summary?.registrations).toEqual({ active: 0, needs_consent: 1, revoked: 0, total: 1 })
    } finally {
      await store.close()
      await peer.close()
    }
  })
})

describe('the broker on the cluster (REDIS_CLUSTER_NODES, production store factory)', () => {
  it('completes consents and issues tokens', async () => {
    const emulator = await startEmulator({ port: 0 })
    const config = testConfig({
      authorityUrl: emulator.url,
      env: {
        UNSAFE_MEMORY_STORE: '',
        REDIS_CLUSTER_NODES: cluster!.nodes.map(({ host, port }) => `${host}:${port}`).join(','),
        REDIS_KEY_PREFIX: `b${randomBytes(4).toString('hex')}:`,
      },
    })
    const broker = await listenOnConfig(config)
    try {
      const url = `${broker.url}/obtain-token`
      for (const [slug, username] of [
        ['ms-graph-mail', 'admin@contoso.example'],
        ['ms-graph-mail-listener', 'user@fabrikam.example'],
      ] as const) {
        const values = await consentViaEmulator(broker.app, { slug, username })
        const client = new XsoarClient({ ...values, appName: slug, urlOverride: url })
        for (let i = 0; i < 3; i++) {
          const answer = await client.getAccessToken()
          expect(answer.status, `${slug}: ${answer.body}`).toBe(200)
        }
      }
      expect((await broker.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200)
    } finally {
      await broker.close()
      await emulator.close()
    }
  })
})
