// Fixed demo directory of the Entra ID emulator: two tenants, four users, six multi-tenant
// confidential clients. Tests and the demo import these values, so they never change at runtime.

/** Directory role template IDs (the `wids` claim). */
export const GLOBAL_ADMINISTRATOR_ROLE = '62e90394-69f5-4237-9190-012177145e10'
export const PRIVILEGED_ROLE_ADMINISTRATOR_ROLE = 'e8611ab8-c189-46e8-94e1-60213ab1f814'
export const CLOUD_APPLICATION_ADMINISTRATOR_ROLE = '158c047a-c907-4556-b7ef-446551a6b5f7'
export const APPLICATION_ADMINISTRATOR_ROLE = '9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3'

/** Roles allowed to grant tenant-wide consent through `/adminconsent` in the emulator. */
export const ADMIN_CONSENT_ROLES: readonly string[] = [
  GLOBAL_ADMINISTRATOR_ROLE,
  PRIVILEGED_ROLE_ADMINISTRATOR_ROLE,
]

export interface EmulatorTenant {
  readonly tid: string
  readonly displayName: string
  /** Verified domain; `/{domain}/...` paths resolve to this tenant. */
  readonly domain: string
  /** `tenant_region_scope` in the tenant's discovery document. */
  readonly region: string
}

export interface EmulatorUser {
  readonly oid: string
  readonly tid: string
  readonly username: string
  readonly displayName: string
  /** Directory role template IDs held by the user. */
  readonly roles: readonly string[]
}

export interface EmulatorPermissions {
  /** Resource identifier, e.g. `https://graph.microsoft.com`. */
  readonly resource: string
  /** Statically configured delegated permissions (what a delegated `.default` expands to). */
  readonly delegated: readonly string[]
  /** Application permissions granted by admin consent (the `roles` claim of app tokens). */
  readonly application: readonly string[]
}

export interface EmulatorClient {
  readonly clientId: string
  readonly clientSecret: string
  readonly name: string
  readonly cloud?: 'global' | 'usgov'
  /**
   * Registered redirect URIs (exact match). Loopback URIs (127.0.0.1, localhost, [::1]) on any port
   * are accepted when `allowLoopbackRedirects` is true, as Entra does for loopback.
   */
  readonly redirectUris: readonly string[]
  readonly allowLoopbackRedirects?: boolean
  /** Resource that bare scopes (`User.Read`) and OIDC-only requests resolve to. */
  readonly defaultResource?: string
  readonly permissions?: readonly EmulatorPermissions[]
}

export const CONTOSO_TENANT_ID = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
export const FABRIKAM_TENANT_ID = 'a9e4f7c2-1b3d-4e5f-8a7b-6c5d4e3f2a10'

export const CONTOSO: EmulatorTenant = {
  tid: CONTOSO_TENANT_ID,
  displayName: 'Contoso',
  domain: 'contoso.example',
  region: 'NA',
}

export const FABRIKAM: EmulatorTenant = {
  tid: FABRIKAM_TENANT_ID,
  displayName: 'Fabrikam',
  domain: 'fabrikam.example',
  region: 'EU',
}

export const DEMO_TENANTS: readonly EmulatorTenant[] = [CONTOSO, FABRIKAM]

export const CONTOSO_ADMIN: EmulatorUser = {
  oid: '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e01',
  tid: CONTOSO_TENANT_ID,
  username: 'admin@contoso.example',
  displayName: 'Contoso Admin',
  roles: [GLOBAL_ADMINISTRATOR_ROLE],
}

export const CONTOSO_USER: EmulatorUser = {
  oid: '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e02',
  tid: CONTOSO_TENANT_ID,
  username: 'user@contoso.example',
  displayName: 'Contoso User',
  roles: [],
}

export const FABRIKAM_ADMIN: EmulatorUser = {
  oid: '5d8e4b3c-2a1f-4e6d-8c07-1b2c3d4e5f01',
  tid: FABRIKAM_TENANT_ID,
  username: 'admin@fabrikam.example',
  displayName: 'Fabrikam Admin',
  roles: [GLOBAL_ADMINISTRATOR_ROLE],
}

export const FABRIKAM_USER: EmulatorUser = {
  oid: '5d8e4b3c-2a1f-4e6d-8c07-1b2c3d4e5f02',
  tid: FABRIKAM_TENANT_ID,
  username: 'user@fabrikam.example',
  displayName: 'Fabrikam User',
  roles: [],
}

export const DEMO_USERS: readonly EmulatorUser[] = [
  CONTOSO_ADMIN,
  CONTOSO_USER,
  FABRIKAM_ADMIN,
  FABRIKAM_USER,
]

export const GRAPH_GLOBAL = 'https://graph.microsoft.com'
export const GRAPH_USGOV = 'https://graph.microsoft.us'

function demoClient(
  suffix: string,
  name: string,
  permissions: readonly EmulatorPermissions[],
  cloud: 'global' | 'usgov' = 'global',
): EmulatorClient {
  return {
    clientId: `0b1e6a52-7c3d-4f8e-9a10-000000000${suffix}`,
    clientSecret: `demo-secret-${name}${cloud === 'usgov' ? '-usgov' : ''}`,
    name,
    cloud,
    redirectUris: [],
    allowLoopbackRedirects: true,
    defaultResource: cloud === 'usgov' ? GRAPH_USGOV : GRAPH_GLOBAL,
    permissions,
  }
}

// Configured permissions follow config/apps.demo.json, so app-only tokens carry the roles the
// broker's pages promise.
const mailPermissions = (graph: string): EmulatorPermissions[] => [
  {
    resource: graph,
    delegated: ['User.Read'],
    application: ['Mail.ReadWrite', 'Mail.Send', 'User.Read.All'],
  },
]

export const DEMO_CLIENTS: readonly EmulatorClient[] = [
  demoClient('001', 'ms-graph-mail', mailPermissions(GRAPH_GLOBAL)),
  demoClient('101', 'ms-graph-mail', mailPermissions(GRAPH_USGOV), 'usgov'),
  demoClient('002', 'ms-graph-user', [
    {
      resource: GRAPH_GLOBAL,
      delegated: ['User.Read'],
      application: ['User.ReadWrite.All', 'Directory.Read.All'],
    },
  ]),
  demoClient('003', 'ms-defender-atp', [
    {
      resource: 'https://api.securitycenter.microsoft.com',
      delegated: [],
      application: ['Alert.ReadWrite.All', 'Machine.Isolate'],
    },
    {
      resource: 'https://securitycenter.onmicrosoft.com/windowsatpservice',
      delegated: [],
      application: ['Alert.ReadWrite.All', 'Machine.Isolate'],
    },
    { resource: GRAPH_GLOBAL, delegated: [], application: ['SecurityIncident.Read.All'] },
  ]),
  demoClient('004', 'ms-graph-mail-listener', [
    { resource: GRAPH_GLOBAL, delegated: ['Mail.ReadWrite', 'Mail.Send', 'User.Read'], application: [] },
  ]),
  demoClient('005', 'ms-azure-log-analytics', [
    { resource: 'https://management.azure.com', delegated: ['user_impersonation'], application: [] },
    { resource: 'https://api.loganalytics.io', delegated: ['Data.Read'], application: [] },
  ]),
]

/** Looks a demo client up by name (`cloud` distinguishes the two `ms-graph-mail` registrations). */
export function findDemoClient(name: string, cloud: 'global' | 'usgov' = 'global'): EmulatorClient {
  const client = DEMO_CLIENTS.find((c) => c.name === name && (c.cloud ?? 'global') === cloud)
  if (!client) throw new Error(`No demo client named ${name} (${cloud})`)
  return client
}

/** Looks a demo user up by username (case-insensitive). */
export function findDemoUser(username: string): EmulatorUser {
  const user = DEMO_USERS.find((u) => u.username === username.toLowerCase())
  if (!user) throw new Error(`No demo user ${username}`)
  return user
}
