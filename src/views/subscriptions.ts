// The result page's Azure section: the subscriptions (and resource groups) the registration can
// see, to paste as Subscription ID and Resource Group Name; or, when it sees none, that it needs an
// Azure role and how to give it one; or that they could not be listed (the values still work).
import type { AzureSubscription } from '../entra/resource-manager.js'
import type { SubscriptionsOutcome } from '../services/azure-subscriptions.js'
import type { ConsentResult } from '../services/consent-flow-types.js'
import { html, type SafeHtml } from './html.js'

const FAILURE_TEXT: Readonly<Record<Extract<SubscriptionsOutcome, { kind: 'failed' }>['reason'], string>> = {
  unauthorized: 'Azure Resource Manager refused the new access token.',
  forbidden: 'Azure Resource Manager refused to list them.',
  unavailable: 'Azure Resource Manager could not be reached or reported an error.',
  timeout: 'Azure Resource Manager did not answer in time.',
  invalid: 'Azure Resource Manager answered something unexpected.',
  no_token: 'Microsoft returned no Resource Manager token with the consent.',
}

function groupsCell(subscription: AzureSubscription): SafeHtml {
  if (subscription.resourceGroups === undefined) return html`<span class="muted">could not be listed</span>`
  if (subscription.resourceGroups.length === 0) return html`<span class="muted">none</span>`
  return html`<ul class="resource-groups">${subscription.resourceGroups.map(
    (name) => html`<li><code>${name}</code></li>`,
  )}</ul>${subscription.moreResourceGroups ? html`<span class="muted">and more</span>` : html``}`
}

/** How to give the principal a role: the app's service principal (admin) or the signed-in user. */
function howToAssignRole(result: ConsentResult): SafeHtml {
  const who =
    result.kind === 'admin'
      ? html`the app (<strong>${result.appName}</strong>, application (client) ID
<code data-field="client-id">${result.clientId ?? ''}</code>)`
      : html`your account <strong>${result.userName}</strong>`
  const member =
    result.kind === 'admin'
      ? html`<strong>User, group, or service principal</strong>, then <strong>Select members</strong> and search
for the application (client) ID above`
      : html`<strong>User, group, or service principal</strong>, then <strong>Select members</strong> and pick
<strong>${result.userName}</strong>`
  const cli =
    result.kind === 'admin'
      ? html`<p>Or with the Azure CLI, per subscription:
<code class="command">az role assignment create --assignee ${result.clientId ?? ''} --role Reader --scope /subscriptions/&lt;subscription-id&gt;</code></p>`
      : html``
  return html`<p>Azure gives access to subscriptions through roles, not through the consent you just
gave: ${who} needs an Azure role on each subscription the integration should use. Someone who is
Owner or User Access Administrator of the subscription gives it:</p>
<ol class="steps">
<li>In the Azure portal, open <strong>Subscriptions</strong> and choose the subscription.</li>
<li>Open <strong>Access control (IAM)</strong>, then <strong>Add &gt; Add role assignment</strong>.</li>
<li>Choose a role: <strong>Reader</strong> for read-only commands, <strong>Contributor</strong> (or a narrower
built-in role) where the integration changes resources.</li>
<li>Under <strong>Members</strong>, assign access to ${member}.</li>
<li>Click <strong>Review + assign</strong>. It takes effect within a few minutes; then use the
integration's <strong>Test</strong> button.</li>
</ol>
${cli}`
}

/** The section for Azure apps' result pages; nothing for other apps. */
export function subscriptionsSection(result: ConsentResult): SafeHtml {
  const outcome = result.subscriptions
  if (outcome === undefined) return html``
  if (outcome.kind === 'failed') {
    return html`<section class="card" id="subscriptions">
<h2>Azure subscriptions</h2>
<p>The subscriptions this authorization can see could not be listed: ${FAILURE_TEXT[outcome.reason]}
${result.reused ? 'The ID, Token and Key the integration has are valid all the same.' : 'The ID, Token and Key above are valid all the same.'}</p>
<p>Find the <strong>Subscription ID</strong> in the Azure portal under <strong>Subscriptions</strong>, and
the <strong>Resource Group Name</strong> under the subscription's <strong>Resource groups</strong>.</p>
</section>`
  }
  if (outcome.subscriptions.length === 0) {
    return html`<section class="card error" id="subscriptions">
<h2>No Azure role yet</h2>
<p>This authorization can't see any Azure subscription yet.</p>
${howToAssignRole(result)}
</section>`
  }
  return html`<section class="card" id="subscriptions">
<h2>Azure subscriptions this authorization can see</h2>
<p>Paste a <strong>Subscription ID</strong> (and, where the integration asks for one, a
<strong>Resource Group Name</strong>) into the instance.</p>
<div class="table-scroll"><table>
<thead><tr><th>Subscription</th><th>Subscription ID</th><th>State</th><th>Resource groups</th></tr></thead>
<tbody>
${outcome.subscriptions.map(
  (
    s,
  ) => html`<tr><td>${s.displayName}</td><td><code data-subscription-id="${s.subscriptionId}">${s.subscriptionId}</code></td><td>${s.state}</td><td>${groupsCell(s)}</td></tr>
`,
)}</tbody>
</table></div>
${outcome.more ? html`<p class="muted">More subscriptions exist than are listed here.</p>` : html``}
<p class="muted">A subscription missing here needs an Azure role for this authorization first
(subscription → Access control (IAM) → Add role assignment).</p>
</section>`
}
