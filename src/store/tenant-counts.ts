// Folds a tenant's counted registrations — (app, cloud, status) → count, and the last consent of
// each app — into the figures operators read (TenantCounts), optionally of one app only. Both
// stores keep their summaries in that shape; this is the one place that reads it.
import type { RegistrationStatus, TenantCounts } from './registration-types.js'

/** One counted combination of a tenant's registrations. */
export interface CountedRegistrations {
  app: string
  cloud: string
  status: RegistrationStatus
  count: number
}

/** The tenant's figures from its counts and each app's last consent (epoch ms); of `app` only when given. */
export function foldTenantCounts(
  tenantId: string,
  counts: Iterable<CountedRegistrations>,
  lastConsentByApp: ReadonlyMap<string, number>,
  app?: string,
): TenantCounts {
  const out: TenantCounts = {
    tenantId,
    apps: [],
    clouds: [],
    registrations: { active: 0, needs_consent: 0, revoked: 0, total: 0 },
  }
  const apps = new Set<string>()
  const clouds = new Set<string>()
  for (const entry of counts) {
    if (entry.count <= 0 || (app !== undefined && entry.app !== app)) continue
    apps.add(entry.app)
    clouds.add(entry.cloud)
    out.registrations[entry.status] += entry.count
    out.registrations.total += entry.count
  }
  let last: number | undefined
  for (const [name, ms] of lastConsentByApp) {
    if (!apps.has(name)) continue
    if (last === undefined || ms > last) last = ms
  }
  out.apps = [...apps].sort()
  out.clouds = [...clouds].sort()
  if (last !== undefined) out.lastConsentAt = new Date(last).toISOString()
  return out
}
