// Tenant labels as operators change them (API, console, CLI): a tenant with registrations gets the
// operator's label, which replaces the default suggested at its first consent (the consenting
// user's domain, see registrations.ts) and is never replaced by a later consent. Audited.
import type { FastifyBaseLogger } from 'fastify'
import { invalidRequest, tenantWithoutRegistrations } from '../errors.js'
import { isOneLineText, REFUSED_CHARACTERS_WORDS } from '../one-line-text.js'
import type { Store } from '../store/types.js'
import { isTenantLabel, TENANT_LABEL_MAX } from '../store/validation.js'
import { actorLabel, recordAudit } from './audit.js'

/** A tenant's label after an operator set it. */
export interface TenantLabelChange {
  tenantId: string
  label: string
  /** The label it replaced, when there was one. */
  previous?: string
}

/**
 * The label an operator's input names: the input trimmed of white space at either end, which must
 * then be 1 to {@link TENANT_LABEL_MAX} characters of one-line text; `invalid_request` otherwise.
 * The API and the console both come here, so this is the one place the rule is applied to input.
 */
export function tenantLabelFromInput(input: string): string {
  const label = input.trim()
  // The input as sent is checked too: trim() also drops line breaks and separators at the ends,
  // and a label that arrived with them is refused rather than quietly cleaned.
  if (!isOneLineText(input) || !isTenantLabel(label))
    throw invalidRequest(
      `label must be 1 to ${TENANT_LABEL_MAX} characters once trimmed, not blank, without ${REFUSED_CHARACTERS_WORDS}`,
    )
  return label
}

/**
 * Sets the label of a tenant that has at least one registration (`not_found` otherwise, so a
 * mistyped tenant id is caught); the label is {@link tenantLabelFromInput}'s.
 */
export async function setTenantLabel(
  store: Pick<Store, 'registrations' | 'tenantLabels' | 'audit'>,
  tenantIdInput: string,
  labelInput: string,
  operator: string,
  log: FastifyBaseLogger,
): Promise<TenantLabelChange> {
  const tenantId = tenantIdInput.toLowerCase()
  const label = tenantLabelFromInput(labelInput)
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
