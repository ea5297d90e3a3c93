// Tenant labels as operators change them (API, console, CLI): a tenant with registrations gets the
// operator's label, which replaces the default suggested at its first consent (the consenting
// user's domain, see registrations.ts) and is never replaced by a later consent. Audited.
import type { FastifyBaseLogger } from 'fastify'
import { invalidRequest, tenantWithoutRegistrations } from '../errors.js'
import type { Store } from '../store/types.js'
import { requireTenantLabel, TENANT_LABEL_MAX } from '../store/validation.js'
import { actorLabel, recordAudit } from './audit.js'

/** A tenant's label after an operator set it. */
export interface TenantLabelChange {
  tenantId: string
  label: string
  /** The label it replaced, when there was one. */
  previous?: string
}

/**
 * Sets the label of a tenant that has at least one registration (`not_found` otherwise, so a
 * mistyped tenant id is caught); `invalid_request` for a blank label, one over
 * {@link TENANT_LABEL_MAX} characters or one with control characters. The label is trimmed.
 */
export async function setTenantLabel(
  store: Pick<Store, 'registrations' | 'tenantLabels' | 'audit'>,
  tenantIdInput: string,
  labelInput: string,
  operator: string,
  log: FastifyBaseLogger,
): Promise<TenantLabelChange> {
  const tenantId = tenantIdInput.toLowerCase()
  const label = labelInput.trim()
  try {
    requireTenantLabel(label)
  } catch {
    throw invalidRequest(
      `label must be 1 to ${TENANT_LABEL_MAX} characters, not blank, without control characters`,
    )
  }
  const page = await store.registrations.list({ tenantId, limit: 1 })
  if (page.items.length === 0) throw tenantWithoutRegistrations(tenantId)
  const previous = (await store.tenantLabels.get([tenantId])).get(tenantId)
  await store.tenantLabels.set(tenantId, label)
  log.info({ tenantId }, 'tenant label changed')
  await recordAudit(store, log, {
    type: 'tenant.label_changed',
    actor: actorLabel({ kind: 'operator', name: operator }),
    tenantId,
    detail: { label, ...(previous === undefined ? {} : { previous }) },
  })
  return { tenantId, label, ...(previous === undefined ? {} : { previous }) }
}
