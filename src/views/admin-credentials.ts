// The admin console's "App credentials" page: each hosted app's own credentials, in the order they
// are tried, with kind, thumbprint or name, expiry, last success and a refusal by Microsoft.

import { type ConsoleContext, consolePage } from './admin.js'
import { ago } from './console-format.js'
import { html, type SafeHtml } from './html.js'

/** One credential as the page shows it (the operator API's item). */
export interface CredentialRow {
  readonly app: string
  readonly cloud: string
  readonly credential: string
  readonly kind: string
  readonly position: number
  readonly thumbprint?: string
  readonly subject?: string
  readonly expiresAt?: string
  readonly expiresInSeconds?: number
  readonly expiringSoon: boolean
  readonly lastSuccessAt?: string
  readonly failing?: string
}

function expiry(row: CredentialRow, now: number): SafeHtml {
  if (row.expiresAt === undefined) return html`<span class="muted">unknown</span>`
  const days = Math.floor((row.expiresInSeconds ?? 0) / 86_400)
  const left = (row.expiresInSeconds ?? 0) <= 0 ? 'expired' : `${days} days left`
  return row.expiringSoon
    ? html`<strong class="badge status-needs_consent">${left}</strong> ${ago(row.expiresAt, now)}`
    : html`${ago(row.expiresAt, now)} <span class="muted">(${left})</span>`
}

export function renderCredentials(
  context: ConsoleContext,
  rows: readonly CredentialRow[],
  warningDays: number,
): string {
  const attention = rows.filter((row) => row.expiringSoon || row.failing !== undefined).length
  return consolePage(
    'App credentials',
    context,
    '/admin/credentials',
    html`<p>${
      attention === 0
        ? 'No credential expires within the warning period or was refused lately.'
        : html`<strong>${String(attention)} credential${attention === 1 ? ' needs' : 's need'} attention</strong> (expiring within ${String(warningDays)} days, or refused by Microsoft).`
    }</p>
<section class="card table-card"><table>
<thead><tr><th>App</th><th>Cloud</th><th>Order</th><th>Kind</th><th>Credential</th><th>Expires</th><th>Last success</th><th>Refused</th></tr></thead>
<tbody>${rows.map(
      (row) => html`<tr>
<td><code>${row.app}</code></td><td>${row.cloud}</td><td>${String(row.position)}</td><td>${row.kind}</td>
<td><code>${row.thumbprint ?? row.credential}</code>${row.subject === undefined ? html`` : html`<br><span class="muted">${row.subject}</span>`}</td>
<td>${expiry(row, context.now)}</td>
<td>${row.lastSuccessAt === undefined ? html`<span class="muted">none recorded</span>` : ago(row.lastSuccessAt, context.now)}</td>
<td>${row.failing === undefined ? html`<span class="muted">no</span>` : html`<strong class="badge status-revoked">${row.failing}</strong> tried last`}</td>
</tr>`,
    )}</tbody>
</table></section>
<section class="card">
<h2>Rotate a credential</h2>
<ol class="steps">
<li>Add the new certificate (or secret, or federated credential) to the app registration in Microsoft Entra.</li>
<li>Add it to the app's <code>credentials</code> in the apps file, next to the old one, and reload (SIGHUP, or save the file: every instance re-reads it). A newer certificate is tried first.</li>
<li>When its last success shows here, remove the old one from the app registration, then from the apps file.</li>
</ol>
</section>`,
  )
}
