// Single-tenant app registrations created at run time (`POST /_emulator/tenants/{tid}/apps`), the
// way a customer registers their own app in their own tenant: redirect URIs, "Allow public client
// flows", configured permissions; a client secret unless it is a public client.
import { randomBytes, randomUUID } from 'node:crypto'
import type { EmulatorClient, EmulatorPermissions } from './demo-data.js'
import { DEMO_CLIENTS } from './demo-data.js'
import type { ParsedScope } from './scopes.js'
import { resourceKey } from './scopes.js'
import type { ResolvedTenant } from './state.js'
import { tenantLabel } from './state.js'

export interface AppRegistrationRequest {
  readonly redirectUris: readonly string[]
  readonly allowPublicClient: boolean
  readonly permissions: readonly EmulatorPermissions[]
}

/** Every permission the hosted (global-cloud) demo families use, merged per resource. */
export function hostedFamilyPermissions(): EmulatorPermissions[] {
  const merged = new Map<string, { resource: string; delegated: Set<string>; application: Set<string> }>()
  for (const client of DEMO_CLIENTS) {
    if ((client.cloud ?? 'global') !== 'global') continue
    for (const p of client.permissions ?? []) {
      const key = resourceKey(p.resource)
      const entry = merged.get(key) ?? { resource: p.resource, delegated: new Set(), application: new Set() }
      for (const d of p.delegated) entry.delegated.add(d)
      for (const a of p.application) entry.application.add(a)
      merged.set(key, entry)
    }
  }
  return [...merged.values()].map((e) => ({
    resource: e.resource,
    delegated: [...e.delegated],
    application: [...e.application],
  }))
}

const stringList = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((v) => typeof v === 'string' && v.length > 0 && v.length <= 200)

/** Validates a registration request body; unknown fields are refused so typos show. */
export function parseAppRegistration(input: unknown): AppRegistrationRequest | { error: string } {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    return { error: 'body must be an object' }
  const body = input as Record<string, unknown>
  for (const key of Object.keys(body)) {
    if (!['redirectUris', 'allowPublicClient', 'permissions'].includes(key))
      return { error: `unknown field ${key}` }
  }
  const redirectUris = body.redirectUris ?? []
  if (!stringList(redirectUris) || redirectUris.some((u) => !URL.canParse(u)))
    return { error: 'redirectUris must be an array of absolute URLs' }
  const allowPublicClient = body.allowPublicClient ?? false
  if (typeof allowPublicClient !== 'boolean') return { error: 'allowPublicClient must be a boolean' }
  if (body.permissions === undefined)
    return { redirectUris, allowPublicClient, permissions: hostedFamilyPermissions() }
  if (!Array.isArray(body.permissions)) return { error: 'permissions must be an array' }
  const permissions: EmulatorPermissions[] = []
  for (const entry of body.permissions as unknown[]) {
    const p = entry as Record<string, unknown> | null
    if (
      typeof p !== 'object' ||
      p === null ||
      typeof p.resource !== 'string' ||
      !URL.canParse(p.resource) ||
      !stringList(p.delegated ?? []) ||
      !stringList(p.application ?? [])
    ) {
      return {
        error: 'each permission is {"resource": URL, "delegated": [string]?, "application": [string]?}',
      }
    }
    permissions.push({
      resource: p.resource.replace(/\/+$/, ''),
      delegated: [...((p.delegated as string[] | undefined) ?? [])],
      application: [...((p.application as string[] | undefined) ?? [])],
    })
  }
  return { redirectUris, allowPublicClient, permissions }
}

/** A new single-tenant app in `tid`; a public client gets no secret. */
export function newSingleTenantApp(tid: string, request: AppRegistrationRequest): EmulatorClient {
  const clientId = randomUUID()
  return {
    clientId,
    clientSecret: request.allowPublicClient ? '' : `Xy8Q~${randomBytes(27).toString('base64url')}`,
    name: `Own app ${clientId.slice(0, 8)}`,
    cloud: 'global',
    redirectUris: [...request.redirectUris],
    permissions: request.permissions,
    homeTenant: tid,
    allowPublicClient: request.allowPublicClient,
    strictPermissions: true,
  }
}

/**
 * Why a single-tenant app cannot be used at the `{tenant}` path, if it cannot: a keyword path is
 * AADSTS50194 (the app is not multi-tenant), another tenant AADSTS700016 (no such app there).
 */
export function singleTenantRefusal(
  tenant: ResolvedTenant,
  client: EmulatorClient,
): { code: number; text: string } | undefined {
  if (client.homeTenant === undefined) return undefined
  if (tenant.kind === 'keyword') {
    return {
      code: 50194,
      text: `Application '${client.clientId}'(${client.name}) is not configured as a multi-tenant application. Usage of the /${tenant.segment} endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.`,
    }
  }
  if (tenant.tenant.tid === client.homeTenant) return undefined
  return {
    code: 700016,
    text: `Application with identifier '${client.clientId}' was not found in the directory '${tenantLabel(tenant)}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
  }
}

/**
 * Requested permissions a strict (customer-registered) app does not have configured: delegated
 * permissions named explicitly, or any delegated `.default` on a resource it has nothing for.
 */
export function unconfiguredPermissions(client: EmulatorClient, scopes: readonly ParsedScope[]): string[] {
  if (!client.strictPermissions) return []
  const missing: string[] = []
  for (const s of scopes) {
    if (s.resource === null) continue
    const configured = client.permissions?.find((p) => resourceKey(p.resource) === resourceKey(s.resource!))
    if (s.permission.toLowerCase() === '.default') {
      if (!configured || configured.delegated.length === 0) missing.push(s.raw)
    } else if (!configured?.delegated.some((d) => d.toLowerCase() === s.permission.toLowerCase())) {
      missing.push(s.raw)
    }
  }
  return missing
}
