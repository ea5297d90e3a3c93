// The APIs (resource service principals) the emulated directory knows, per national cloud. Entra
// issues a token only for a resource that exists in the caller's cloud; anything else is
// AADSTS500011, which is how a scope for the wrong cloud fails against Microsoft too.
//
// The table is deliberately the same as src/clouds.ts's resources, written twice: the emulator
// stands in for Microsoft and never imports src/, so it holds Microsoft's facts on its own (a broker
// bug in its table fails against the emulator as it would against Entra). A unit test
// (test/unit/emulator-resources.test.ts) keeps the two in agreement.
import { resourceKey } from './scopes.js'

export const EMULATOR_CLOUDS = ['global', 'usgov', 'dod', 'china'] as const
export type EmulatorCloud = (typeof EMULATOR_CLOUDS)[number]

/** Named resources of one cloud (identifiers without trailing slash). */
export interface CloudResources {
  readonly graph: string
  readonly management: string
  readonly loganalytics: string
  readonly securitycenter: string
  /** Defender for Endpoint's indicator service; none in China. */
  readonly windowsatpservice?: string
  readonly manageoffice: string
  readonly exchange: string
}

export const CLOUD_RESOURCES: Readonly<Record<EmulatorCloud, CloudResources>> = {
  global: {
    graph: 'https://graph.microsoft.com',
    management: 'https://management.azure.com',
    loganalytics: 'https://api.loganalytics.io',
    securitycenter: 'https://api.securitycenter.microsoft.com',
    windowsatpservice: 'https://securitycenter.onmicrosoft.com/windowsatpservice',
    manageoffice: 'https://manage.office.com',
    exchange: 'https://outlook.office365.com',
  },
  usgov: {
    graph: 'https://graph.microsoft.us',
    management: 'https://management.usgovcloudapi.net',
    loganalytics: 'https://api.loganalytics.us',
    securitycenter: 'https://api-gcc.securitycenter.microsoft.us',
    windowsatpservice: 'https://securitycenter.onmicrosoft.us/windowsatpservice',
    manageoffice: 'https://manage.office365.us',
    exchange: 'https://outlook.office365.us',
  },
  dod: {
    graph: 'https://dod-graph.microsoft.us',
    management: 'https://management.usgovcloudapi.net',
    loganalytics: 'https://api.loganalytics.us',
    securitycenter: 'https://api-gov.securitycenter.microsoft.us',
    windowsatpservice: 'https://securitycenter.onmicrosoft.us/windowsatpservice',
    manageoffice: 'https://manage.protection.apps.mil',
    exchange: 'https://webmail.apps.mil',
  },
  china: {
    graph: 'https://microsoftgraph.chinacloudapi.cn',
    management: 'https://management.chinacloudapi.cn',
    loganalytics: 'https://api.loganalytics.azure.cn',
    securitycenter: 'https://api.securitycenter.azure.cn',
    manageoffice: 'https://manage.office.cn',
    exchange: 'https://partner.outlook.cn',
  },
}

/**
 * Other identifiers Microsoft accepts for the same service principals (Azure Service Management's
 * classic identifier, Exchange Online's `outlook.office.com` …), each meaning the named resource.
 */
const ALIASES: Readonly<Record<EmulatorCloud, readonly string[]>> = {
  global: ['https://management.core.windows.net', 'https://outlook.office.com'],
  usgov: ['https://management.core.usgovcloudapi.net'],
  dod: ['https://management.core.usgovcloudapi.net'],
  china: ['https://management.core.chinacloudapi.cn'],
}

/** True when `resource` (any case, with or without trailing slash) exists in `cloud`. */
export function resourceExists(cloud: EmulatorCloud, resource: string): boolean {
  const key = resourceKey(resource)
  const known = [...Object.values(CLOUD_RESOURCES[cloud]), ...ALIASES[cloud]]
  return known.some((r) => resourceKey(r) === key)
}

/** The Azure Resource Manager audiences ARM accepts in a cloud (with and without trailing slash). */
export function resourceManagerAudiences(cloud: EmulatorCloud): string[] {
  const management = [CLOUD_RESOURCES[cloud].management, ALIASES[cloud][0]!]
  return management.flatMap((r) => [r, `${r}/`])
}
