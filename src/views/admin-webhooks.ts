// The console's Webhooks page: every endpoint with its latest deliveries (status, attempts, next
// retry, last answer) and a redeliver button per delivery (a CSRF-carrying form, like the console's
// other forms). Endpoints are added through the API or the CLI, where the secret is shown once.
import type { Delivery, WebhookEndpoint } from '../store/webhook-types.js'
import { type ConsoleContext, consolePage } from './admin.js'
import { ago, shortId } from './console-format.js'
import { html, type SafeHtml } from './html.js'
import { csrfField, notice } from './parts.js'

/** One endpoint and its latest deliveries. */
export interface EndpointView {
  readonly endpoint: WebhookEndpoint
  readonly deliveries: readonly Delivery[]
}

function deliveryRow(context: ConsoleContext, endpointId: string, d: Delivery): SafeHtml {
  return html`<tr>
<td>${shortId(d.messageId, 'message ID')}</td>
<td>${d.type}</td>
<td><span class="badge delivery-${d.status}">${d.status}</span></td>
<td>${String(d.attempts)}</td>
<td>${d.status === 'pending' ? ago(d.nextAttemptAt, context.now) : html`<span class="muted">—</span>`}</td>
<td class="detail">${d.lastStatusCode === undefined ? '' : String(d.lastStatusCode)}${d.lastError === undefined ? '' : html` <span class="muted">${d.lastError}</span>`}</td>
<td><form method="post" action="/admin/webhooks/${endpointId}/deliveries/${d.messageId}/redeliver">
${csrfField(context.csrf)}
<button type="submit" class="secondary">Redeliver</button>
</form></td>
</tr>`
}

function endpointCard(context: ConsoleContext, view: EndpointView): SafeHtml {
  const { endpoint, deliveries } = view
  return html`<section class="card">
<h2><code>${endpoint.id}</code></h2>
<p class="wrap">${endpoint.url}</p>
<p class="muted">Events: ${endpoint.events.length === 0 ? 'all' : endpoint.events.join(', ')} · added ${ago(endpoint.createdAt, context.now)} by ${endpoint.createdBy}</p>
${
  deliveries.length === 0
    ? html`<p class="muted">No deliveries yet.</p>`
    : html`<table>
<thead><tr><th>Message</th><th>Type</th><th>Status</th><th>Attempts</th><th>Next retry</th><th>Last answer</th><th></th></tr></thead>
<tbody>${deliveries.map((d) => deliveryRow(context, endpoint.id, d))}</tbody>
</table>`
}
</section>`
}

export function renderWebhooks(
  context: ConsoleContext,
  options: { endpoints: readonly EndpointView[]; notice?: string },
): string {
  return consolePage(
    'Webhooks',
    context,
    '/admin/webhooks',
    html`${notice(options.notice)}
${
  options.endpoints.length === 0
    ? html`<section class="card"><p>No endpoints. Add one with <code>consent-broker-admin webhooks add &lt;url&gt;</code> or <code>POST /admin/api/webhooks</code>; its signing secret is shown there, once.</p></section>`
    : options.endpoints.map((view) => endpointCard(context, view))
}`,
  )
}
