// Pages of the consent flow: start and failure (the result pages: consent-result-pages.ts). Every
// value is interpolated through `html`, so text from the query string (Microsoft's
// `error_description`) or configuration can never become markup.
import { CLOUDS, type CloudName } from '../clouds.js'
import type { AppConfig, Permission } from '../config.js'
import type { ConsentFailure, ConsentFailureReason } from '../services/consent-flow-types.js'
import { requestedPermissions } from '../services/requested-permissions.js'
import { integrationsLine, kindBadge } from './app-list.js'
import { html, type SafeHtml } from './html.js'
import { page } from './layout.js'

/** Names of the directory roles that may grant tenant-wide consent (the `wids` template ids). */
const ROLE_NAMES: Readonly<Record<string, string>> = {
  '62e90394-69f5-4237-9190-012177145e10': 'Global Administrator',
  'e8611ab8-c189-46e8-94e1-60213ab1f814': 'Privileged Role Administrator',
  '158c047a-c907-4556-b7ef-446551a6b5f7': 'Cloud Application Administrator',
  '9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3': 'Application Administrator',
}

export function roleNames(roleIds: readonly string[]): string[] {
  return roleIds.map((id) => ROLE_NAMES[id.toLowerCase()] ?? `directory role ${id}`)
}

function listText(items: readonly string[]): string {
  if (items.length <= 1) return items.join('')
  return `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`
}

export function permissionRow(permission: Permission): SafeHtml {
  const type =
    permission.type === 'Application'
      ? 'Application (no signed-in user)'
      : 'Delegated (as the signed-in user)'
  return html`<tr><td><code>${permission.name}</code></td><td>${type}</td><td>${permission.description}</td></tr>
`
}

/**
 * The table of exactly the permissions a consent to `app` requests (sign-in scopes included), as
 * requested-permissions.ts derives them from the scopes the flow sends.
 */
export function requestedPermissionsTable(app: AppConfig): SafeHtml {
  return html`<table class="permissions">
<thead><tr><th>Permission</th><th>Type</th><th>Allows</th></tr></thead>
<tbody>
${requestedPermissions(app).map(permissionRow)}</tbody>
</table>`
}

export interface StartPageOptions {
  app: AppConfig
  clouds: readonly CloudName[]
  adminRoleIds: readonly string[]
  flowMinutes: number
  /** The start form's CSRF token (double submit with its cookie). */
  csrf: string
}

/**
 * The form field that picks the Microsoft cloud of a flow: a choice when the app is offered in
 * several, else a hidden field with the one (the start page's and the own-app page's forms).
 */
export function cloudField(clouds: readonly CloudName[]): SafeHtml {
  return clouds.length > 1
    ? html`<p><label for="cloud">Microsoft cloud</label><br>
<select name="cloud" id="cloud">
${clouds.map(
  (cloud) => html`<option value="${cloud}">${CLOUDS[cloud].label}</option>
`,
)}</select></p>`
    : html`<input type="hidden" name="cloud" value="${clouds[0] ?? ''}">`
}

export function renderStartPage({ app, clouds, adminRoleIds, flowMinutes, csrf }: StartPageOptions): string {
  const who =
    app.consent === 'admin'
      ? html`<p><strong>Admin consent.</strong> An administrator of your Microsoft Entra tenant
(${listText(roleNames(adminRoleIds))}) signs in and grants these permissions for the whole
organization. The integration then works without a signed-in user.</p>`
      : html`<p><strong>User consent.</strong> Sign in with the account the integration should act as.
The integration works on behalf of that account only; the broker keeps its access alive and stores
it encrypted.</p>`
  return page({
    title: app.displayName,
    body: html`<h1>${app.displayName} ${kindBadge(app)}</h1>
${integrationsLine(app)}
<p>${app.description}</p>
<section class="card">
<h2>What the integration will be allowed to do</h2>
<p class="muted">${
      // Admin consent grants every permission on the app registration, which often carries more
      // than the integration needs (User.Read by default); a user consents to the scopes asked.
      app.consent === 'admin'
        ? "What the integration needs. Microsoft's consent page lists every permission the app registration has, which can be a few more (often User.Read)."
        : 'Exactly what Microsoft will ask you to consent to.'
    }</p>
${requestedPermissionsTable(app)}
</section>
<section class="card">
<h2>Who consents</h2>
${who}
<form method="post" action="/${app.slug}/start">
<input type="hidden" name="csrf" value="${csrf}">
${cloudField(clouds)}
<button type="submit">Start Authorization Process</button>
</form>
<p class="muted">You will be sent to Microsoft to sign in${app.consent === 'admin' ? ' and consent for your organization' : ''}.
Finish within ${flowMinutes} minutes. Afterwards this site shows the ID, Token and Key to paste into the
integration instance, once.</p>
</section>
<section class="card">
<h2>Already authorized?</h2>
<p>${
      app.consent === 'delegated'
        ? 'Authorizing again with the same account renews its access and keeps the ID, Token and Key it got, without showing the Key again; for a new Key, a tenant administrator (or the operator) revokes the authorization first. '
        : 'Each admin consent gives a new ID and Key; earlier ones stay valid until revoked. '
    }An administrator can see and revoke your organization's authorizations:
<a href="/${app.slug}/manage">manage ${app.displayName}</a>.</p>
</section>
<section class="card">
<h2>Your organization cannot use a third-party app?</h2>
<p>Register the app in your own tenant and let the broker do the rest: no URL building, no code
copying.</p>
<p><a class="button secondary" href="/${app.slug}/own-app">Use your own app registration</a></p>
</section>`,
  })
}

interface FailureText {
  title: string
  message: string
}

function failureText(
  reason: ConsentFailureReason,
  app: AppConfig | undefined,
  adminRoleIds: readonly string[],
) {
  const appName = app?.displayName ?? 'The integration'
  const texts: Record<ConsentFailureReason, FailureText> = {
    cancelled: {
      title: 'Authorization was not granted',
      message:
        'The sign-in was cancelled, the permissions were declined, or Microsoft denied access. No access was given.',
    },
    not_admin: {
      title: 'An administrator must consent',
      message: `${appName} needs consent for the whole organization. The account you signed in with does not hold a role that can grant it (${listText(roleNames(adminRoleIds))}). Ask an administrator to run this authorization.`,
    },
    session_missing: {
      title: 'No authorization in progress',
      message:
        'This browser has no authorization in progress: it expired, was started in another browser, or cookies are blocked for this site. A link already used lands here too, such as the last step of an authorization reloaded after it completed: that authorization stands, and its values were shown once, on the page that followed. If you did not copy them, start again from the integration page.',
    },
    session_expired: {
      title: 'Your authorization expired',
      message: 'An authorization must be finished within a few minutes of starting it. Start again.',
    },
    state_mismatch: {
      title: 'This response does not belong to your authorization',
      message:
        'This link does not match the authorization started in this browser, so it was ignored. An authorization in progress in this browser is untouched: finish it in the tab where you started it.',
    },
    replayed: {
      title: 'This authorization was already used',
      message:
        'This response from Microsoft was already used. Each authorization completes once; start a new one if you need new values.',
    },
    tenant_mismatch: {
      title: 'Consent came back for a different tenant',
      message:
        'The admin consent response names a tenant other than the one you signed in to, so it was rejected.',
    },
    consent_not_effective: {
      title: 'The consent has not taken effect yet',
      message:
        'Microsoft accepted the consent, but it did not take effect in time. It can take a few minutes to apply; wait a moment and try again.',
    },
    idp_error: {
      title: 'Microsoft sign-in failed',
      message: 'Microsoft answered with an error, so the authorization could not be completed.',
    },
    idp_unavailable: {
      title: 'Microsoft could not be reached',
      message:
        "Microsoft's sign-in service did not answer in time or reported a temporary problem. Try again in a few minutes.",
    },
    invalid_id_token: {
      title: 'The sign-in could not be verified',
      message: 'The sign-in response from Microsoft failed validation and was rejected.',
    },
    no_refresh_token: {
      title: 'Microsoft did not grant lasting access',
      message:
        'The sign-in succeeded, but Microsoft returned no refresh token, so the integration could not keep its access.',
    },
    invalid_callback: {
      title: 'Incomplete response from Microsoft',
      message: 'The response carries neither an authorization code nor a well-formed error.',
    },
    own_app_invalid: {
      title: 'The app registration details are incomplete',
      message:
        'The tenant ID and the application (client) ID must be GUIDs (Microsoft Entra admin center → App registrations → your app → Overview), and the browser method needs the client secret value.',
    },
    own_app_secret_rejected: {
      title: 'Microsoft refused the client secret',
      message:
        'The client secret does not belong to this app or has expired. In the Microsoft Entra admin center, open App registrations → your app → Certificates & secrets, create a new client secret and paste its Value (not its Secret ID).',
    },
    own_app_not_in_tenant: {
      title: 'The app registration is not in that tenant',
      message:
        'Microsoft found no app with this application (client) ID in the tenant given, or you signed in to another tenant. Check the Directory (tenant) ID and the Application (client) ID on the app’s Overview page, and sign in with an account of that tenant.',
    },
    own_app_public_client_disabled: {
      title: 'Public client flows are turned off for this app',
      message:
        'The device code method needs the app to allow public client flows. In the Microsoft Entra admin center, open App registrations → your app → Authentication → Advanced settings, set "Allow public client flows" to Yes and save, then start again.',
    },
    own_app_needs_secret: {
      title: 'This app family needs the browser method',
      message: `${appName} uses application permissions, granted by an administrator for the whole organization. Microsoft gives those only to an app that authenticates with a secret or certificate; the device code method signs in a user and yields delegated access only. Use the browser method with your app's client secret (App registrations → your app → Certificates & secrets).`,
    },
    device_code_expired: {
      title: 'The code expired',
      message:
        'The code must be entered and the sign-in finished at Microsoft within about 15 minutes. Nothing was created; start again and enter the new code promptly.',
    },
    own_app_missing_permissions: {
      title: 'The app registration lacks permissions',
      message: `Your app registration does not have (or has no consent for) the permissions ${appName} needs. In the Microsoft Entra admin center, open App registrations → your app → API permissions, add the permissions listed on the own-app page (application permissions for admin consent, delegated for delegated), then start again.`,
    },
  }
  return texts[reason]
}

/**
 * Failures a link already used also lands on (a reloaded callback): an authorization it finished
 * stands, so the page says only that this page created nothing.
 */
const LINK_USED: ReadonlySet<ConsentFailureReason> = new Set(['session_missing', 'replayed'])

export interface FailurePageOptions {
  failure: ConsentFailure
  adminRoleIds: readonly string[]
  requestId: string
}

export function renderFailurePage({ failure, adminRoleIds, requestId }: FailurePageOptions): string {
  const { title, message } = failureText(failure.reason, failure.app, adminRoleIds)
  const provider =
    failure.providerMessage === undefined
      ? html``
      : html`<p>Microsoft said: <code class="provider-message">${failure.providerMessage}</code></p>`
  const manage = failure.purpose === 'manage'
  const again =
    failure.app === undefined
      ? html`<a class="button" href="/">Start again</a>`
      : manage
        ? html`<a class="button" href="/${failure.app.slug}/manage">Try again</a>`
        : html`<a class="button" href="/${failure.app.slug}">Try again</a>`
  return page({
    title,
    body: html`<section class="card error">
<h1>${title}</h1>
<p>${message}</p>
${provider}
<p>${manage ? 'You are not signed in; nothing was changed.' : LINK_USED.has(failure.reason) ? 'Nothing was created by this page.' : 'Nothing was created.'}</p>
<p>${again}</p>
<p class="muted">Reason: <code>${failure.reason}</code> · Request ID: <code>${requestId}</code></p>
</section>`,
  })
}
