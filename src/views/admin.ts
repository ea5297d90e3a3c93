// The admin console's frame and shared pieces: the navigation, the page layout (wider than the
// public pages, so tables fit 1280 px screens), the sign-in page and small helpers the page views
// (admin-*.ts) share. Plain HTML forms (no script needed, none inline), every value escaped by the
// `html` template, every state-changing form carrying the session's CSRF token.
import { shortId } from './console-format.js'
import { html, type SafeHtml } from './html.js'
import { page } from './layout.js'
import { csrfField } from './parts.js'

export interface ConsoleContext {
  operator: string
  csrf: string
  /** The server's clock (epoch ms): times are shown relative to it. */
  now: number
}

function nav(context: ConsoleContext, current: string): SafeHtml {
  const link = (href: string, label: string) =>
    current === href ? html`<strong>${label}</strong>` : html`<a href="${href}">${label}</a>`
  return html`<nav class="card admin-nav" aria-label="Admin console">
<p>${link('/admin/home', 'Home')} · ${link('/admin/tenants', 'Tenants')} · ${link('/admin/registrations', 'Registrations')} · ${link('/admin/audit', 'Audit trail')} · ${link('/admin/keys', 'Master keys')} · ${link('/admin/webhooks', 'Webhooks')} · ${link('/admin/credentials', 'App credentials')}</p>
<form method="post" action="/admin/sign-out">
${csrfField(context.csrf)}
<p class="muted">Signed in as <strong>${context.operator}</strong> <button type="submit" class="secondary">Sign out</button></p>
</form>
</nav>`
}

/** A console page: the navigation, the title, the body. */
export function consolePage(title: string, context: ConsoleContext, current: string, body: SafeHtml): string {
  return page({
    title: `${title} · Admin`,
    mainClass: 'console',
    body: html`${nav(context, current)}
<h1>${title}</h1>
${body}`,
  })
}

/** One row of a detail table: what, and its value. */
export type Row = [label: string, value: SafeHtml | string]

/** A status as people read it: `needs consent`. */
export const statusLabel = (status: string) => status.replace('_', ' ')

export function statusBadge(status: string): SafeHtml {
  return html`<span class="badge status-${status}">${statusLabel(status)}</span>`
}

/** The `<option>`s of a filter's `<select>`, `selected` marked. */
export function optionList(
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
export function detailTable(rows: readonly Row[]): SafeHtml {
  return html`<section class="card"><table class="details"><tbody>${rows.map(([label, value]) => html`<tr><th>${label}</th><td>${value}</td></tr>`)}</tbody></table></section>`
}

/** The registrations page filtered by `filter` (empty values dropped). */
export function registrationsQuery(filter: Record<string, string | undefined>): string {
  const params = new URLSearchParams()
  for (const [name, value] of Object.entries(filter))
    if (value !== undefined && value !== '') params.set(name, value)
  const query = params.toString()
  return query === '' ? '/admin/registrations' : `/admin/registrations?${query}`
}

/** A tenant: its label (when it has one) beside its short id, linked to its registrations. */
export function tenantRef(tenantId: string, label?: string): SafeHtml {
  const id = shortId(tenantId, 'tenant ID', registrationsQuery({ tenant: tenantId }))
  return label === undefined || label === ''
    ? id
    : html`<span class="tenant-label" title="${label}">${label}</span> ${id}`
}

/** Who consented: the display name, and the UPN under it (each when known). */
export function consentedByCell(by: { upn?: string; name?: string } | undefined): SafeHtml {
  if (by === undefined) return html``
  if (by.name === undefined) return html`<span class="upn">${by.upn ?? ''}</span>`
  return html`${by.name}${by.upn === undefined ? html`` : html`<br><span class="muted upn">${by.upn}</span>`}`
}

/** A registration id, short, linked to its page. */
export function registrationRef(id: string): SafeHtml {
  return shortId(id, 'registration ID', `/admin/registrations/${encodeURIComponent(id)}`)
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
