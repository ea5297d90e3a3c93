// What the console's home page shows an operator first: registrations by status (the store's
// maintained counts, never a scan), the first registrations needing consent (a page of the status
// index), and the token requests Entra ID refused or failed in the last hour (the store's
// per-minute counters). Each read costs the same however many registrations there are.
import type { RegistrationStatus, Store, UpstreamFailureCount } from '../store/types.js'
import { type OperatorRegistration, withOperatorFacts } from './admin-queries.js'
import { upstreamFailuresLastHour } from './upstream-failures.js'

/** The home page's facts. */
export interface Attention {
  /** Registrations by status. */
  counts: Record<RegistrationStatus, number>
  /** The oldest registrations needing consent, at most the number asked for. */
  needsConsent: OperatorRegistration[]
  /** Failed token requests to Entra ID in the last hour, per app and code, most first. */
  upstreamFailures: UpstreamFailureCount[]
}

/** Reads what needs attention; `shown` bounds the registrations listed. */
export async function readAttention(
  store: Pick<Store, 'registrations' | 'upstreamFailures' | 'tenantLabels'>,
  now: number,
  shown: number,
): Promise<Attention> {
  const [counts, needsConsent, upstreamFailures] = await Promise.all([
    store.registrations.countByStatus(),
    store.registrations.list({ status: 'needs_consent', limit: shown }),
    upstreamFailuresLastHour(store, now),
  ])
  return { counts, needsConsent: await withOperatorFacts(store, needsConsent.items), upstreamFailures }
}
