// The one-time result pages of the consent flow: the new authorization's ID, Token and Key (shown
// once), a renewal (never the Key), a Key another consent replaced, and no result (already taken, or
// never in this browser). Every value is interpolated through `html`.
import { CLOUDS } from '../clouds.js'
import type { ConsentResult } from '../services/consent-flow-types.js'
import { html, type SafeHtml } from './html.js'
import { page } from './layout.js'
import { subscriptionsSection } from './subscriptions.js'

function valueRow(label: string, field: 'id' | 'token' | 'key', value: string): SafeHtml {
  return html`<h3>${label}</h3>
<div class="value"><code data-field="${field}">${value}</code><button type="button" class="secondary" data-copy="${field}">Copy</button></div>
`
}

/**
 * A renewed registration's page: ID and Token, never the Key (the integration has it; showing it
 * again would hand it to anyone who can sign in as the user), and how to replace a lost Key.
 */
function renewedPage(result: ConsentResult, intro: SafeHtml, own: SafeHtml): string {
  return page({
    title: 'Authorization renewed',
    body: html`<section class="card success" data-result="renewed">
<h1>Authorization renewed</h1>
${intro}
${own}
<p>You had already authorized this integration with this account, so this renewed that
authorization instead of creating another: its ID, Token and Key stay the same and now use the access
you just granted. <strong>Nothing needs pasting:</strong> the integration instance keeps working with
the ID and Key it already has.</p>
${valueRow('ID', 'id', result.id)}
${valueRow('Token', 'token', result.token)}
<p>The Key is shown only once, when an authorization is created, and is not shown again.</p>
</section>
${subscriptionsSection(result)}
<section class="card">
<h2>Lost the Key?</h2>
<p>Revoke this authorization — a tenant administrator can, on <a href="/${result.app}/manage">manage
${result.appName}</a>, or the broker's operator — then authorize again: that creates a new
authorization with a new ID and Key, shown once.</p>
</section>`,
  })
}

/**
 * A result whose new Key can no longer be shown: another authorization by the same account (another
 * tab) replaced it, or it was revoked meanwhile. Nothing to paste from here.
 */
function keyWithdrawnPage(result: ConsentResult): string {
  return page({
    title: 'Key replaced',
    body: html`<section class="card" data-result="key-withdrawn">
<h1>This Key was replaced</h1>
<p>The Key of this authorization is not shown: since it was created, another authorization of
${result.appName} with this account replaced it — its page (in another tab or window) shows the ID,
Token and Key to use — or the authorization was revoked.</p>
<p>Use the values the latest page showed. If you have none, authorize again: that shows a new Key,
once.</p>
</section>`,
  })
}

export function renderResultPage(result: ConsentResult): string {
  const intro =
    result.kind === 'admin'
      ? html`<p>${result.appName} can now get tokens for tenant <code>${result.token}</code> in the
${CLOUDS[result.cloud].label} cloud without a signed-in user.</p>`
      : html`<p>${result.appName} can now act as <strong>${result.userName}</strong> in tenant
<code>${result.token}</code>, in the ${CLOUDS[result.cloud].label} cloud.</p>`
  const own =
    result.ownClientId === undefined
      ? html``
      : html`<p>This authorization uses <strong>your own app registration</strong>, client ID
<code data-field="own_client_id">${result.ownClientId}</code>: ${
          result.ownAppPublicClient === true
            ? html`a public client (device code method), so the broker holds no secret of it — only the
access you just granted, encrypted. Keep <strong>Allow public client flows</strong> turned on for
the app: the broker renews the access with the app's ID alone.`
            : html`the broker requests every token with that app and its secret, which never leaves the
broker.`
        }</p>`
  if (result.reused) {
    return result.keyWithdrawn === true ? keyWithdrawnPage(result) : renewedPage(result, intro, own)
  }
  const ownStep =
    result.ownClientId === undefined
      ? html`<li>Leave <strong>Use a self-deployed Azure application</strong> unticked.</li>`
      : html`<li>Leave <strong>Use a self-deployed Azure application</strong> unticked, and leave its
Application ID, Client Secret and Authorization code fields empty (and do not run the
integration's own device code command): the broker holds your app's grant and does the
self-deployed part for the integration.</li>`
  return page({
    title: 'Authorization complete',
    body: html`<section class="card success">
<h1>Authorization complete</h1>
${intro}
${own}
<p><strong>Copy these three values now: this page is shown only once.</strong> The Key is a secret;
keep it only in the integration instance.</p>
${valueRow('ID', 'id', result.id)}
${valueRow('Token', 'token', result.token)}
${valueRow('Key', 'key', result.key)}
</section>
${subscriptionsSection(result)}
<section class="card">
<h2>Configure the integration instance</h2>
<ol class="steps">
<li>In Cortex XSOAR, go to <strong>Settings &gt; Integrations &gt; Servers &amp; Services</strong>,
search for <strong>${result.appName}</strong> and click <strong>Add instance</strong> (or open the instance to update).</li>
<li>Paste the <strong>ID</strong> above into the <strong>ID</strong> field.</li>
<li>Paste the <strong>Token</strong> above into the <strong>Token</strong> field.</li>
<li>Paste the <strong>Key</strong> above into the <strong>Key</strong> field.</li>
${ownStep}
<li>Click <strong>Test</strong>, then <strong>Save &amp; exit</strong>.</li>
</ol>
<p class="muted">Every instance configured with the same ID, Token and Key shares this authorization.
${
  result.kind === 'delegated'
    ? 'Authorizing again with the same account renews this access and keeps this ID, Token and Key (the Key is not shown again); another account gets values of its own.'
    : 'Authorizing again creates another ID and Key for this tenant; these stay valid until they are revoked.'
}</p>
<p>See and revoke your organization's authorizations of this integration:
<a href="/${result.app}/manage">manage ${result.appName}</a>.</p>
</section>`,
  })
}

export function renderResultGonePage(): string {
  return page({
    title: 'No values to show',
    body: html`<section class="card error">
<h1>No values to show</h1>
<p>For safety, the ID, Token and Key of an authorization are shown only once, right after it
completes, in the browser that completed it. This page has none to show: they were already shown,
or no authorization just completed in this browser. If you did not copy them, run the authorization
again from the integration's page: an admin consent gives new values. A user's authorization is
renewed instead, keeping its ID and Key without showing the Key again: for a new Key, a tenant
administrator revokes it first on the integration's manage page.</p>
<p><a class="button" href="/">See the integrations</a></p>
</section>`,
  })
}
