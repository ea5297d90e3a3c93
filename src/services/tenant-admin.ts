// Tenant self-service: who a signed-in tenant administrator is, and what they may see. Everything
// is scoped by the tenant id of the validated ID token (kept in the server-side session), never by
// a value from a form or a URL.
import type { CloudName } from '../clouds.js'
import type { Config } from '../config.js'
import { listAllRegistrations } from '../store/list-all.js'
import type { Store } from '../store/types.js'
import { type Actor, actorLabel } from './audit.js'
import { BrowserSessions } from './browser-sessions.js'
import type { RegistrationMeta } from './revocation.js'

/** Who a `/{app}/manage` session belongs to, from the validated ID token of the sign-in. */
export interface TenantAdminIdentity {
  /** The app whose manage page the administrator signed in to. */
  app: string
  cloud: CloudName
  /** `tid` of the validated ID token. */
  tenantId: string
  /** `oid` of the validated ID token. */
  oid: string
  /** `preferred_username`, for display and `statusDetail.by`. */
  name: string
}

/** How long a `/{app}/manage` session lasts. */
export const MANAGE_SESSION_TTL_MS = 60 * 60_000

/**
 * The manage pages' sessions: one per signed-in tenant administrator and app, audited as
 * `tenant_admin.signed_in/out` with the tenant and app.
 */
export function manageSessions(
  store: Pick<Store, 'ephemeral' | 'audit'>,
  clock: () => number,
): BrowserSessions<TenantAdminIdentity> {
  return new BrowserSessions<TenantAdminIdentity>(store, clock, {
    namespace: 'manage-session',
    ttlMs: MANAGE_SESSION_TTL_MS,
    signedIn: (identity) => ({
      type: 'tenant_admin.signed_in',
      actor: actorLabel(tenantAdminActor(identity)),
      tenantId: identity.tenantId,
      app: identity.app,
      detail: { cloud: identity.cloud, name: identity.name },
    }),
    signedOut: (identity) => ({
      type: 'tenant_admin.signed_out',
      actor: actorLabel(tenantAdminActor(identity)),
      tenantId: identity.tenantId,
      app: identity.app,
      detail: { cloud: identity.cloud },
    }),
  })
}

/** The same rule as admin consent: one of the configured directory roles (`wids`). */
export function holdsAdminRole(config: Pick<Config, 'adminRoleIds'>, wids: readonly string[]): boolean {
  const allowed = new Set(config.adminRoleIds.map((id) => id.toLowerCase()))
  return wids.some((role) => allowed.has(role.toLowerCase()))
}

/** The audit actor of a tenant administrator. */
export function tenantAdminActor(identity: TenantAdminIdentity): Actor {
  return { kind: 'tenant_admin', tenantId: identity.tenantId, oid: identity.oid, name: identity.name }
}

/** Every registration of the administrator's tenant for their app, oldest first. */
export async function tenantRegistrations(
  store: Pick<Store, 'registrations'>,
  identity: Pick<TenantAdminIdentity, 'tenantId' | 'app'>,
): Promise<RegistrationMeta[]> {
  const out: RegistrationMeta[] = []
  for await (const item of listAllRegistrations(store.registrations, {
    tenantId: identity.tenantId,
    app: identity.app,
  })) {
    // The store filters by tenant already; checking again costs nothing and fails closed.
    if (item.tenantId === identity.tenantId && item.app === identity.app) out.push(item)
  }
  return out
}
