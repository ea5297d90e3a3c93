// The home page: every hosted app, grouped the way users look for them (mail, identity, endpoint,
// Azure, audit …) with the Cortex XSOAR integrations each one serves, and a plain GET search form
// filtered here on the server, so finding an integration by name needs no script.
import type { AppConfig } from '../config.js'
import { html, type SafeHtml } from './html.js'
import { page } from './layout.js'

/** Heading of apps whose entry names no `group`. */
export const OTHER_GROUP = 'Other integrations'
/** Longest search the page accepts (the route's schema enforces it too). */
export const MAX_QUERY_LENGTH = 100

export interface AppGroup {
  readonly name: string
  readonly apps: readonly AppConfig[]
}

function normalise(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim()
}

/**
 * True when every word of the query appears in the app's name, app_name, group or the names of
 * the integrations it serves (case-insensitive), so "outlook mail" finds "O365 Outlook Mail …".
 */
export function appMatches(app: AppConfig, query: string): boolean {
  const words = normalise(query).split(' ').filter(Boolean)
  if (words.length === 0) return true
  const haystack = normalise(
    [app.displayName, app.slug, app.group ?? OTHER_GROUP, ...app.integrations].join(' \n '),
  )
  return words.every((word) => haystack.includes(word))
}

/** The apps matching `query`, grouped in the order each group first appears in the apps file. */
export function groupApps(apps: readonly AppConfig[], query = ''): AppGroup[] {
  const groups = new Map<string, AppConfig[]>()
  for (const app of apps) {
    if (!appMatches(app, query)) continue
    const name = app.group ?? OTHER_GROUP
    const members = groups.get(name) ?? []
    members.push(app)
    groups.set(name, members)
  }
  return [...groups].map(([name, members]) => ({ name, apps: members }))
}

export function kindBadge(app: AppConfig): SafeHtml {
  return app.consent === 'admin'
    ? html`<span class="badge">Admin consent</span>`
    : html`<span class="badge">User consent</span>`
}

/** "Serves: A, B" under an app's name; nothing when the apps file names no integration. */
export function integrationsLine(app: AppConfig): SafeHtml {
  if (app.integrations.length === 0) return html``
  return html`<p class="integrations">For the Cortex XSOAR integration${app.integrations.length > 1 ? 's' : ''}
${app.integrations.map((name, index) => html`${index > 0 ? ', ' : ''}<strong>${name}</strong>`)}</p>`
}

function appCard(app: AppConfig): SafeHtml {
  return html`<li class="card"><a href="/${app.slug}"><strong>${app.displayName}</strong></a> ${kindBadge(app)}
<code class="app-name">${app.slug}</code>
${integrationsLine(app)}
<p class="muted">${app.description}</p></li>
`
}

export function renderAppListPage(apps: readonly AppConfig[], query = ''): string {
  const groups = groupApps(apps, query)
  const searching = normalise(query) !== ''
  const results = searching
    ? groups.length === 0
      ? html`<p class="notice">No integration matches <strong>${query}</strong>. <a href="/">Show all integrations</a></p>`
      : html`<p class="notice">Integrations matching <strong>${query}</strong> · <a href="/">Show all</a></p>`
    : html``
  const contents =
    groups.length < 2
      ? html``
      : html`<nav class="groups" aria-label="Groups"><ul>
${groups.map(
  (
    group,
    index,
  ) => html`<li><a href="#group-${index + 1}">${group.name}</a> <span class="muted">(${group.apps.length})</span></li>
`,
)}</ul></nav>`
  return page({
    title: 'Authorize an integration',
    body: html`<h1>Authorize an integration</h1>
<p>Choose the integration to give access to your Microsoft 365 or Azure tenant.</p>
<form method="get" action="/" class="search" role="search">
<label for="q">Find your integration</label><br>
<input type="search" id="q" name="q" value="${query}" maxlength="${MAX_QUERY_LENGTH}" placeholder="e.g. Outlook, Defender, Log Analytics">
<button type="submit">Search</button>
</form>
${results}
${contents}
${groups.map(
  (group, index) => html`<section class="group" id="group-${index + 1}">
<h2>${group.name}</h2>
<ul class="apps">
${group.apps.map(appCard)}</ul>
</section>
`,
)}`,
  })
}
