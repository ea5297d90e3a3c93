// Picks the store from configuration: Redis (any topology) in production, memory for the demo.
import type { Config } from '../config.js'
import { createMemoryStore } from './memory.js'
import { createRedisStore } from './redis.js'
import { createRedisConnection } from './redis-connection.js'
import type { Store } from './types.js'

/** Hooks of the store built from configuration. */
export interface StoreFactoryOptions {
  /** Connection errors of the Redis client (it reconnects by itself); for logs and metrics. */
  onRedisError?: (error: Error) => void
}

/** The configured store: Redis when `config.redis` is set, else memory (the demo). */
export function createStoreFromConfig(config: Config, options: StoreFactoryOptions = {}): Store {
  const redisConfig = config.redis
  if (redisConfig === undefined) return createMemoryStore({ keyRing: config.keyRing })
  const redis = createRedisConnection({
    ...(redisConfig.url === undefined ? {} : { url: redisConfig.url }),
    ...(redisConfig.sentinels === undefined ? {} : { sentinels: [...redisConfig.sentinels] }),
    ...(redisConfig.sentinelName === undefined ? {} : { sentinelName: redisConfig.sentinelName }),
    ...(redisConfig.sentinelPassword === undefined ? {} : { sentinelPassword: redisConfig.sentinelPassword }),
    ...(redisConfig.clusterNodes === undefined ? {} : { clusterNodes: [...redisConfig.clusterNodes] }),
    ...(redisConfig.username === undefined ? {} : { username: redisConfig.username }),
    ...(redisConfig.password === undefined ? {} : { password: redisConfig.password }),
    ...(redisConfig.tls === true ? { tls: true } : {}),
    ...(options.onRedisError === undefined ? {} : { onError: options.onRedisError }),
    connectionName: 'consent-broker',
  })
  return createRedisStore({
    redis,
    keyRing: config.keyRing,
    keyPrefix: redisConfig.keyPrefix,
    auditMaxLen: config.auditMaxLen,
  })
}
