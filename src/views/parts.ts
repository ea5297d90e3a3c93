// Pieces shared by the signed-in pages (admin console, tenant self-service).
import { html, type SafeHtml } from './html.js'

/** The hidden field that carries the session's CSRF token in every state-changing form. */
export function csrfField(csrf: string): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${csrf}">`
}

/** A timestamp, or "never". */
export function when(iso: string | undefined): SafeHtml {
  return iso === undefined
    ? html`<span class="muted">never</span>`
    : html`<time datetime="${iso}">${iso}</time>`
}

/** The confirmation shown after a form was handled; nothing without a message. */
export function notice(message: string | undefined): SafeHtml {
  return message === undefined
    ? html``
    : html`<section class="card success" role="status"><p>${message}</p></section>`
}
