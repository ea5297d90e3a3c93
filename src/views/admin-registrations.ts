// The console's lists: tenants (registrations counted by status, latest token and consent) and
// registrations (filtered by tenant, app and status). Ids are shown short with the full value on
// hover; times relative to the server's clock. A tenant filter offers the tenant's revocation,
// which asks for confirmation first (admin-revoke.ts).
import type { OperatorRegistration, TenantSummary } from '../services/admin-queries.js'
import { REGISTRATION_STATUSES } from '../store/types.js'
import {
  type ConsoleContext,
  consentedByCell,
  consolePage,
  optionList,
  registrationRef,
  registrationsQuery,
  statusBadge,
  statusLabel,
  tenantRef,
} from './admin.js'
import { tenantLabelForm } from './admin-tenant-label.js'
import { ago } from './console-format.js'
import { html } from './html.js'
import { notice } from './parts.js'

export function renderTenants(
  context: ConsoleContext,
  options: { tenants: TenantSummary[]; nextCursor?: string; apps: readonly string[]; app?: string },
): string {
  const { now } = context
  const rows = options.tenants.map(
    (tenant) => html`<tr>
<td>${tenantRef(tenant.tenantId, tenant.label)}</td>
<td>${tenant.apps.join(', ')}</td>
<td class="number">${tenant.registrations.active}</td>
<td class="number">${tenant.registrations.needs_consent}</td>
<td class="number">${tenant.registrations.revoked}</td>
<td>${ago(tenant.lastConsentAt, now)}</td>
</tr>`,
  )
  return consolePage(
    'Tenants',
    context,
    '/admin/tenants',
    html`<form method="get" action="/admin/tenants" class="card">
<p><label for="app">App</label>
<select id="app" name="app"><option value="">all apps</option>${optionList(options.apps, options.app)}</select>
<button type="submit" class="secondary">Filter</button></p>
</form>
${
  options.tenants.length === 0
    ? html`<p>No tenant has a registration${options.app === undefined ? '' : ` for ${options.app}`}.</p>`
    : html`<section class="card table-card"><table>
<thead><tr><th>Tenant</th><th>Apps</th><th>Active</th><th>Needs consent</th><th>Revoked</th><th>Last consent</th></tr></thead>
<tbody>${rows}</tbody>
</table></section>`
}${
  options.nextCursor === undefined
    ? ''
    : html`<p><a class="button secondary" href="/admin/tenants?${new URLSearchParams({
        ...(options.app === undefined ? {} : { app: options.app }),
        cursor: options.nextCursor,
      }).toString()}">Next page</a></p>`
}`,
  )
}

export interface RegistrationsFilter {
  tenant?: string
  app?: string
  status?: string
}

/** The rows of a registrations table (also the home page's "needs consent" list). */
export function registrationsTable(items: readonly OperatorRegistration[], now: number) {
  const rows = items.map(
    (item) => html`<tr>
<td>${registrationRef(item.id)}</td>
<td>${tenantRef(item.tenantId, item.tenantLabel)}</td>
<td>${item.app} <span class="muted">${item.kind}${item.cloud === 'global' ? '' : `, ${item.cloud}`}</span>${
      item.ownClientId === undefined
        ? ''
        : html`<br><span class="muted" title="the tenant's own app registration">own app ${item.ownClientId}</span>`
    }</td>
<td>${consentedByCell(item.consentedBy)}</td>
<td>${statusBadge(item.status)}</td>
<td>${ago(item.consentedAt, now)}</td>
<td>${ago(item.lastIssuedAt, now)}</td>
</tr>`,
  )
  return html`<section class="card table-card"><table>
<thead><tr><th>ID</th><th>Tenant</th><th>App</th><th>Consented by</th><th>Status</th><th>Consented</th><th>Last token</th></tr></thead>
<tbody>${rows}</tbody>
</table></section>`
}

export function renderRegistrations(
  context: ConsoleContext,
  options: {
    items: OperatorRegistration[]
    nextCursor?: string
    filter: RegistrationsFilter
    apps: readonly string[]
    notice?: string
  },
): string {
  const { filter } = options
  const confirmQuery = filter.app === undefined ? '' : `?${new URLSearchParams({ app: filter.app })}`
  const tenantRevoke =
    filter.tenant === undefined
      ? html``
      : html`<section class="card error">
<h2>Revoke this tenant</h2>
<p>Revokes every registration of this tenant${filter.app === undefined ? '' : html` for <strong>${filter.app}</strong>`}: integrations using them get <code>revoked</code> at once. You confirm it, with a reason, on the next page.</p>
<p><a class="button danger" href="/admin/tenants/${filter.tenant}/revoke${confirmQuery}">Revoke ${filter.app === undefined ? 'this tenant' : `this tenant's ${filter.app} registrations`}…</a></p>
</section>`
  return consolePage(
    'Registrations',
    context,
    '/admin/registrations',
    html`${notice(options.notice)}
<form method="get" action="/admin/registrations" class="card">
<p><label for="tenant">Tenant ID</label> <input type="text" id="tenant" name="tenant" value="${filter.tenant ?? ''}" size="38">
<label for="app">App</label> <select id="app" name="app"><option value="">all</option>${optionList(options.apps, filter.app)}</select>
<label for="status">Status</label> <select id="status" name="status"><option value="">all</option>${optionList(REGISTRATION_STATUSES, filter.status, statusLabel)}</select>
<button type="submit" class="secondary">Filter</button></p>
</form>
${filter.tenant === undefined || options.items[0] === undefined ? html`` : tenantLabelForm(context, filter.tenant, options.items[0].tenantLabel)}
${options.items.length === 0 ? html`<p>No registration matches.</p>` : registrationsTable(options.items, context.now)}
${
  options.nextCursor === undefined
    ? html``
    : html`<p><a class="button secondary" href="${registrationsQuery({ ...filter, cursor: options.nextCursor })}">Next page</a></p>`
}
${tenantRevoke}`,
  )
}
