// Tenant labels in memory (the demo and unit tests): the same rules as the Redis hash — the first
// suggestion wins, an operator's label replaces any.
import type { TenantLabelStore } from '../types.js'
import { requireName, requireTenantLabel } from '../validation.js'

/** `TenantLabelStore` in memory. */
export class MemoryTenantLabels implements TenantLabelStore {
  readonly #labels = new Map<string, string>()

  async get(tenantIds: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>()
    for (const tenantId of tenantIds) {
      const label = this.#labels.get(tenantId)
      if (label !== undefined) out.set(tenantId, label)
    }
    return out
  }

  async suggest(tenantId: string, label: string): Promise<boolean> {
    requireName(tenantId, 'tenant id')
    requireTenantLabel(label)
    if (this.#labels.has(tenantId)) return false
    this.#labels.set(tenantId, label)
    return true
  }

  async set(tenantId: string, label: string): Promise<void> {
    requireName(tenantId, 'tenant id')
    requireTenantLabel(label)
    this.#labels.set(tenantId, label)
  }
}
