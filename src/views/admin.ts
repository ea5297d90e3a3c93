// Admin console pages. Plain HTML forms (no script needed, none inline), every value escaped by
// the `html` template, every state-changing form carrying the session's CSRF token.
import type { TenantSummary } from '../services/admin-queries.js'
import type { RotationStatus } from '../services/key-rotation.js'
import type { RegistrationMeta } from '../services/revocation.js'
import { type AuditRecord, REGISTRATION_STATUSES } from '../store/types.js'
import { html, type SafeHtml } from './html.js'
import { page } from './layout.js'
import { csrfField, notice, when } from './parts.js'

export interface ConsoleContext {
  operator: string
  csrf: string
}

function nav(context: ConsoleContext, current: string): SafeHtml {
  const link = (href: string, label: string) =>
    current === href ? html`<strong>${label}</strong>` : html`<a href="${href}">${label}</a>`
  return html`<nav class="card admin-nav" aria-label="Admin console">
<p>${link('/admin/tenants', 'Tenants')} · ${link('/admin/registrations', 'Registrations')} · ${link('/admin/audit', 'Audit trail')} · ${link('/admin/keys', 'Master keys')} · ${link('/admin/webhooks', 'Webhooks')} · ${link('/admin/credentials', 'App credentials')}</p>
<form method="post" action="/admin/sign-out">
${csrfField(context.csrf)}
<p class="muted">Signed in as <strong>${context.operator}</strong> <button type="submit" class="secondary">Sign out</button></p>
</form>
</nav>`
}

/** A console page: the navigation, the title, the body (also used by admin-webhooks.ts). */
export function consolePage(title: string, context: ConsoleContext, current: string, body: SafeHtml): string {
  return page({
    title: `${title} · Admin`,
    body: html`${nav(context, current)}
<h1>${title}</h1>
${body}`,
  })
}

type Row = [label: string, value: SafeHtml | string]

const statusLabel = (status: string) => status.replace('_', ' ')

function statusBadge(status: string): SafeHtml {
  return html`<span class="badge status-${status}">${statusLabel(status)}</span>`
}

/** The `<option>`s of a filter's `<select>`, `selected` marked. */
function optionList(
  values: readonly string[],
  selected: string | undefined,
  label: (value: string) => string = (value) => value,
): SafeHtml[] {
  return values.map(
    (value) =>
      html`<option value="${value}"${value === selected ? html` selected` : html``}>${label(value)}</option>`,
  )
}

/** A card with a two-column table: what, and its value. */
function detailTable(rows: readonly Row[]): SafeHtml {
  return html`<section class="card"><table><tbody>${rows.map(([label, value]) => html`<tr><th>${label}</th><td>${value}</td></tr>`)}</tbody></table></section>`
}

function registrationsQuery(filter: Record<string, string | undefined>): string {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(filter))
    if (value !== undefined && value !== '') params.set(name, value)
  const query = params.toString()
  return query === '' ? '/admin/registrations' : `/admin/registrations?${query}`
}

export function renderSignIn(options: { csrf: string; error?: string }): string {
  return page({
    title: 'Operator sign-in',
    body: html`<section class="card">
<h1>Operator sign-in</h1>
${options.error === undefined ? html`` : html`<p class="error" role="alert">${options.error}</p>`}
<form method="post" action="/admin/sign-in">
${csrfField(options.csrf)}
<p><label for="token">Operator token</label><br>
<input type="password" id="token" name="token" autocomplete="current-password" required size="50"></p>
<p><button type="submit">Sign in</button></p>
</form>
<p class="muted">Operator tokens are configured with <code>OPERATOR_TOKENS</code> or <code>OPERATOR_TOKEN_HASHES</code>. The session lasts at most 8 hours.</p>
</section>`,
  })
}

export function renderTenants(
  context: ConsoleContext,
  options: { tenants: TenantSummary[]; nextCursor?: string; apps: readonly string[]; app?: string },
): string {
  const rows = options.tenants.map(
    (tenant) => html`<tr>
<td><a href="${registrationsQuery({ tenant: tenant.tenantId })}"><code>${tenant.tenantId}</code></a></td>
<td>${tenant.apps.join(', ')}</td>
<td>${tenant.registrations.active}</td>
<td>${tenant.registrations.needs_consent}</td>
<td>${tenant.registrations.revoked}</td>
<td>${when(tenant.lastIssuedAt)}</td>
<td>${when(tenant.lastConsentAt)}</td>
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
    : html`<div class="table-scroll"><table>
<thead><tr><th>Tenant</th><th>Apps</th><th>Active</th><th>Needs consent</th><th>Revoked</th><th>Last token</th><th>Last consent</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>`
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

export function renderRegistrations(
  context: ConsoleContext,
  options: {
    items: RegistrationMeta[]
    nextCursor?: string
    filter: RegistrationsFilter
    apps: readonly string[]
    notice?: string
  },
): string {
  const { filter } = options
  const rows = options.items.map(
    (item) => html`<tr>
<td><a href="/admin/registrations/${encodeURIComponent(item.id)}"><code>${item.id}</code></a></td>
<td><code>${item.tenantId}</code></td>
<td>${item.app} <span class="muted">(${item.cloud}, ${item.kind})</span></td>
<td>${item.userName ?? ''}</td>
<td>${statusBadge(item.status)}</td>
<td>${when(item.consentedAt)}</td>
<td>${when(item.lastIssuedAt)}</td>
</tr>`,
  )
  const tenantRevoke =
    filter.tenant === undefined
      ? html``
      : html`<section class="card error">
<h2>Revoke this tenant</h2>
<p>Revokes every registration of tenant <code>${filter.tenant}</code>${filter.app === undefined ? '' : html` for <strong>${filter.app}</strong>`}: integrations using them get <code>revoked</code> at once. A tenant admin can consent again afterwards, which creates new registrations.</p>
<form method="post" action="/admin/tenants/${filter.tenant}/revoke">
${csrfField(context.csrf)}
${filter.app === undefined ? html`` : html`<input type="hidden" name="app" value="${filter.app}">`}
<p><label for="tenant-reason">Reason (recorded and shown to the integration)</label><br>
<input type="text" id="tenant-reason" name="reason" required maxlength="500" size="60"></p>
<p><button type="submit">Revoke ${filter.app === undefined ? 'every registration of this tenant' : `every ${filter.app} registration of this tenant`}</button></p>
</form>
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
${
  options.items.length === 0
    ? html`<p>No registration matches.</p>`
    : html`<div class="table-scroll"><table>
<thead><tr><th>ID</th><th>Tenant</th><th>App</th><th>User</th><th>Status</th><th>Consented</th><th>Last token</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>`
}
${
  options.nextCursor === undefined
    ? html``
    : html`<p><a class="button secondary" href="${registrationsQuery({ ...filter, cursor: options.nextCursor })}">Next page</a></p>`
}
${tenantRevoke}`,
  )
}

export function renderRegistration(
  context: ConsoleContext,
  options: { registration: RegistrationMeta; notice?: string },
): string {
  const r = options.registration
  const detail = r.statusDetail
  const rows: Row[] = [
    ['ID', html`<code>${r.id}</code>`],
    ['App', `${r.app} (${r.kind} consent)`],
    ['Cloud', r.cloud],
    ['Tenant', html`<a href="${registrationsQuery({ tenant: r.tenantId })}"><code>${r.tenantId}</code></a>`],
    ...(r.userName === undefined && r.userOid === undefined
      ? []
      : [
          ['User', `${r.userName ?? ''} ${r.userOid === undefined ? '' : `(${r.userOid})`}`.trim()] as [
            string,
            string,
          ],
        ]),
    ...(r.ownClientId === undefined
      ? []
      : [['App', `the tenant's own app registration, client ID ${r.ownClientId}`] as [string, string]]),
    ['Status', statusBadge(r.status)],
    ...(detail === undefined
      ? []
      : [
          [
            'Status detail',
            html`<code>${detail.code}</code> at ${when(detail.at)}${detail.by === undefined ? '' : html` by <strong>${detail.by}</strong>`}${detail.reason === undefined ? '' : html`: ${detail.reason}`}${detail.message === undefined ? '' : html` — ${detail.message}`}`,
          ] as [string, SafeHtml],
        ]),
    ['Consented', when(r.consentedAt)],
    ['Created', when(r.createdAt)],
    ['Updated', when(r.updatedAt)],
    ['Last token issued', when(r.lastIssuedAt)],
    ['Last client', r.lastClient ?? ''],
    ...(r.kind === 'delegated' ? [['Last refresh', when(r.lastRefreshAt)] as [string, SafeHtml]] : []),
  ]
  const revokeForm =
    r.status === 'revoked'
      ? html`<p class="muted">Revocation is final. The tenant admin can consent again at the app's page, which creates a new registration.</p>`
      : html`<section class="card error">
<h2>Revoke</h2>
<p>The integration using this registration gets <code>revoked</code> on its next token request, on every broker instance. This cannot be undone.</p>
<form method="post" action="/admin/registrations/${encodeURIComponent(r.id)}/revoke">
${csrfField(context.csrf)}
<p><label for="reason">Reason (recorded and shown to the integration)</label><br>
<input type="text" id="reason" name="reason" required maxlength="500" size="60"></p>
<p><button type="submit">Revoke this registration</button></p>
</form>
</section>`
  return consolePage(
    'Registration',
    context,
    '',
    html`${notice(options.notice)}
${detailTable(rows)}
${revokeForm}`,
  )
}

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
<td>${when(record.at)}</td>
<td><code>${record.type}</code></td>
<td>${record.actor}</td>
<td>${record.tenantId === undefined ? '' : html`<code>${record.tenantId}</code>`}${record.app === undefined ? '' : html` ${record.app}`}${
      record.registrationId === undefined
        ? ''
        : html` <a href="/admin/registrations/${encodeURIComponent(record.registrationId)}"><code>${record.registrationId}</code></a>`
    }</td>
<td>${auditDetail(record)}</td>
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
    : html`<div class="table-scroll"><table>
<thead><tr><th>When</th><th>Event</th><th>Actor</th><th>Subject</th><th>Detail</th></tr></thead>
<tbody>${rows}</tbody>
</table></div>`
}
<p>${latest ? '' : html`<a class="button secondary" href="/admin/audit">Latest events</a> `}${next}</p>`,
  )
}

export function renderKeys(
  context: ConsoleContext,
  options: { rotation: RotationStatus; notice?: string },
): string {
  const r = options.rotation
  const rows: Row[] = [
    ['Newest key (seals)', html`<code>${r.currentKeyId}</code>`],
    ['Older keys (open only)', r.oldKeyIds.length === 0 ? 'none' : r.oldKeyIds.join(', ')],
    ['Last pass', `${r.state}${r.state === 'idle' ? '' : ` (key ${r.keyId})`}`],
    ...(r.startedAt === undefined
      ? []
      : [['Started', html`${when(r.startedAt)} by ${r.startedBy ?? ''}`] as [string, SafeHtml]]),
    ...(r.completedAt === undefined ? [] : [['Completed', when(r.completedAt)] as [string, SafeHtml]]),
    ['Registrations scanned', String(r.scanned)],
    ['Re-sealed', String(r.resealed)],
    ['Already under the newest key', String(r.unchanged)],
    ['Failed', r.failed === 0 ? '0' : `${r.failed}: ${r.failedIds.join(', ')}`],
    ...(r.error === undefined ? [] : [['Error', r.error] as [string, string]]),
  ]
  return consolePage(
    'Master keys',
    context,
    '/admin/keys',
    html`${notice(options.notice)}
${detailTable(rows)}
<section class="card">
<h2>Rotate</h2>
<ol class="steps">
<li>Put a new key first in <code>MASTER_KEYS</code>, keep the old ones after it, and restart every instance.</li>
<li>Start a pass here (or <code>consent-broker-admin rotate-keys</code>): every stored secret is re-sealed under the newest key while tokens keep being served. An interrupted pass resumes where it stopped.</li>
<li>When the pass completed with no failures, wait at least 8 hours (the longest console session), then remove the old keys from <code>MASTER_KEYS</code> and restart.</li>
</ol>
<form method="post" action="/admin/keys/rotate">
${csrfField(context.csrf)}
<p><button type="submit"${r.state === 'running' ? html` disabled` : html``}>${r.state === 'interrupted' || r.state === 'failed' ? 'Resume the pass' : 'Start a pass'}</button>
<a class="button secondary" href="/admin/keys">Refresh progress</a></p>
</form>
</section>`,
  )
}
