// The Store contract against every implementation we ship: memory, Redis on the shared test
// server, and Redis as a one-node Cluster (which answers CROSSSLOT to any command or script that
// spans hash slots, so the whole suite doubles as a Cluster-safety check).
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, inject } from 'vitest'
import { createMemoryStore } from '../../src/store/memory.js'
import { createRedisStore } from '../../src/store/redis.js'
import {
  createRedisConnection,
  type RedisConnectionOptions,
  waitForReady,
} from '../../src/store/redis-connection.js'
import type { Store } from '../../src/store/types.js'
import { type RedisServerHandle, startSingleNodeCluster } from '../support/redis-server.js'
import {
  describeIndexRebuild,
  describeStoreContract,
  newKeyRing,
  type RawRedisHarness,
  type StoreHarness,
  type StoreHarnessOptions,
} from '../support/store-contract.js'
import { describeRollingUpgrade } from '../support/upgrade-contract.js'

describeStoreContract('memory', async (options) => {
  const store = createMemoryStore(options)
  return { store, peer: async () => store, close: () => store.close() }
})

/** Stores over one fresh key prefix; `peer()` opens another connection (another broker instance). */
function redisHarness(connection: () => RedisConnectionOptions) {
  return async (options: StoreHarnessOptions): Promise<StoreHarness> => {
    const keyPrefix = `t${randomBytes(6).toString('hex')}:`
    const stores: Store[] = []
    const open = async () => {
      const redis = createRedisConnection(connection())
      await waitForReady(redis, 10_000)
      const store = createRedisStore({ redis, keyPrefix, ...options })
      stores.push(store)
      return store
    }
    return {
      store: await open(),
      peer: open,
      close: async () => {
        await Promise.all(stores.map((store) => store.close()))
      },
    }
  }
}

describeStoreContract(
  'redis',
  redisHarness(() => ({ url: inject('redisUrl') })),
)

let clusterNode: RedisServerHandle | undefined
beforeAll(async () => {
  clusterNode = await startSingleNodeCluster()
})
afterAll(async () => {
  await clusterNode?.destroy()
})

describeStoreContract(
  'redis cluster (one node)',
  redisHarness(() => {
    if (clusterNode === undefined) throw new Error('cluster node not started')
    return { clusterNodes: [{ host: clusterNode.host, port: clusterNode.port }] }
  }),
)

// A sharded Redis behind one endpoint (a cluster proxy) looks like a single server to the client
// but refuses keys of two hash slots in one command: a plain connection to a cluster-mode node.
describeStoreContract(
  'redis cluster node behind a plain connection (as behind a proxy)',
  redisHarness(() => {
    if (clusterNode === undefined) throw new Error('cluster node not started')
    return { url: clusterNode.url }
  }),
)

/** A store and a raw client of its own over `keyPrefix`, for the index rebuild. */
function rawRedisHarness(connection: () => RedisConnectionOptions) {
  return async (keyPrefix: string): Promise<RawRedisHarness> => {
    const redis = createRedisConnection(connection())
    await waitForReady(redis, 10_000)
    const store = createRedisStore({ redis, keyPrefix, keyRing: newKeyRing('k1'), clock: Date.now })
    return { store, redis, close: () => store.close() }
  }
}

describeIndexRebuild(
  'redis',
  rawRedisHarness(() => ({ url: inject('redisUrl') })),
)

describeRollingUpgrade(
  'redis',
  rawRedisHarness(() => ({ url: inject('redisUrl') })),
)

describeRollingUpgrade(
  'redis cluster (one node)',
  rawRedisHarness(() => {
    if (clusterNode === undefined) throw new Error('cluster node not started')
    return { clusterNodes: [{ host: clusterNode.host, port: clusterNode.port }] }
  }),
)

describeIndexRebuild(
  'redis cluster (one node)',
  rawRedisHarness(() => {
    if (clusterNode === undefined) throw new Error('cluster node not started')
    return { clusterNodes: [{ host: clusterNode.host, port: clusterNode.port }] }
  }),
)

describeIndexRebuild(
  'redis cluster node behind a plain connection (as behind a proxy)',
  rawRedisHarness(() => {
    if (clusterNode === undefined) throw new Error('cluster node not started')
    return { url: clusterNode.url }
  }),
)
