// Tenant self-service pages (`/{app}/manage`): a tenant administrator sees and revokes their own
// tenant's registrations of one app, and learns how to remove the app's consent at Microsoft.
import { CLOUDS, type CloudName } from '../clouds.js'
import type { AppConfig } from '../config.js'
import type { RegistrationMeta } from '../services/revocation.js'
import { html } from './html.js'
import { page } from './layout.js'
import { csrfField, notice, when } from './parts.js'

/** The portal where Enterprise applications live, per cloud. */
const PORTALS: Readonly<Record<CloudName, string>> = {
  global: 'https://portal.azure.com',
  usgov: 'https://portal.azure.us',
  dod: 'https://portal.azure.us',
  china: 'https://portal.azure.cn',
}
const ENTERPRISE_APPS_BLADE = '#view/Microsoft_AAD_IAM/StartboardApplicationsMenuBlade/~/AppAppsPreview'
export const REVOKE_CONSENT_DOCS =
  'https://learn.microsoft.com/en-us/entra/identity-platform/howto-convert-app-to-be-multi-tenant#revoke-consent'

export function enterpriseAppsUrl(cloud: CloudName): string {
  return `${PORTALS[cloud]}/${ENTERPRISE_APPS_BLADE}`
}

export function renderManageSignIn(options: {
  app: AppConfig
  clouds: readonly CloudName[]
  roleNames: readonly string[]
  /** The sign-in form's CSRF token (double submit with its cookie). */
  csrf: string
}): string {
  const { app, clouds } = options
  const cloudField =
    clouds.length > 1
      ? html`<p><label for="cloud">Microsoft cloud</label><br>
<select name="cloud" id="cloud">${clouds.map((cloud) => html`<option value="${cloud}">${CLOUDS[cloud].label}</option>`)}</select></p>`
      : html`<input type="hidden" name="cloud" value="${clouds[0] ?? ''}">`
  return page({
    title: `Manage ${app.displayName}`,
    body: html`<section class="card">
<h1>Manage ${app.displayName}</h1>
<p>Tenant administrators (${options.roleNames.join(', ')}) can see every registration their
organization made for this integration, and revoke them. Sign in with your Microsoft work account;
you will only ever see your own tenant.</p>
<form method="post" action="/${app.slug}/manage/sign-in">
<input type="hidden" name="csrf" value="${options.csrf}">
${cloudField}
<p><button type="submit">Sign in as a tenant administrator</button></p>
</form>
<p class="muted"><a href="/${app.slug}">Back to the authorization page</a></p>
</section>`,
  })
}

export function renderManagePage(options: {
  app: AppConfig
  cloud: CloudName
  tenantId: string
  adminName: string
  csrf: string
  registrations: RegistrationMeta[]
  notice?: string
}): string {
  const { app, cloud, tenantId, csrf } = options
  const clientId = app.clouds[cloud]?.clientId ?? ''
  const active = options.registrations.filter((r) => r.status !== 'revoked')
  const rows = options.registrations.map(
    (r) => html`<tr>
<td><code>${r.id}</code></td>
<td>${r.kind === 'delegated' ? (r.userName ?? r.userOid ?? '') : 'whole tenant (admin consent)'}</td>
<td><span class="badge">${r.status.replace('_', ' ')}</span>${
      r.statusDetail === undefined
        ? ''
        : html`<br><span class="muted">${r.statusDetail.code} at ${r.statusDetail.at}${r.statusDetail.by === undefined ? '' : ` by ${r.statusDetail.by}`}${r.statusDetail.reason === undefined ? '' : `: ${r.statusDetail.reason}`}</span>`
    }</td>
<td>${when(r.consentedAt)}</td>
<td>${when(r.lastIssuedAt)}${r.lastClient === undefined ? '' : html`<br><span class="muted">${r.lastClient}</span>`}</td>
<td>${
      r.status === 'revoked'
        ? ''
        : html`<form method="post" action="/${app.slug}/manage/registrations/${encodeURIComponent(r.id)}/revoke">
${csrfField(csrf)}
<label for="reason-${r.id}">Reason</label>
<input type="text" id="reason-${r.id}" name="reason" required maxlength="500" size="24">
<button type="submit">Revoke</button>
</form>${
            r.ownClientId === undefined
              ? ''
              : html`<form method="post" action="/${app.slug}/manage/registrations/${encodeURIComponent(r.id)}/client-secret">
${csrfField(csrf)}
<p class="muted">Your own app <code>${r.ownClientId}</code></p>
<label for="secret-${r.id}">New client secret value</label>
<input type="password" id="secret-${r.id}" name="client_secret" required maxlength="512" autocomplete="off" size="24">
<button type="submit" class="secondary">Replace secret</button>
</form>`
          }`
    }</td>
</tr>`,
  )
  return page({
    title: `Manage ${app.displayName}`,
    body: html`<section class="card">
<h1>Manage ${app.displayName}</h1>
<p>Tenant <code>${tenantId}</code>, signed in as <strong>${options.adminName}</strong>.</p>
<form method="post" action="/${app.slug}/manage/sign-out">${csrfField(csrf)}<p><button type="submit" class="secondary">Sign out</button></p></form>
</section>
${notice(options.notice)}
<section class="card">
<h2>Registrations of your tenant</h2>
${
  options.registrations.length === 0
    ? html`<p>Your tenant has no registration for this integration.</p>`
    : html`<p>An integration configured with a revoked registration's ID, Token and Key stops getting
access tokens at once. To use the integration again, authorize it again at
<a href="/${app.slug}">the authorization page</a>: that creates a new registration.</p>
<table>
<thead><tr><th>ID</th><th>Consented for</th><th>Status</th><th>Consented</th><th>Last token</th><th></th></tr></thead>
<tbody>${rows}</tbody>
</table>`
}
${
  active.length < 2
    ? ''
    : html`<form method="post" action="/${app.slug}/manage/revoke-all">
${csrfField(csrf)}
<p><label for="reason-all">Reason</label>
<input type="text" id="reason-all" name="reason" required maxlength="500" size="40">
<button type="submit">Revoke all ${active.length} registrations of your tenant</button></p>
</form>`
}
</section>
<section class="card">
<h2>Remove the consent at Microsoft</h2>
<p>Revoking here stops the broker from issuing tokens. To also withdraw the permissions your
organization granted to the app in Microsoft Entra ID:</p>
<ol class="steps">
<li>Sign in to <a href="${enterpriseAppsUrl(cloud)}" rel="noopener noreferrer">the Azure portal</a> as a Global Administrator.</li>
<li>Go to <strong>Microsoft Entra ID</strong> → <strong>Enterprise applications</strong> → <strong>All applications</strong> and search for the application ID <code>${clientId}</code> (${app.displayName}).</li>
<li>Open it, select <strong>Properties</strong>, then <strong>Delete</strong>, and confirm. This removes the app and every permission granted to it from your tenant${app.consent === 'delegated' ? ', for every user who consented' : ''}.</li>
</ol>
<p class="muted">Microsoft's documentation: <a href="${REVOKE_CONSENT_DOCS}" rel="noopener noreferrer">revoking consent to a multi-tenant application</a>.</p>
</section>`,
  })
}
