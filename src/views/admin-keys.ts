// The console's master keys page: the key ring, the last re-sealing pass and the form that starts
// (or resumes) one. A pass only re-seals stored secrets under the newest key and can be run again
// at any time, so it needs no confirmation step.
import type { RotationStatus } from '../services/key-rotation.js'
import { type ConsoleContext, consolePage, detailTable, type Row } from './admin.js'
import { ago } from './console-format.js'
import { html, type SafeHtml } from './html.js'
import { csrfField, notice } from './parts.js'

export function renderKeys(
  context: ConsoleContext,
  options: { rotation: RotationStatus; notice?: string },
): string {
  const r = options.rotation
  const { now } = context
  const rows: Row[] = [
    ['Newest key (seals)', html`<code>${r.currentKeyId}</code>`],
    ['Older keys (open only)', r.oldKeyIds.length === 0 ? 'none' : r.oldKeyIds.join(', ')],
    ['Last pass', `${r.state}${r.state === 'idle' ? '' : ` (key ${r.keyId})`}`],
    ...(r.startedAt === undefined
      ? []
      : [['Started', html`${ago(r.startedAt, now)} by ${r.startedBy ?? ''}`] as [string, SafeHtml]]),
    ...(r.completedAt === undefined ? [] : [['Completed', ago(r.completedAt, now)] as [string, SafeHtml]]),
    ['Registrations scanned', String(r.scanned)],
    ['Re-sealed', String(r.resealed)],
    ['Already under the newest key', String(r.unchanged)],
    ['Webhook endpoint secrets re-sealed', String(r.webhookSecretsResealed ?? 0)],
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
