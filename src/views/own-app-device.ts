// The device code page of a tenant's own app (`/{app}/own-app/device/{flow}`): the code to enter
// and where, while the broker waits for the sign-in at Microsoft. It reloads itself (meta refresh,
// no script) until the flow ends; then the route shows the result page or the failure page.
import { CLOUDS } from '../clouds.js'
import type { DeviceView } from '../services/device-code-flow.js'
import { kindBadge } from './app-list.js'
import { html } from './html.js'
import { page } from './layout.js'

/** What the page shows: the flow's pending view (the service's shape, not a copy of it). */
export type DeviceCodePageOptions = Omit<Extract<DeviceView, { kind: 'pending' }>, 'kind'>

export function renderDeviceCodePage(options: DeviceCodePageOptions): string {
  const { app, cloud, userCode, verificationUri, minutesLeft, refreshSeconds } = options
  const left =
    minutesLeft < 1 ? 'less than a minute' : `about ${minutesLeft} minute${minutesLeft === 1 ? '' : 's'}`
  return page({
    title: `${app.displayName}: enter the code at Microsoft`,
    refreshSeconds,
    body: html`<h1>${app.displayName} ${kindBadge(app)}</h1>
<section class="card" data-state="pending">
<h2>Sign in at Microsoft with this code</h2>
<ol>
<li>Open <a data-field="verification_uri" href="${verificationUri}" target="_blank" rel="noopener noreferrer">${verificationUri}</a>,
Microsoft's code page in the ${CLOUDS[cloud].label} cloud.</li>
<li>Enter the code <code class="user-code" data-field="user_code">${userCode}</code></li>
<li>Sign in with the account the integration should act as, and accept the permissions your app
registration asks for.</li>
</ol>
<p>This page refreshes itself every few seconds and shows the integration's ID and Token (and, for a
new authorization, its Key) as soon as you have signed in. The code works for ${left} more.</p>
<p class="muted">Enter this code only if you started this authorization on this page yourself. Never
enter a code that someone sent you: whoever started the authorization gets the access it grants.</p>
</section>
<p><a href="/${app.slug}/own-app">Start again</a></p>`,
  })
}
