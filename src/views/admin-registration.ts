// One registration in the console, and the confirmation pages before a revocation: the
// registration's page links to "Revoke…", which shows what will be revoked and asks for the reason;
// only that page's form (session CSRF token, required reason) revokes. The tenant's revocation
// works the same way, showing how many registrations it ends.
import type { OperatorRegistration } from '../services/admin-queries.js'
import {
  type ConsoleContext,
  consentedByCell,
  consolePage,
  detailTable,
  type Row,
  registrationsQuery,
  statusBadge,
  tenantRef,
} from './admin.js'
import { registrationsTable } from './admin-registrations.js'
import { ago, copyButton } from './console-format.js'
import { html, type SafeHtml } from './html.js'
import { csrfField, notice } from './parts.js'

/** A full id, wrapped where it must, with a copy button. */
function fullId(id: string, what: string): SafeHtml {
  return html`<code class="full-id">${id}</code>${copyButton(id, what)}`
}

function registrationRows(r: OperatorRegistration, now: number): Row[] {
  const detail = r.statusDetail
  return [
    ['ID', fullId(r.id, 'registration ID')],
    ['App', `${r.app} (${r.kind} consent)`],
    ['Cloud', r.cloud],
    [
      'Tenant',
      html`<a href="${registrationsQuery({ tenant: r.tenantId })}" title="The tenant's registrations"><code class="full-id">${r.tenantId}</code></a>${copyButton(r.tenantId, 'tenant ID')}`,
    ],
    ...(r.tenantLabel === undefined ? [] : [['Tenant label', r.tenantLabel] as [string, string]]),
    ...(r.consentedBy === undefined && r.userOid === undefined
      ? []
      : [
          [
            'Consented by',
            html`${consentedByCell(r.consentedBy)}${r.userOid === undefined ? '' : html`<br><span class="muted">object ID <code>${r.userOid}</code></span>`}`,
          ] as [string, SafeHtml],
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
            html`<code>${detail.code}</code> ${ago(detail.at, now)}${detail.by === undefined ? '' : html` by <strong>${detail.by}</strong>`}${detail.reason === undefined ? '' : html`: ${detail.reason}`}${detail.message === undefined ? '' : html` — ${detail.message}`}`,
          ] as [string, SafeHtml],
        ]),
    ['Consented', ago(r.consentedAt, now)],
    ['Created', ago(r.createdAt, now)],
    ['Updated', ago(r.updatedAt, now)],
    ['Last token issued', ago(r.lastIssuedAt, now)],
    ['Last client', r.lastClient ?? ''],
    ...(r.kind === 'delegated' ? [['Last refresh', ago(r.lastRefreshAt, now)] as [string, SafeHtml]] : []),
  ]
}

const revokePath = (id: string) => `/admin/registrations/${encodeURIComponent(id)}/revoke`

export function renderRegistration(
  context: ConsoleContext,
  options: { registration: OperatorRegistration; notice?: string },
): string {
  const r = options.registration
  const revoke =
    r.status === 'revoked'
      ? html`<p class="muted">Revocation is final. The tenant admin can consent again at the app's page, which creates a new registration.</p>`
      : html`<section class="card error">
<h2>Revoke</h2>
<p>The integration using this registration gets <code>revoked</code> on its next token request, on every broker instance. This cannot be undone; you confirm it, with a reason, on the next page.</p>
<p><a class="button danger" href="${revokePath(r.id)}">Revoke this registration…</a></p>
</section>`
  return consolePage(
    'Registration',
    context,
    '',
    html`${notice(options.notice)}
${detailTable(registrationRows(r, context.now))}
${revoke}`,
  )
}

/** The reason field and the confirming button of a revocation form. */
function reasonForm(
  context: ConsoleContext,
  action: string,
  button: string,
  hidden: SafeHtml,
  cancel: string,
) {
  return html`<form method="post" action="${action}">
${csrfField(context.csrf)}
${hidden}
<p><label for="reason">Reason (required: recorded in the audit trail and shown to the integration)</label><br>
<input type="text" id="reason" name="reason" required maxlength="500" size="60" autofocus></p>
<p><button type="submit" class="danger">${button}</button> <a class="button secondary" href="${cancel}">Cancel</a></p>
</form>`
}

/** The confirmation before revoking one registration (GET /admin/registrations/:id/revoke). */
export function renderRevokeRegistration(
  context: ConsoleContext,
  registration: OperatorRegistration,
): string {
  const r = registration
  const back = `/admin/registrations/${encodeURIComponent(r.id)}`
  const body =
    r.status === 'revoked'
      ? html`<section class="card"><p>This registration is already revoked; its original revocation is kept.</p>
<p><a class="button secondary" href="${back}">Back to the registration</a></p></section>`
      : html`<section class="card error">
<p><strong>This revokes the registration below.</strong> The integration using it gets <code>revoked</code> on its next token request, on every broker instance, and its cached tokens are deleted. It cannot be undone: the tenant would have to consent again, which creates a new registration with a new Key.</p>
${reasonForm(context, revokePath(r.id), 'Revoke this registration', html``, back)}
</section>`
  return consolePage(
    'Revoke a registration?',
    context,
    '',
    html`${body}
${detailTable(registrationRows(r, context.now))}`,
  )
}

/** The confirmation before revoking a tenant's registrations (GET /admin/tenants/:tenantId/revoke). */
export function renderRevokeTenant(
  context: ConsoleContext,
  options: {
    tenantId: string
    tenantLabel?: string
    app?: string
    /** How many of the tenant's registrations (of `app`) are not revoked yet (among those read). */
    toRevoke: number
    /** False when the tenant has more registrations than were read: `toRevoke` is a minimum. */
    complete: boolean
    /** The first of them. */
    items: readonly OperatorRegistration[]
  },
): string {
  const { tenantId, app, toRevoke, complete } = options
  const howMany = complete
    ? `${toRevoke} registration${toRevoke === 1 ? '' : 's'} not yet revoked`
    : `more registrations than this page reads; at least ${toRevoke} not yet revoked`
  const back = registrationsQuery({ tenant: tenantId, app })
  const scope = app === undefined ? 'every registration' : html`every <strong>${app}</strong> registration`
  const body =
    toRevoke === 0 && complete
      ? html`<section class="card"><p>This tenant has no registration left to revoke${app === undefined ? '' : ` for ${app}`}.</p>
<p><a class="button secondary" href="${back}">Back to its registrations</a></p></section>`
      : html`<section class="card error">
<p><strong>This revokes ${scope} of tenant ${tenantRef(tenantId, options.tenantLabel)}: ${howMany}.</strong> Integrations using them get <code>revoked</code> at once, on every broker instance. It cannot be undone; a tenant admin can consent again afterwards, which creates new registrations.</p>
<p class="muted">Full tenant ID: ${fullId(tenantId, 'tenant ID')}</p>
${reasonForm(
  context,
  `/admin/tenants/${tenantId}/revoke`,
  complete ? `Revoke ${toRevoke} registration${toRevoke === 1 ? '' : 's'}` : 'Revoke all of them',
  app === undefined ? html`` : html`<input type="hidden" name="app" value="${app}">`,
  back,
)}
</section>`
  return consolePage(
    'Revoke a tenant?',
    context,
    '',
    html`${body}
${options.items.length === 0 ? html`` : html`<h2>${options.items.length < toRevoke || !complete ? `The first ${options.items.length}` : 'They are'}</h2>${registrationsTable(options.items, context.now)}`}`,
  )
}
