// National clouds. Each needs its own app registration and tokens never cross clouds, so a
// registration remembers its cloud and every scope is resolved against that cloud's hosts.

export const CLOUD_NAMES = ['global', 'usgov', 'dod', 'china'] as const
export type CloudName = (typeof CLOUD_NAMES)[number]

export interface CloudHosts {
  /** Display name shown in the cloud chooser. */
  readonly label: string
  /** Default authority (login) host, no trailing slash. Overridable per cloud in configuration. */
  readonly authority: string
  /** Resource hosts, used to expand `{graph}`-style placeholders in the apps file. */
  readonly resources: Readonly<Record<ResourceName, string>>
}

export const RESOURCE_NAMES = ['graph', 'management', 'loganalytics', 'securitycenter'] as const
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
    },
  },
  china: {
    label: 'China (operated by 21Vianet)',
    authority: 'https://login.chinacloudapi.cn',
    resources: {
      graph: 'https://microsoftgraph.chinacloudapi.cn',
      management: 'https://management.chinacloudapi.cn',
      loganalytics: 'https://api.loganalytics.azure.cn',
      securitycenter: 'https://api.securitycenter.azure.cn',
    },
  },
})

export function isCloudName(value: unknown): value is CloudName {
  return typeof value === 'string' && (CLOUD_NAMES as readonly string[]).includes(value)
}

const PLACEHOLDER = /\{([a-z]+)\}/g

/** Expands `{graph}`, `{management}` … in a scope or resource template for one cloud. */
export function expandResourceTemplate(template: string, cloud: CloudName): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    const host = (CLOUDS[cloud].resources as Record<string, string>)[name]
    if (host === undefined) throw new Error(`unknown resource placeholder ${whole}`)
    return host
  })
}

/** The `.default` scope of a cloud's Microsoft Graph. */
export function graphDefaultScope(cloud: CloudName): string {
  return `${CLOUDS[cloud].resources.graph}/.default`
}
