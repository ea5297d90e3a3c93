// Which scope an obtain-token request gets. Resolved once per app and cloud at start-up (templates
// expanded, allowlists normalised), so the hot path does two Map lookups and no string building.
import type { CloudName } from '../clouds.js'
import { graphDefaultScope } from '../clouds.js'
import { appClouds, type Config, type ResolvedApp, resolveApp } from '../config.js'
import { resourceNotAllowed, scopeNotAllowed, scopeWithResource } from '../errors.js'
import { displayableText, ECHOED_TEXT_MAX } from '../one-line-text.js'

/** What requests for one app in one cloud may ask for, resolved once. */
export interface AppScopes {
  readonly resolved: ResolvedApp
  readonly defaultScope: string
  /** The cloud's Graph `.default` when the app allowlists `graph`. */
  readonly graphScope: string | undefined
  /** Allowlisted full scopes (exact, as configured) plus the default scope. */
  readonly scopes: ReadonlySet<string>
  /** Lower-cased resource without trailing slash → `<resource>/.default` as configured. */
  readonly resources: ReadonlyMap<string, string>
  /** For messages: what a request may name. */
  readonly allowedDescription: string
}

function normaliseResource(resource: string): string {
  return resource.trim().replace(/\/+$/, '').toLowerCase()
}

/** Expands and normalises an app's scope and resource allowlists for one cloud. */
export function buildAppScopes(resolved: ResolvedApp): AppScopes {
  const graphAllowed = resolved.allowedScopes.includes('graph')
  const graphScope = graphAllowed ? graphDefaultScope(resolved.cloud) : undefined
  const scopes = new Set<string>([resolved.defaultScope])
  for (const scope of resolved.allowedScopes) if (scope !== 'graph') scopes.add(scope)
  const resources = new Map<string, string>()
  for (const resource of resolved.allowedResources) {
    const canonical = resource.replace(/\/+$/, '')
    resources.set(normaliseResource(canonical), `${canonical}/.default`)
  }
  const described: string[] = ['scope null (the default)']
  if (graphAllowed) described.push('"graph"')
  for (const scope of scopes) described.push(`"${scope}"`)
  if (resources.size > 0)
    described.push(`resource ${[...resources.values()].map((s) => `"${s.slice(0, -9)}"`).join(', ')}`)
  return {
    resolved,
    defaultScope: resolved.defaultScope,
    graphScope,
    scopes,
    resources,
    allowedDescription: described.join(', '),
  }
}

/** Every app × cloud the configuration offers, resolved once. */
export class ScopeResolver {
  readonly #apps = new Map<string, AppScopes>()

  constructor(config: Config) {
    for (const app of config.apps) {
      for (const cloud of appClouds(app)) {
        const resolved = resolveApp(config, app, cloud)
        if (resolved !== undefined) this.#apps.set(`${app.slug}\n${cloud}`, buildAppScopes(resolved))
      }
    }
  }

  /** The app's settings in a cloud, or undefined when the app no longer offers that cloud. */
  forApp(slug: string, cloud: CloudName): AppScopes | undefined {
    return this.#apps.get(`${slug}\n${cloud}`)
  }

  /**
   * The scope to request. `scope` null/"" → the default; `"graph"` → Graph `.default` when
   * allowlisted; a full scope when allowlisted; a non-empty `resource` → `<resource>/.default` when
   * allowlisted. Throws `invalid_scope` naming what is allowed.
   */
  static resolve(
    app: AppScopes,
    scope: string | null | undefined,
    resource: string | null | undefined,
  ): string {
    const wantsScope = typeof scope === 'string' && scope.trim() !== ''
    const wantsResource = typeof resource === 'string' && resource.trim() !== ''
    const slug = app.resolved.app.slug
    if (wantsScope && wantsResource) {
      throw scopeWithResource(slug, app.allowedDescription)
    }
    if (wantsResource) {
      const found = app.resources.get(normaliseResource(resource as string))
      if (found !== undefined) return found
      if (normaliseResource(`${resource as string}`) + '/.default' === app.defaultScope.toLowerCase()) {
        return app.defaultScope
      }
      throw resourceNotAllowed(
        displayableText(resource as string, ECHOED_TEXT_MAX),
        slug,
        app.allowedDescription,
      )
    }
    if (!wantsScope) return app.defaultScope
    const requested = (scope as string).trim()
    if (requested === 'graph') {
      if (app.graphScope !== undefined) return app.graphScope
      throw scopeNotAllowed('graph', slug, app.allowedDescription)
    }
    if (app.scopes.has(requested)) return requested
    throw scopeNotAllowed(displayableText(requested, ECHOED_TEXT_MAX), slug, app.allowedDescription)
  }
}
