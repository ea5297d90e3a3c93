// Azure subscriptions of the emulator's demo tenants, their resource groups, and who holds a role
// on each (Azure RBAC): what the Resource Manager listings answer. A consenting app's service
// principal is named by its demo client's name, a user by username. Fabrikam's subscription has no
// app holding a role, so an app consented there sees none (the "needs a role" case).
import { CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID } from './demo-data.js'

export interface EmulatorResourceGroup {
  readonly name: string
  readonly location: string
}

export interface EmulatorSubscription {
  readonly subscriptionId: string
  readonly tenantId: string
  readonly displayName: string
  readonly state: 'Enabled' | 'Warned' | 'PastDue' | 'Disabled'
  readonly resourceGroups: readonly EmulatorResourceGroup[]
  /** Principals with a role on the subscription: demo client names (apps) or usernames. */
  readonly roleHolders: readonly string[]
}

export const DEMO_SUBSCRIPTIONS: readonly EmulatorSubscription[] = [
  {
    subscriptionId: '5b1f7c2e-3a4d-4e6f-8a9b-0c1d2e3f4a01',
    tenantId: CONTOSO_TENANT_ID,
    displayName: 'Contoso Production',
    state: 'Enabled',
    resourceGroups: [
      { name: 'prod-network', location: 'eastus' },
      { name: 'prod-vms', location: 'eastus' },
      { name: 'security-logs', location: 'westeurope' },
    ],
    roleHolders: ['admin@contoso.example', 'ms-azure-sc', 'ms-azure-compute'],
  },
  {
    subscriptionId: '5b1f7c2e-3a4d-4e6f-8a9b-0c1d2e3f4a02',
    tenantId: CONTOSO_TENANT_ID,
    displayName: 'Contoso Development',
    state: 'Enabled',
    resourceGroups: [{ name: 'dev-sandbox', location: 'westus2' }],
    roleHolders: ['admin@contoso.example', 'user@contoso.example', 'ms-azure-compute'],
  },
  {
    subscriptionId: '7d3e9a4b-5c6d-4e7f-9a0b-1c2d3e4f5b01',
    tenantId: FABRIKAM_TENANT_ID,
    displayName: 'Fabrikam Pay-As-You-Go',
    state: 'Enabled',
    resourceGroups: [{ name: 'fabrikam-rg', location: 'northeurope' }],
    roleHolders: ['admin@fabrikam.example'],
  },
]
