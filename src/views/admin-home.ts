// The console's first page: the registrations counted by status, then what needs an operator's
// attention now — token requests Entra ID refused or failed in the last hour (per app and reason),
// app credentials expiring or refused, registrations needing consent (how many, the oldest, a link
// to all).
import type { Attention } from '../services/admin-attention.js'
import { REGISTRATION_STATUSES } from '../store/types.js'
import { type ConsoleContext, consolePage, registrationsQuery, statusLabel } from './admin.js'
import { registrationsTable } from './admin-registrations.js'
import { html } from './html.js'

/** What each counted failure means, in the operator's words. */
const FAILURE_MEANING: Readonly<Record<string, string>> = {
  needs_consent: 'Entra ID refused the grant: the registration needs consent again',
  upstream_unavailable: 'Entra ID answered 5xx or could not be reached',
  upstream_timeout: 'Entra ID did not answer in time',
  upstream_throttled: 'Entra ID throttled the app (429)',
  upstream_error: 'Entra ID refused the request',
  broker_misconfigured: "Entra ID refused the broker's own credentials: check the apps file",
}

const plural = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`

export function renderHome(
  context: ConsoleContext,
  options: Attention & { credentialsNeedingAttention: number },
): string {
  const { counts, needsConsent, upstreamFailures } = options
  const total = REGISTRATION_STATUSES.reduce((sum, status) => sum + counts[status], 0)
  const failures = upstreamFailures.reduce((sum, line) => sum + line.failures, 0)
  const waiting = counts.needs_consent

  const consentCard =
    waiting === 0
      ? html`<section class="card" id="needs-consent"><h2>Needs consent</h2><p>No registration needs consent.</p></section>`
      : html`<section class="card error" id="needs-consent"><h2>Needs consent: ${plural(waiting, 'registration', 'registrations')}</h2>
<p>Their integrations get <code>consent_required</code> until the tenant consents again at the app's page. ${
          waiting > needsConsent.length
            ? html`The oldest ${needsConsent.length} below; <a href="${registrationsQuery({ status: 'needs_consent' })}">all ${String(waiting)}</a>.`
            : html`<a href="${registrationsQuery({ status: 'needs_consent' })}">In the registrations list</a>.`
        }</p>
${needsConsent.length === 0 ? html`` : registrationsTable(needsConsent, context.now)}</section>`

  const upstreamCard =
    failures === 0
      ? html`<section class="card" id="upstream"><h2>Upstream failures in the last hour</h2><p>No token request to Entra ID failed in the last hour.</p></section>`
      : html`<section class="card error" id="upstream"><h2>Upstream failures in the last hour: ${String(failures)}</h2>
<p class="muted">Token requests to Entra ID that failed, on every instance, counted per minute. Cached tokens are served meanwhile; each app and tenant backs off. The registrations that moved to needs consent are in <a href="/admin/audit?window=1h">the last hour's audit trail</a>.</p>
<table><thead><tr><th>App</th><th>Failure</th><th>Meaning</th><th class="number">Count</th></tr></thead>
<tbody>${upstreamFailures.map(
          (line) =>
            html`<tr><td>${line.app}</td><td><code>${line.code}</code></td><td>${FAILURE_MEANING[line.code] ?? ''}</td><td class="number">${String(line.failures)}</td></tr>`,
        )}</tbody></table></section>`

  const credentials = options.credentialsNeedingAttention
  const credentialsNote =
    credentials === 0
      ? html``
      : html`<section class="card error" id="credentials"><h2>App credentials</h2><p><a href="/admin/credentials">${plural(credentials, 'credential needs', 'credentials need')} attention</a>: expiring soon, or refused by Microsoft.</p></section>`

  return consolePage(
    'What needs attention',
    context,
    '/admin/home',
    html`<div class="counts" aria-label="Registrations by status">${REGISTRATION_STATUSES.map(
      (status) =>
        html`<section class="card"><a href="${registrationsQuery({ status })}"><span class="count">${String(counts[status])}</span>${statusLabel(status)}</a></section>`,
    )}<section class="card"><a href="/admin/registrations"><span class="count">${String(total)}</span>registrations in all</a></section></div>
${upstreamCard}
${credentialsNote}
${consentCard}`,
  )
}
