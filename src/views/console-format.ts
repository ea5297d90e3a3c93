// How the admin console writes times and long ids so a 1280 px screen reads them at a glance:
// times relative to the server's clock ("3 minutes ago", "in 2 hours", rendered on the server, no
// script needed) with the exact UTC time on hover; tenant and registration ids shortened to their
// first characters with the full value on hover and a copy button (hidden until /static/app.js
// shows it, so a browser without JavaScript never sees a button that does nothing).
import { html, type SafeHtml } from './html.js'

const SECOND = 1_000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

const RELATIVE = new Intl.RelativeTimeFormat('en', { numeric: 'always', style: 'long' })

/**
 * `atMs` relative to `nowMs`, in words: "just now", "3 minutes ago", "in 2 hours", "5 days ago",
 * "in 3 months", "2 years ago". Rounded to the nearest unit, the unit chosen as a person would.
 */
export function relativeTime(atMs: number, nowMs: number): string {
  const diff = atMs - nowMs
  const abs = Math.abs(diff)
  if (abs < 45 * SECOND) return diff < 0 || abs < SECOND ? 'just now' : 'in a few seconds'
  const [value, unit] =
    abs < 45 * MINUTE
      ? [Math.max(1, Math.round(abs / MINUTE)), 'minute' as const]
      : abs < 22 * HOUR
        ? [Math.max(1, Math.round(abs / HOUR)), 'hour' as const]
        : abs < 26 * DAY
          ? [Math.max(1, Math.round(abs / DAY)), 'day' as const]
          : abs < 320 * DAY
            ? [Math.max(1, Math.round(abs / (30 * DAY))), 'month' as const]
            : [Math.max(1, Math.round(abs / (365 * DAY))), 'year' as const]
  return RELATIVE.format(diff < 0 ? -value : value, unit)
}

/** The exact time in UTC as the hover shows it: `2026-11-30 11:48:17 UTC`. */
export function exactUtc(atMs: number): string {
  return `${new Date(atMs).toISOString().slice(0, 19).replace('T', ' ')} UTC`
}

/**
 * A timestamp relative to `nowMs` (the exact UTC time in its title), or "never". An unreadable
 * value is shown as it is rather than hidden.
 */
export function ago(iso: string | undefined, nowMs: number, never = 'never'): SafeHtml {
  if (iso === undefined) return html`<span class="muted">${never}</span>`
  const at = Date.parse(iso)
  if (!Number.isFinite(at)) return html`<time>${iso}</time>`
  return html`<time datetime="${new Date(at).toISOString()}" title="${exactUtc(at)}">${relativeTime(at, nowMs)}</time>`
}

/** Characters of an id the console shows. */
export const SHORT_ID_LENGTH = 8

/** The first characters of an id, with an ellipsis when something was cut. */
export function shortened(id: string): string {
  return id.length <= SHORT_ID_LENGTH + 1 ? id : `${id.slice(0, SHORT_ID_LENGTH)}…`
}

/** A copy button for `value`, shown by the page script only (none without JavaScript). */
export function copyButton(value: string, what: string): SafeHtml {
  return html`<button type="button" class="copy" data-copy-text="${value}" title="Copy the full ${what}" aria-label="Copy the full ${what}" hidden>Copy</button>`
}

/**
 * A long id shortened to its first characters: the full value on hover (and in the link's target,
 * when `href` is given), and a copy button.
 */
export function shortId(id: string, what: string, href?: string): SafeHtml {
  const shown =
    href === undefined
      ? html`<code title="${id}">${shortened(id)}</code>`
      : html`<a href="${href}" title="${id}"><code>${shortened(id)}</code></a>`
  return html`<span class="short-id">${shown}${copyButton(id, what)}</span>`
}
