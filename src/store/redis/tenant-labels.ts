// Tenant labels on Redis: one HASH of tenant id → label under the `{idx}` tag, so a page of
// tenants reads its labels with one HMGET and each tenant costs one field, not one per
// registration. HSETNX makes the first suggested default win; an operator's label is an HSET.
import type { RedisClient } from '../redis-connection.js'
import type { TenantLabelStore } from '../types.js'
import { requireName, requireTenantLabel } from '../validation.js'
import type { RedisKeys } from './keys.js'

/** `TenantLabelStore` on Redis. */
export class RedisTenantLabels implements TenantLabelStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async get(tenantIds: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    if (tenantIds.length === 0) return out
    const values = await this.redis.hmget(this.keys.tenantLabels, ...tenantIds)
    tenantIds.forEach((tenantId, i) => {
      const value = values[i]
      if (typeof value === 'string') out.set(tenantId, value)
    })
    return out
  }

  async suggest(tenantId: string, label: string): Promise<boolean> {
    requireName(tenantId, 'tenant id')
    requireTenantLabel(label)
    return (await this.redis.hsetnx(this.keys.tenantLabels, tenantId, label)) === 1
  }

  async set(tenantId: string, label: string): Promise<void> {
    requireName(tenantId, 'tenant id')
    requireTenantLabel(label)
    await this.redis.hset(this.keys.tenantLabels, tenantId, label)
  }
}
