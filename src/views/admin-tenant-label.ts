// The console's tenant label form: shown on the registrations page filtered by one tenant, it sets
// the label the console and CLI show beside the tenant id (POST /admin/tenants/{tid}/label).
import { TENANT_LABEL_MAX } from '../store/validation.js'
import type { ConsoleContext } from './admin.js'
import { html, type SafeHtml } from './html.js'
import { csrfField } from './parts.js'

/** The form that renames a tenant, prefilled with its label (`undefined`: it has none). */
export function tenantLabelForm(
  context: ConsoleContext,
  tenantId: string,
  label: string | undefined,
): SafeHtml {
  return html`<form method="post" action="/admin/tenants/${tenantId}/label" class="card tenant-label-form">
${csrfField(context.csrf)}
<p><label for="label">Tenant label</label> <input type="text" id="label" name="label" value="${label ?? ''}" required maxlength="${String(TENANT_LABEL_MAX)}" size="40">
<button type="submit" class="secondary">Save label</button></p>
<p class="muted">Shown beside the tenant id in the console and the CLI; by default the domain of the
first user who consented. Later consents never change it.</p>
</form>`
}
