// The page a browser sees while the broker proves an admin consent with Microsoft (which can take
// up to a minute after a new consent): it says so and reloads itself every few seconds — a meta
// refresh, no script — until the result page or a failure page answers instead.
import type { AppConfig } from '../config.js'
import { html } from './html.js'
import { page } from './layout.js'

/** Seconds between the waiting page's reloads. */
export const WAITING_REFRESH_SECONDS = 3

export function renderProofWaitingPage(app: AppConfig | undefined, budgetSeconds: number): string {
  const name = app?.displayName ?? 'the app'
  return page({
    title: 'Confirming the consent',
    refreshSeconds: WAITING_REFRESH_SECONDS,
    body: html`<h1>Confirming the consent with Microsoft…</h1>
<section class="card" data-state="proving-consent">
<p>The consent for ${name} was given. The broker is now checking that Microsoft Entra ID honours it,
by asking for a token for your organization. A new consent can take up to a minute to reach all of
Microsoft's servers, so this may take a little while (at most about ${String(budgetSeconds)} seconds).</p>
<p>This page continues by itself every ${String(WAITING_REFRESH_SECONDS)} seconds: keep it open. The
ID, Token and Key appear here once the consent is confirmed.</p>
<p class="muted">Nothing happening? <a href="/callback/status">Check again</a>.</p>
</section>`,
  })
}
