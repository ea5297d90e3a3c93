// Fixed demo directory of the Entra ID emulator: two tenants, four users, one multi-tenant
// confidential client per app family and cloud. Tests and the demo import these values, so they
// never change at runtime.
import { CLOUD_RESOURCES, type CloudResources, type EmulatorCloud } from './resources.js'

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
  /** The client secret; '' when the app has none (a public client registered without one). */
  readonly clientSecret: string
  readonly name: string
  /** The national cloud the app is registered in: which resources it can get tokens for. */
  readonly cloud?: EmulatorCloud
  /**
   * Registered redirect URIs (exact match). Loopback URIs (127.0.0.1, localhost, [::1]) on any port
   * are accepted when `allowLoopbackRedirects` is true, as Entra does for loopback.
   */
  readonly redirectUris: readonly string[]
  readonly allowLoopbackRedirects?: boolean
  /** Resource that bare scopes (`User.Read`) and OIDC-only requests resolve to. */
  readonly defaultResource?: string
  readonly permissions?: readonly EmulatorPermissions[]
  /**
   * Single-tenant apps (registered at run time): the one tenant the app lives in. Any other tenant
   * path answers AADSTS700016, a tenant keyword AADSTS50194. Absent: multi-tenant.
   */
  readonly homeTenant?: string
  /** "Allow public client flows": token requests without a client secret (device code, refresh). */
  readonly allowPublicClient?: boolean
  /**
   * Only the configured permissions can be consented to or granted (AADSTS65001 otherwise), as for
   * a customer's own app; the demo clients accept dynamic scopes.
   */
  readonly strictPermissions?: boolean
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

export const GRAPH_GLOBAL = CLOUD_RESOURCES.global.graph
export const GRAPH_USGOV = CLOUD_RESOURCES.usgov.graph

function demoClient(
  suffix: string,
  name: string,
  permissions: readonly EmulatorPermissions[],
  cloud: EmulatorCloud = 'global',
): EmulatorClient {
  return {
    clientId: `0b1e6a52-7c3d-4f8e-9a10-000000000${suffix}`,
    clientSecret: `demo-secret-${name}${cloud === 'global' ? '' : `-${cloud}`}`,
    name,
    cloud,
    redirectUris: [],
    allowLoopbackRedirects: true,
    defaultResource: CLOUD_RESOURCES[cloud].graph,
    permissions,
  }
}

/** Permissions on one named resource of the client's cloud. */
type FamilyPermissions = Partial<
  Record<keyof CloudResources, { delegated?: readonly string[]; application?: readonly string[] }>
>

/** The family's permissions with each named resource resolved in `cloud`. */
function inCloud(family: FamilyPermissions, cloud: EmulatorCloud): EmulatorPermissions[] {
  const out: EmulatorPermissions[] = []
  for (const [name, granted] of Object.entries(family)) {
    const resource = CLOUD_RESOURCES[cloud][name as keyof CloudResources]
    if (resource === undefined || granted === undefined) continue
    out.push({ resource, delegated: granted.delegated ?? [], application: granted.application ?? [] })
  }
  return out
}

/**
 * One client per family and cloud. Global clients are numbered 001…, the same family's US Government
 * GCC High client 1xx, DoD 2xx, China 3xx. Configured permissions follow config/apps.demo.json, so
 * app-only tokens carry the roles the broker's pages promise.
 */
function family(
  number: string,
  name: string,
  permissions: FamilyPermissions,
  clouds: readonly EmulatorCloud[] = ['global'],
): EmulatorClient[] {
  const prefix: Record<EmulatorCloud, string> = { global: '0', usgov: '1', dod: '2', china: '3' }
  return clouds.map((cloud) =>
    demoClient(`${prefix[cloud]}${number}`, name, inCloud(permissions, cloud), cloud),
  )
}

const AZURE_USER = { management: { delegated: ['user_impersonation'] } } as const

export const DEMO_CLIENTS: readonly EmulatorClient[] = [
  ...family(
    '01',
    'ms-graph-mail',
    { graph: { delegated: ['User.Read'], application: ['Mail.ReadWrite', 'Mail.Send', 'User.Read.All'] } },
    ['global', 'usgov'],
  ),
  ...family('02', 'ms-graph-user', {
    graph: { delegated: ['User.Read'], application: ['User.ReadWrite.All', 'Directory.Read.All'] },
  }),
  ...family(
    '03',
    'ms-defender-atp',
    {
      securitycenter: {
        application: [
          'AdvancedQuery.Read.All',
          'Alert.ReadWrite.All',
          'File.Read.All',
          'Ip.Read.All',
          'Machine.CollectForensics',
          'Machine.Isolate',
          'Machine.LiveResponse',
          'Machine.Read.All',
          'Machine.ReadWrite.All',
          'Machine.RestrictExecution',
          'Machine.Scan',
          'Machine.StopAndQuarantine',
          'Software.Read.All',
          'Ti.ReadWrite',
          'Url.Read.All',
          'User.Read.All',
          'Vulnerability.Read.All',
        ],
      },
      windowsatpservice: { application: ['Alert.ReadWrite.All', 'Machine.Isolate'] },
      graph: { application: ['SecurityIncident.Read.All', 'ThreatIndicators.ReadWrite.OwnedBy'] },
    },
    ['global', 'usgov', 'dod'],
  ),
  ...family('04', 'ms-graph-mail-listener', {
    graph: { delegated: ['Mail.ReadWrite', 'Mail.Send', 'User.Read'] },
  }),
  ...family(
    '05',
    'ms-azure-log-analytics',
    { management: { delegated: ['user_impersonation'] }, loganalytics: { delegated: ['Data.Read'] } },
    ['global', 'usgov', 'dod', 'china'],
  ),
  ...family('06', 'ms-graph-groups', {
    graph: { application: ['Directory.ReadWrite.All', 'Group.ReadWrite.All'] },
  }),
  ...family('07', 'ms-graph-security', {
    graph: {
      application: [
        'SecurityEvents.Read.All',
        'SecurityEvents.ReadWrite.All',
        'SecurityAlert.Read.All',
        'SecurityAlert.ReadWrite.All',
        'User.Read.All',
      ],
    },
  }),
  ...family('08', 'ms-graph-files', {
    graph: { application: ['Files.ReadWrite.All', 'Sites.ReadWrite.All'] },
  }),
  ...family('09', 'ms-graph-calendar', {
    graph: {
      application: [
        'Calendars.Read',
        'Calendars.ReadWrite',
        'Directory.ReadWrite.All',
        'Group.ReadWrite.All',
      ],
    },
  }),
  ...family('10', 'ms-graph-device-management', {
    graph: {
      application: [
        'DeviceManagementApps.ReadWrite.All',
        'DeviceManagementConfiguration.ReadWrite.All',
        'DeviceManagementManagedDevices.PrivilegedOperations.All',
        'DeviceManagementManagedDevices.ReadWrite.All',
        'DeviceManagementRBAC.ReadWrite.All',
        'DeviceManagementServiceConfig.ReadWrite.All',
      ],
    },
  }),
  // Resource Manager has no application permissions: an app gets access through Azure roles.
  ...family('11', 'ms-azure-sc', AZURE_USER, ['global', 'usgov']),
  ...family('12', 'ms-azure-compute', AZURE_USER),
  ...family(
    '13',
    'ms-management-api',
    {
      manageoffice: {
        delegated: ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'],
        application: ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'],
      },
      graph: { delegated: ['User.Read'] },
    },
    ['global', 'usgov'],
  ),
  ...family('14', 'ms-ews-o365', { exchange: { application: ['full_access_as_app'] } }),
  ...family('15', 'ms-azure-sentinel', AZURE_USER),
  ...family('16', 'ms-graph-teams', {
    graph: {
      application: ['Chat.Create', 'Chat.ReadWrite.All', 'ChatMember.ReadWrite.All', 'ChatMessage.Read.All'],
    },
  }),
]

/** Looks a demo client up by name (`cloud` tells a family's registrations in each cloud apart). */
export function findDemoClient(name: string, cloud: EmulatorCloud = 'global'): EmulatorClient {
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
