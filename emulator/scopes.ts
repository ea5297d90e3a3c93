// Scope parsing as Entra v2 does it: OIDC scopes, `<resource>/<permission>` and bare permissions
// (which mean the client's default resource, Microsoft Graph).
import type { EmulatorClient } from './demo-data.js'

export const OIDC_SCOPES: ReadonlySet<string> = new Set(['openid', 'profile', 'email', 'offline_access'])

export interface ParsedScope {
  /** The scope as requested. */
  readonly raw: string
  /** Resource identifier as requested (no trailing slash); null for OIDC scopes. */
  readonly resource: string | null
  /** Permission (`Mail.Read`, `.default`) or the OIDC scope name. */
  readonly permission: string
}

export function splitScopeParam(scope: string | undefined): string[] {
  const seen = new Set<string>()
  const out: string[] = []
  for (const s of (scope ?? '').split(/\s+/)) {
    if (s && !seen.has(s)) {
      seen.add(s)
      out.push(s)
    }
  }
  return out
}

export function defaultResourceOf(client: EmulatorClient): string {
  return client.defaultResource ?? 'https://graph.microsoft.com'
}

export function parseScopes(scopes: readonly string[], client: EmulatorClient): ParsedScope[] {
  return scopes.map((raw) => {
    const lower = raw.toLowerCase()
    if (OIDC_SCOPES.has(lower)) return { raw, resource: null, permission: lower }
    const slash = raw.lastIndexOf('/')
    if (slash <= 0) return { raw, resource: defaultResourceOf(client), permission: raw }
    return { raw, resource: raw.slice(0, slash).replace(/\/+$/, ''), permission: raw.slice(slash + 1) }
  })
}

export function resourceKey(resource: string): string {
  return resource.toLowerCase().replace(/\/+$/, '')
}

/** Distinct resources of the scopes, in request order (by case-insensitive identity). */
export function resourcesOf(scopes: readonly ParsedScope[]): string[] {
  const seen = new Map<string, string>()
  for (const s of scopes) {
    if (s.resource !== null && !seen.has(resourceKey(s.resource)))
      seen.set(resourceKey(s.resource), s.resource)
  }
  return [...seen.values()]
}

export function scopesForResource(scopes: readonly ParsedScope[], resource: string): ParsedScope[] {
  const key = resourceKey(resource)
  return scopes.filter((s) => s.resource !== null && resourceKey(s.resource) === key)
}

function configured(client: EmulatorClient, resource: string) {
  const key = resourceKey(resource)
  return client.permissions?.find((p) => resourceKey(p.resource) === key)
}

/** Delegated permissions the scopes stand for (`.default` expands to the configured ones). */
export function delegatedPermissions(
  client: EmulatorClient,
  resource: string,
  scopes: readonly ParsedScope[],
): string[] {
  const out = new Set<string>()
  for (const s of scopesForResource(scopes, resource)) {
    if (s.permission.toLowerCase() === '.default') {
      const perms = configured(client, resource)?.delegated ?? []
      for (const p of perms) out.add(p)
    } else {
      out.add(s.permission)
    }
  }
  return [...out]
}

export function applicationPermissions(client: EmulatorClient, resource: string): string[] {
  return [...(configured(client, resource)?.application ?? [])]
}

/** Normalized `resource/permission` keys used to remember consent. */
export function consentKeys(client: EmulatorClient, scopes: readonly ParsedScope[]): Set<string> {
  const out = new Set<string>()
  for (const resource of resourcesOf(scopes)) {
    for (const p of delegatedPermissions(client, resource, scopes)) {
      out.add(`${resourceKey(resource)}/${p.toLowerCase()}`)
    }
  }
  for (const s of scopes) if (s.resource === null) out.add(s.permission)
  return out
}

/** Human-readable lines for the consent page. */
export function describeScopes(client: EmulatorClient, scopes: readonly ParsedScope[]): string[] {
  const lines: string[] = []
  const oidc = new Set(scopes.filter((s) => s.resource === null).map((s) => s.permission))
  if (oidc.has('openid')) lines.push('Sign you in (openid)')
  if (oidc.has('profile')) lines.push('View your basic profile (profile)')
  if (oidc.has('email')) lines.push('View your email address (email)')
  if (oidc.has('offline_access'))
    lines.push('Maintain access to data you have given it access to (offline_access)')
  for (const resource of resourcesOf(scopes)) {
    for (const p of delegatedPermissions(client, resource, scopes)) lines.push(`${p} on ${resource}`)
  }
  return lines
}
