// The console's audit trail: newest first (paging back) or a time window oldest first. Tenants and
// registrations short with the full id on hover, times relative to the server's clock, long
// details wrapped inside their column.
import type { AuditRecord } from '../store/types.js'
import { type ConsoleContext, consolePage, registrationRef, tenantRef } from './admin.js'
import { ago } from './console-format.js'
import { html } from './html.js'

function auditDetail(record: AuditRecord): string {
  if (record.detail === undefined) return ''
  return Object.entries(record.detail)
    .map(([name, value]) => `${name}=${String(value)}`)
    .join(', ')
}

export function renderAudit(
  context: ConsoleContext,
  options: {
    items: AuditRecord[]
    /** Tenant id → label, for the page's tenants that have one. */
    labels: ReadonlyMap<string, string>
    /** `desc`: newest first, paging back; `asc`: oldest first from a window or cursor. */
    order: 'asc' | 'desc'
    nextCursor?: string
    cursor?: string
    window?: string
  },
): string {
  const windowLink = (window: string, label: string) =>
    options.window === window
      ? html`<strong>${label}</strong>`
      : html`<a href="/admin/audit?window=${window}">${label}</a>`
  const rows = options.items.map(
    (record) => html`<tr>
<td>${ago(record.at, context.now)}</td>
<td><code class="nowrap">${record.type}</code></td>
<td>${record.actor}</td>
<td>${record.tenantId === undefined ? '' : tenantRef(record.tenantId, options.labels.get(record.tenantId))}${record.app === undefined ? '' : html` ${record.app}`}${
      record.registrationId === undefined ? '' : html` ${registrationRef(record.registrationId)}`
    }</td>
<td class="detail">${auditDetail(record)}</td>
</tr>`,
  )
  const newest = options.order === 'desc'
  const latest = newest && options.cursor === undefined
  const next =
    options.nextCursor === undefined
      ? ''
      : newest
        ? html`<a class="button secondary" href="/admin/audit?before=${encodeURIComponent(options.nextCursor)}">Older events</a>`
        : html`<a class="button secondary" href="/admin/audit?cursor=${encodeURIComponent(options.nextCursor)}">Newer events</a>`
  return consolePage(
    'Audit trail',
    context,
    '/admin/audit',
    html`<p class="muted">${newest ? 'Newest first.' : 'Oldest first.'} Consents, status changes, revocations, key rotations and sign-ins, with who did them.</p>
<p>Show: ${latest ? html`<strong>the latest</strong>` : html`<a href="/admin/audit">the latest</a>`} · ${windowLink('1h', 'the last hour')} · ${windowLink('24h', 'the last 24 hours')} · ${windowLink('7d', 'the last 7 days')}</p>
${
  options.items.length === 0
    ? html`<p>${
        options.window !== undefined
          ? 'No events in this period.'
          : options.cursor === undefined
            ? 'The audit trail is empty.'
            : newest
              ? 'No older events.'
              : 'No newer events.'
      }</p>`
    : html`<section class="card table-card"><table>
<thead><tr><th>When</th><th>Event</th><th>Actor</th><th>Subject</th><th>Detail</th></tr></thead>
<tbody>${rows}</tbody>
</table></section>`
}
<p>${latest ? '' : html`<a class="button secondary" href="/admin/audit">Latest events</a> `}${next}</p>`,
  )
}
