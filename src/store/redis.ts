// The production store: Redis (single server, Sentinel or Cluster), assembled from src/store/redis/:
//   keys.ts          the key layout (every key name, the prefix, the Cluster hash tags)
//   scripts.ts       the records' Lua scripts and how scripts run (index-lua.ts: the indexes')
//   registrations.ts registrations: records, indexes, uniqueness claims, versioned updates
//                    (registration-creation.ts: the create steps)
//   admit.ts         the obtain-token admission (replay claim + rate windows in one call)
//   secondary-indexes.ts  listing and tenant indexes: counts, tenants pages
//   store-upgrade.ts      expand/contract of the previous release's layout (rolling upgrade, finish)
//   webhooks.ts      notifications: outbox, endpoints, deliveries (webhook-scripts.ts: its Lua)
//   ephemeral.ts, token-cache.ts, locks.ts, rate-limiter.ts, audit-log.ts,
//   credential-health.ts, tenant-labels.ts                   the other stores
// Every Lua script and every multi-key command touches keys of ONE hash slot, so the same code runs
// on a Cluster — except ADMIT_CLIENT (admit.ts) and UPDATE_RECORD_INDEXED (registrations.ts), which
// have a two-command path for a Cluster.
import type { KeyRing } from '../crypto/envelope.js'
import { RedisAuditLog } from './redis/audit-log.js'
import { RedisCredentialHealth } from './redis/credential-health.js'
import { RedisEphemeral } from './redis/ephemeral.js'
import { assertKeyPrefix, redisKeys } from './redis/keys.js'
import { RedisLocks } from './redis/locks.js'
import { RedisRateLimiter } from './redis/rate-limiter.js'
import { RedisRegistrations } from './redis/registrations.js'
import { RedisTenantLabels } from './redis/tenant-labels.js'
import { RedisTokenCache } from './redis/token-cache.js'
import { RedisUpstreamFailures } from './redis/upstream-failures.js'
import { RedisWebhooks } from './redis/webhooks.js'
import type { RedisClient } from './redis-connection.js'
import type { Store } from './types.js'

/** What `createRedisStore` needs: a connected client, the key ring and the key prefix. */
export interface RedisStoreOptions {
  redis: RedisClient
  keyRing: KeyRing
  /** Prepended to every key, e.g. `cb:`; must not contain `{` or `}`. */
  keyPrefix: string
  /** Approximate cap of the audit stream; default 100 000. */
  auditMaxLen?: number
  /** Audit events older than this (by stream id time) are trimmed on append. */
  auditRetentionMs?: number
  /** A delegated uniqueness claim whose record is still missing after this is abandoned; 30 s. */
  claimGraceMs?: number
  clock?: () => number
}

/** The Redis store; refuses (TypeError) a key prefix with `{`/`}` and a client-side ioredis keyPrefix. */
export function createRedisStore(options: RedisStoreOptions): Store {
  const { redis, keyRing, keyPrefix } = options
  assertKeyPrefix(keyPrefix)
  // Token-group members are stored as full key names and deleted from Lua, so the client itself
  // must not rewrite key names.
  if ((redis.options as { keyPrefix?: string }).keyPrefix) {
    throw new TypeError("use createRedisStore's keyPrefix, not the ioredis keyPrefix option")
  }
  const clock = options.clock ?? Date.now
  const keys = redisKeys(keyPrefix)
  const auditMaxLen = Math.max(1, Math.trunc(options.auditMaxLen ?? 100_000))
  const webhooks = new RedisWebhooks(redis, keys, keyRing, clock)
  return {
    kind: 'redis',
    registrations: new RedisRegistrations(
      redis,
      keys,
      keyRing,
      clock,
      options.claimGraceMs ?? 30_000,
      (subject) => webhooks.announce(subject),
    ),
    webhooks,
    ephemeral: new RedisEphemeral(redis, keys, keyRing),
    tokens: new RedisTokenCache(redis, keys, keyRing),
    locks: new RedisLocks(redis, keys),
    rateLimiter: new RedisRateLimiter(redis, keys),
    credentialHealth: new RedisCredentialHealth(redis, keys),
    tenantLabels: new RedisTenantLabels(redis, keys),
    upstreamFailures: new RedisUpstreamFailures(redis, keys),
    audit: new RedisAuditLog(redis, keys, clock, auditMaxLen, options.auditRetentionMs),
    async ping() {
      await redis.ping()
    },
    async close() {
      if (redis.status === 'end') return
      try {
        await redis.quit()
      } catch {
        redis.disconnect()
      }
    },
  }
}
