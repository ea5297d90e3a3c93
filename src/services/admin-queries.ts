// Read model for operators (the admin API and the console): one registration, a page of
// registrations, and tenants summarised from their registrations.
import { registrationNotFound } from '../errors.js'
import { listAllRegistrations } from '../store/list-all.js'
import type { Registration, RegistrationStatus, RegistrationUsage, Store } from '../store/types.js'

/** What an operator filters registrations by; every field optional, empty strings already dropped. */
export interface RegistrationFilter {
  /** A tenant id in any case; registrations store it in lower case. */
  tenant?: string
  app?: string
  status?: RegistrationStatus
  /** From a previous page's `nextCursor`. */
  cursor?: string
  /** Page size, 1..500 (the store's default when absent). */
  limit?: number
}

/** One page of registrations matching `filter`, metadata and usage only (never a secret). */
export function listRegistrations(
  store: Pick<Store, 'registrations'>,
  filter: RegistrationFilter,
): Promise<{ items: Array<Registration & RegistrationUsage>; nextCursor?: string }> {
  const { tenant, app, status, cursor, limit } = filter
  return store.registrations.list({
    ...(tenant === undefined ? {} : { tenantId: tenant.toLowerCase() }),
    ...(app === undefined ? {} : { app }),
    ...(status === undefined ? {} : { status }),
    ...(cursor === undefined ? {} : { cursor }),
    ...(limit === undefined ? {} : { limit }),
  })
}

/** One registration's metadata and usage; `not_found` when there is no such registration. */
export async function findRegistration(
  store: Pick<Store, 'registrations'>,
  id: string,
): Promise<Registration & RegistrationUsage> {
  const registration = await store.registrations.getMeta(id)
  if (registration === null) throw registrationNotFound(id)
  return registration
}

/** One tenant as the operator's tenant list shows it. */
export interface TenantSummary {
  tenantId: string
  /** App slugs with at least one registration of this tenant, sorted. */
  apps: string[]
  clouds: string[]
  registrations: Record<RegistrationStatus, number> & { total: number }
  /** ISO 8601; absent when no registration ever issued a token. */
  lastIssuedAt?: string
  /** ISO 8601: the newest consent among the tenant's registrations. */
  lastConsentAt?: string
}

function later(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return Date.parse(b) > Date.parse(a) ? b : a
}

/**
 * Every tenant with a registration, from one pass over the registrations (optionally of one app),
 * sorted by tenant id.
 */
export async function summarizeTenants(
  store: Pick<Store, 'registrations'>,
  filter: { app?: string } = {},
): Promise<TenantSummary[]> {
  const tenants = new Map<string, TenantSummary & { appSet: Set<string>; cloudSet: Set<string> }>()
  for await (const item of listAllRegistrations(
    store.registrations,
    filter.app === undefined ? {} : { app: filter.app },
  )) {
    let tenant = tenants.get(item.tenantId)
    if (tenant === undefined) {
      tenant = {
        tenantId: item.tenantId,
        apps: [],
        clouds: [],
        registrations: { active: 0, needs_consent: 0, revoked: 0, total: 0 },
        appSet: new Set(),
        cloudSet: new Set(),
      }
      tenants.set(item.tenantId, tenant)
    }
    tenant.appSet.add(item.app)
    tenant.cloudSet.add(item.cloud)
    tenant.registrations[item.status] += 1
    tenant.registrations.total += 1
    const lastIssuedAt = later(tenant.lastIssuedAt, item.lastIssuedAt)
    if (lastIssuedAt !== undefined) tenant.lastIssuedAt = lastIssuedAt
    const lastConsentAt = later(tenant.lastConsentAt, item.consentedAt)
    if (lastConsentAt !== undefined) tenant.lastConsentAt = lastConsentAt
  }
  return [...tenants.values()]
    .sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0))
    .map(({ appSet, cloudSet, ...summary }) => ({
      ...summary,
      apps: [...appSet].sort(),
      clouds: [...cloudSet].sort(),
    }))
}
