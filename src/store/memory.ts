// The demo store: one process, no persistence, assembled from src/store/memory/ (one file per
// store, plus expiring-map.ts). Same semantics as the Redis store (it passes the same contract
// suite) and the same record encoding (registration-hash.ts, sealing.ts), so secrets stay sealed
// here too. Expiry is by timestamps checked on read, plus an unref'd sweep that never keeps the
// process up.
import type { KeyRing } from '../crypto/envelope.js'
import { MemoryAuditLog } from './memory/audit-log.js'
import { MemoryCredentialHealth } from './memory/credential-health.js'
import { MemoryEphemeral } from './memory/ephemeral.js'
import { MemoryLocks } from './memory/locks.js'
import { MemoryRateLimiter } from './memory/rate-limiter.js'
import { MemoryRegistrations } from './memory/registrations.js'
import { MemoryTenantLabels } from './memory/tenant-labels.js'
import { MemoryTokenCache } from './memory/token-cache.js'
import { MemoryUpstreamFailures } from './memory/upstream-failures.js'
import { MemoryWebhooks } from './memory/webhooks.js'
import type { Store } from './types.js'

/** What `createMemoryStore` needs: the key ring; the rest has defaults. */
export interface MemoryStoreOptions {
  keyRing: KeyRing
  clock?: () => number
  /** Cap of the audit log; default 100 000. */
  auditMaxLen?: number
  /** Audit events older than this are trimmed on append. */
  auditRetentionMs?: number
  /** How often expired entries are swept; default 60 s. */
  sweepIntervalMs?: number
}

/** The in-memory store (demo and tests). */
export function createMemoryStore(options: MemoryStoreOptions): Store {
  const clock = options.clock ?? Date.now
  const rateLimiter = new MemoryRateLimiter(clock)
  const webhooks = new MemoryWebhooks(options.keyRing, clock)
  const registrations = new MemoryRegistrations(options.keyRing, clock, rateLimiter, webhooks)
  const ephemeral = new MemoryEphemeral(options.keyRing, clock)
  const tokens = new MemoryTokenCache(options.keyRing, clock)
  const locks = new MemoryLocks(clock)
  const credentialHealth = new MemoryCredentialHealth(clock)
  const sweeper = setInterval(() => {
    registrations.seen.sweep()
    registrations.windows.sweep()
    ephemeral.values.sweep()
    tokens.sweep()
    locks.held.sweep()
    rateLimiter.windows.sweep()
    credentialHealth.marks.sweep()
    credentialHealth.successes.sweep()
  }, options.sweepIntervalMs ?? 60_000)
  sweeper.unref()
  return {
    kind: 'memory',
    registrations,
    ephemeral,
    tokens,
    locks,
    rateLimiter,
    webhooks,
    credentialHealth,
    tenantLabels: new MemoryTenantLabels(),
    upstreamFailures: new MemoryUpstreamFailures(),
    audit: new MemoryAuditLog(
      clock,
      Math.max(1, Math.trunc(options.auditMaxLen ?? 100_000)),
      options.auditRetentionMs,
    ),
    async ping() {},
    async close() {
      clearInterval(sweeper)
    },
  }
}
