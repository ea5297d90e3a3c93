// Read model for operators (the admin API and the console): one registration (its read audited),
// a page of registrations, and a page of tenants with their counts (the store pages the tenant ids
// and keeps each tenant's counts as its registrations change). Each registration
// comes with who consented and its tenant's label (one read of the labels per page).
import type { FastifyBaseLogger } from 'fastify'
import { registrationNotFound } from '../errors.js'
import type {
  Registration,
  RegistrationStatus,
  RegistrationUsage,
  Store,
  TenantCounts,
} from '../store/types.js'
import { actorLabel, recordAudit } from './audit.js'

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

/** Who consented to a registration, as operators read it: UPN and display name, each when known. */
export interface ConsentedBy {
  upn?: string
  name?: string
}

/** A registration as operators read it: metadata, usage, who consented and the tenant's label. */
export type OperatorRegistration = Registration &
  RegistrationUsage & {
    /** Absent on registrations written before consents recorded it. */
    consentedBy?: ConsentedBy
    /** The tenant's label, when it has one. */
    tenantLabel?: string
  }

/** Adds who consented and the tenant labels to registrations (one label read for all of them). */
export async function withOperatorFacts(
  store: Pick<Store, 'tenantLabels'>,
  items: ReadonlyArray<Registration & RegistrationUsage>,
): Promise<OperatorRegistration[]> {
  const labels = await store.tenantLabels.get([...new Set(items.map((item) => item.tenantId))])
  return items.map((item) => {
    const label = labels.get(item.tenantId)
    const out: OperatorRegistration = { ...item }
    if (item.userName !== undefined || item.userDisplayName !== undefined) {
      out.consentedBy = {
        ...(item.userName === undefined ? {} : { upn: item.userName }),
        ...(item.userDisplayName === undefined ? {} : { name: item.userDisplayName }),
      }
    }
    if (label !== undefined) out.tenantLabel = label
    return out
  })
}

/** One page of registrations matching `filter`, metadata and usage only (never a secret). */
export async function listRegistrations(
  store: Pick<Store, 'registrations' | 'tenantLabels'>,
  filter: RegistrationFilter,
): Promise<{ items: OperatorRegistration[]; nextCursor?: string }> {
  const { tenant, app, status, cursor, limit } = filter
  const page = await store.registrations.list({
    ...(tenant === undefined ? {} : { tenantId: tenant.toLowerCase() }),
    ...(app === undefined ? {} : { app }),
    ...(status === undefined ? {} : { status }),
    ...(cursor === undefined ? {} : { cursor }),
    ...(limit === undefined ? {} : { limit }),
  })
  return {
    items: await withOperatorFacts(store, page.items),
    ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }),
  }
}

/** One registration's metadata and usage; `not_found` when there is no such registration. */
export async function findRegistration(
  store: Pick<Store, 'registrations' | 'tenantLabels'>,
  id: string,
): Promise<OperatorRegistration> {
  const registration = await store.registrations.getMeta(id)
  if (registration === null) throw registrationNotFound(id)
  const [withFacts] = await withOperatorFacts(store, [registration])
  return withFacts!
}

/**
 * One registration's details as an operator reads them (API or console): found like
 * `findRegistration`, and the read is audited (`registration.read`, the operator and where), as
 * every change is.
 */
export async function readRegistrationAsOperator(
  store: Pick<Store, 'registrations' | 'audit' | 'tenantLabels'>,
  id: string,
  reader: { operator: string; via: 'api' | 'console' },
  log: FastifyBaseLogger,
): Promise<OperatorRegistration> {
  const registration = await findRegistration(store, id)
  await recordAudit(store, log, {
    type: 'registration.read',
    actor: actorLabel({ kind: 'operator', name: reader.operator }),
    tenantId: registration.tenantId,
    app: registration.app,
    registrationId: registration.id,
    detail: { via: reader.via },
  })
  return registration
}

/**
 * One tenant as the operator's tenant list shows it: the store's counts (maintained as
 * registrations change, never a walk of the tenant's registrations) and the tenant's label.
 * There is no `lastIssuedAt`: it changes on the token path, and keeping it per tenant would cost
 * that path another Redis command; a registration's own `lastIssuedAt` is in the registrations list.
 */
export type TenantSummary = TenantCounts & {
  /** The tenant's label (default: the first consenting user's domain; operators change it). */
  label?: string
}

/** One page of tenant summaries; `nextCursor` absent on the last page. */
export interface TenantSummaryPage {
  tenants: TenantSummary[]
  nextCursor?: string
}

/**
 * One page of tenants with a registration (of `filter.app`, when given: then only that app's
 * registrations are counted), sorted by tenant id: three reads of the store however many
 * registrations the tenants have.
 */
export async function summarizeTenants(
  store: Pick<Store, 'registrations' | 'tenantLabels'>,
  query: { app?: string; cursor?: string; limit?: number } = {},
): Promise<TenantSummaryPage> {
  const page = await store.registrations.listTenants(query)
  const [tenants, labels] = await Promise.all([
    store.registrations.summarizeTenants(page.tenantIds, query.app),
    store.tenantLabels.get(page.tenantIds),
  ])
  const out: TenantSummary[] = []
  for (const tenant of tenants) {
    // a tenant id whose only registration never finished being created has nothing to show
    if (tenant.registrations.total === 0) continue
    const label = labels.get(tenant.tenantId)
    out.push(label === undefined ? tenant : { ...tenant, label })
  }
  return { tenants: out, ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) }
}

/** What revoking a tenant (of one app, when given) would end: shown before the operator confirms. */
export interface TenantRevocationPreview {
  /** The tenant's registrations (of `app`) not revoked yet, among those read. */
  toRevoke: number
  /** False when the tenant has more registrations than were read: `toRevoke` is then a minimum. */
  complete: boolean
  /** The first `shown` of them, in the store's order. */
  items: OperatorRegistration[]
  /** The tenant's label, when it has one. */
  tenantLabel?: string
}

/**
 * The tenant's registrations that a tenant revocation would end, from one page of at most `read`
 * of the tenant's registrations (of `app`): a confirmation page costs the same for a tenant with
 * five registrations or fifty thousand (`complete: false` then; the revocation itself ends them
 * all).
 */
export async function previewTenantRevocation(
  store: Pick<Store, 'registrations' | 'tenantLabels'>,
  tenantId: string,
  app: string | undefined,
  options: { shown: number; read: number },
): Promise<TenantRevocationPreview> {
  const [page, labels] = await Promise.all([
    store.registrations.list({ tenantId, ...(app === undefined ? {} : { app }), limit: options.read }),
    store.tenantLabels.get([tenantId]),
  ])
  const open = page.items.filter((item) => item.status !== 'revoked')
  const label = labels.get(tenantId)
  return {
    toRevoke: open.length,
    complete: page.nextCursor === undefined,
    items: await withOperatorFacts(store, open.slice(0, options.shown)),
    ...(label === undefined ? {} : { tenantLabel: label }),
  }
}
