// The Redis part of the environment: one topology (REDIS_URL, REDIS_SENTINELS or
// REDIS_CLUSTER_NODES), its credentials and TLS, and the key prefix; or none, for the memory store
// of the demo, only when UNSAFE_MEMORY_STORE says so.
import type { EnvReader } from './env-reader.js'
import type { RedisConfig } from './types.js'

/** The Redis topology and credentials; undefined = the memory store (only when explicitly allowed). */
export function readRedis(read: EnvReader): RedisConfig | undefined {
  const { problems } = read
  const keyPrefix = read.str('REDIS_KEY_PREFIX') ?? 'cb:'
  // Hash tags (`{…}`) in the prefix would move keys to other slots and break every script on a
  // Cluster; the store refuses such a prefix, so it is a configuration problem here.
  if (/[{}]/.test(keyPrefix)) problems.push('REDIS_KEY_PREFIX: must not contain { or } (hash tags)')
  const redisUrl = read.str('REDIS_URL')
  const sentinels = read.hostPorts('REDIS_SENTINELS')
  const clusterNodes = read.hostPorts('REDIS_CLUSTER_NODES')
  const topologies = [redisUrl, sentinels, clusterNodes].filter((t) => t !== undefined).length
  if (topologies > 1) {
    problems.push('REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES: set exactly one Redis topology')
  }
  let redis: RedisConfig | undefined
  if (redisUrl !== undefined) {
    try {
      const url = new URL(redisUrl)
      if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
        throw new Error('scheme must be redis: or rediss:')
    } catch (error) {
      problems.push(`REDIS_URL: not a redis:// or rediss:// URL (${(error as Error).message})`)
    }
    redis = { url: redisUrl, keyPrefix }
  } else if (sentinels !== undefined) {
    const sentinelName = read.str('REDIS_SENTINEL_NAME')
    if (sentinelName === undefined)
      problems.push('REDIS_SENTINEL_NAME: required with REDIS_SENTINELS (the master name)')
    const sentinelPassword = read.str('REDIS_SENTINEL_PASSWORD')
    redis = {
      sentinels,
      keyPrefix,
      ...(sentinelName === undefined ? {} : { sentinelName }),
      ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
    }
  } else if (clusterNodes !== undefined) {
    redis = { clusterNodes, keyPrefix }
  } else if (!read.bool('UNSAFE_MEMORY_STORE', false)) {
    problems.push(
      'REDIS_URL: required (or REDIS_SENTINELS / REDIS_CLUSTER_NODES); the in-memory store is for the demo only (UNSAFE_MEMORY_STORE=true)',
    )
  }
  if (redis === undefined) return undefined
  const username = read.str('REDIS_USERNAME')
  const password = read.str('REDIS_PASSWORD')
  const tls = read.bool('REDIS_TLS', false)
  return {
    ...redis,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password }),
    ...(tls ? { tls } : {}),
  }
}
