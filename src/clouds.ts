// National clouds. Each needs its own app registration and tokens never cross clouds, so a
// registration remembers its cloud and every scope is resolved against that cloud's resources.

export const CLOUD_NAMES = ['global', 'usgov', 'dod', 'china'] as const
export type CloudName = (typeof CLOUD_NAMES)[number]

export interface CloudHosts {
  /** Display name shown in the cloud chooser. */
  readonly label: string
  /** Default authority (login) host, no trailing slash. Overridable per cloud in configuration. */
  readonly authority: string
  /**
   * Resource identifiers (no trailing slash), used to expand `{graph}`-style placeholders in the
   * apps file. A name missing here is an API Microsoft does not run in that cloud.
   */
  readonly resources: Readonly<Partial<Record<ResourceName, string>>>
}

/**
 * `graph` Microsoft Graph; `management` Azure Resource Manager; `loganalytics` the Log Analytics
 * query API; `securitycenter` the Defender for Endpoint API; `windowsatpservice` the identifier
 * Defender's security-center indicator commands ask a scope of; `manageoffice` the Office 365
 * Management APIs; `exchange` Exchange Online (EWS).
 */
export const RESOURCE_NAMES = [
  'graph',
  'management',
  'loganalytics',
  'securitycenter',
  'windowsatpservice',
  'manageoffice',
  'exchange',
] as const
export type ResourceName = (typeof RESOURCE_NAMES)[number]

export const CLOUDS: Readonly<Record<CloudName, CloudHosts>> = Object.freeze({
  global: {
    label: 'Global (incl. Microsoft 365 GCC)',
    authority: 'https://login.microsoftonline.com',
    resources: {
      graph: 'https://graph.microsoft.com',
      management: 'https://management.azure.com',
      loganalytics: 'https://api.loganalytics.io',
      securitycenter: 'https://api.securitycenter.microsoft.com',
      windowsatpservice: 'https://securitycenter.onmicrosoft.com/windowsatpservice',
      manageoffice: 'https://manage.office.com',
      exchange: 'https://outlook.office365.com',
    },
  },
  usgov: {
    label: 'US Government GCC High',
    authority: 'https://login.microsoftonline.us',
    resources: {
      graph: 'https://graph.microsoft.us',
      management: 'https://management.usgovcloudapi.net',
      loganalytics: 'https://api.loganalytics.us',
      securitycenter: 'https://api-gcc.securitycenter.microsoft.us',
      windowsatpservice: 'https://securitycenter.onmicrosoft.us/windowsatpservice',
      manageoffice: 'https://manage.office365.us',
      exchange: 'https://outlook.office365.us',
    },
  },
  dod: {
    label: 'US Government DoD',
    authority: 'https://login.microsoftonline.us',
    resources: {
      graph: 'https://dod-graph.microsoft.us',
      management: 'https://management.usgovcloudapi.net',
      loganalytics: 'https://api.loganalytics.us',
      securitycenter: 'https://api-gov.securitycenter.microsoft.us',
      windowsatpservice: 'https://securitycenter.onmicrosoft.us/windowsatpservice',
      manageoffice: 'https://manage.protection.apps.mil',
      exchange: 'https://webmail.apps.mil',
    },
  },
  china: {
    // Defender for Endpoint's indicator service has no identifier here: apps that need it can't be
    // offered in this cloud (the apps file check says so).
    label: 'China (operated by 21Vianet)',
    authority: 'https://login.chinacloudapi.cn',
    resources: {
      graph: 'https://microsoftgraph.chinacloudapi.cn',
      management: 'https://management.chinacloudapi.cn',
      loganalytics: 'https://api.loganalytics.azure.cn',
      securitycenter: 'https://api.securitycenter.azure.cn',
      manageoffice: 'https://manage.office.cn',
      exchange: 'https://partner.outlook.cn',
    },
  },
})

export function isCloudName(value: unknown): value is CloudName {
  return typeof value === 'string' && (CLOUD_NAMES as readonly string[]).includes(value)
}

function isResourceName(value: string): value is ResourceName {
  return (RESOURCE_NAMES as readonly string[]).includes(value)
}

const PLACEHOLDER = /\{([a-z]+)\}/g

/**
 * Expands `{graph}`, `{management}` … in a scope or resource template for one cloud. Throws for a
 * name that is no resource, and for a resource the cloud does not have.
 */
export function expandResourceTemplate(template: string, cloud: CloudName): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    if (!isResourceName(name)) throw new Error(`unknown resource placeholder ${whole}`)
    const host = CLOUDS[cloud].resources[name]
    if (host === undefined) throw new Error(`${whole} does not exist in the ${cloud} cloud`)
    return host
  })
}

/** The resource identifier of an API in a cloud; throws when the cloud has none. */
export function resourceOf(cloud: CloudName, name: ResourceName): string {
  return expandResourceTemplate(`{${name}}`, cloud)
}

/** The `.default` scope of a cloud's Microsoft Graph. */
export function graphDefaultScope(cloud: CloudName): string {
  return `${resourceOf(cloud, 'graph')}/.default`
}
