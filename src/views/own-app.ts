// The own-app page (`/{app}/own-app`): what a tenant administrator configures on their own app
// registration, and the form that starts the flow with it. Escaped by construction (`html`).
import type { CloudName } from '../clouds.js'
import type { AppConfig } from '../config.js'
import { integrationsLine, kindBadge } from './app-list.js'
import { cloudField, requestedPermissionsTable } from './consent-pages.js'
import { html } from './html.js'
import { page } from './layout.js'

export interface OwnAppPageOptions {
  app: AppConfig
  clouds: readonly CloudName[]
  /** `<PUBLIC_URL>/callback`: the redirect URI the app registration must list. */
  redirectUri: string
  /** The form's CSRF token (its signed cookie is set with the page). */
  csrf: string
}

export function renderOwnAppPage({ app, clouds, redirectUri, csrf }: OwnAppPageOptions): string {
  const admin = app.consent === 'admin'
  return page({
    title: `${app.displayName}: your own app registration`,
    body: html`<h1>${app.displayName} ${kindBadge(app)}</h1>
${integrationsLine(app)}
<section class="card">
<h2>Use your own app registration</h2>
<p>Instead of the hosted app, the broker uses an app registered in your own Microsoft Entra tenant.
You get the same ID, Token and Key; the integration then uses the broker as with the hosted app.</p>
<h3>Configure your app registration first</h3>
<ol>
<li>In the Microsoft Entra admin center, open <strong>App registrations → New registration</strong>
(single tenant is fine). Note the <strong>Application (client) ID</strong> and the
<strong>Directory (tenant) ID</strong> on its Overview page.</li>
<li>Browser method: under <strong>Authentication</strong>, add the platform <strong>Web</strong> with
the redirect URI <code data-field="redirect_uri">${redirectUri}</code> exactly; under
<strong>Certificates &amp; secrets</strong>, create a client secret and copy its <strong>Value</strong>
(not the Secret ID).</li>
${
  admin
    ? html``
    : html`<li>Device code method (no secret): under <strong>Authentication → Advanced settings</strong>,
set <strong>Allow public client flows</strong> to <strong>Yes</strong> and save. The broker shows a
code; you enter it at Microsoft and sign in.</li>
`
}
<li>Under <strong>API permissions</strong>, add the ${admin ? 'application' : 'delegated'} permissions below${admin ? ' (an administrator grants them during the authorization)' : ''}.
The broker requests exactly these; the sign-in ones (<code>openid</code>, <code>profile</code>${admin ? '' : html`, <code>offline_access</code>`})
need no configuration.
${requestedPermissionsTable(app)}</li>
</ol>
<p class="muted">${
      admin
        ? 'Sign in with an administrator of that tenant: the broker asks for admin consent to the application permissions.'
        : 'Sign in with the account the integration should act as: the broker keeps its access alive and stores it encrypted.'
    } The client secret is checked with Microsoft before anything is stored, then kept encrypted; it
never leaves the broker and a tenant administrator can replace it later from the manage page.${
      admin
        ? html` The device code method is not offered here: it yields delegated access only, and
Microsoft grants application permissions only to an app with a secret.`
        : html` The device code method stores nothing of your app but its application ID.`
    }</p>
<form method="post" action="/${app.slug}/own-app">
<input type="hidden" name="csrf" value="${csrf}">
<p><label for="tenant_id">Directory (tenant) ID</label><br>
<input type="text" id="tenant_id" name="tenant_id" required autocomplete="off" placeholder="00000000-0000-0000-0000-000000000000"></p>
<p><label for="client_id">Application (client) ID</label><br>
<input type="text" id="client_id" name="client_id" required autocomplete="off" placeholder="00000000-0000-0000-0000-000000000000"></p>
${
  admin
    ? html`<input type="hidden" name="method" value="authorization_code">
`
    : html`<fieldset><legend>Method</legend>
<p><label><input type="radio" name="method" value="authorization_code" checked> Browser sign-in (client ID and secret)</label><br>
<label><input type="radio" name="method" value="device_code"> Device code (public client: application ID only)</label></p>
</fieldset>
`
}<p><label for="client_secret">Client secret value${admin ? '' : ' (browser sign-in only)'}</label><br>
<input type="password" id="client_secret" name="client_secret" autocomplete="off"></p>
${cloudField(clouds)}
<button type="submit">Start Authorization Process</button>
</form>
</section>
<p><a href="/${app.slug}">Back to the hosted app</a></p>`,
  })
}
