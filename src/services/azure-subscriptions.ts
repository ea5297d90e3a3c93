// After consent of an Azure app (listSubscriptions in the apps file): which subscriptions, and which
// of their resource groups, the new registration can see — read from Resource Manager with the token
// consent just obtained, for the one-time result page. It never throws and is bounded in time: the
// result page, with its ID, Token and Key, must appear whatever Resource Manager does.
import type { FastifyBaseLogger } from 'fastify'
import type { CloudName } from '../clouds.js'
import {
  type AzureSubscription,
  type ResourceManager,
  ResourceManagerError,
  type ResourceManagerFailureKind,
} from '../entra/resource-manager.js'

/** What the result page says about subscriptions. Stored with the sealed one-time result. */
export type SubscriptionsOutcome =
  /** An empty list means the principal holds no Azure role on any subscription yet. */
  | { kind: 'listed'; subscriptions: AzureSubscription[]; more: boolean }
  | { kind: 'failed'; reason: ResourceManagerFailureKind | 'no_token' }

/** What listing the new registration's subscriptions needs, and what its log lines name. */
export interface FindSubscriptionsInput {
  resourceManager: ResourceManager
  cloud: CloudName
  /** The Resource Manager token consent obtained; undefined when Microsoft returned none. */
  accessToken: string | undefined
  log: FastifyBaseLogger
  app: string
  tenantId: string
}

/** The subscriptions the new registration sees, or why they could not be listed. Never throws. */
export async function findSubscriptions(input: FindSubscriptionsInput): Promise<SubscriptionsOutcome> {
  const { log, app, tenantId } = input
  if (input.accessToken === undefined) {
    log.warn({ app, tenantId }, 'subscription listing skipped: consent returned no Resource Manager token')
    return { kind: 'failed', reason: 'no_token' }
  }
  try {
    const listing = await input.resourceManager.listSubscriptions(input.cloud, input.accessToken)
    log.info(
      { app, tenantId, subscriptions: listing.subscriptions.length, more: listing.more },
      'subscriptions listed after consent',
    )
    return { kind: 'listed', subscriptions: [...listing.subscriptions], more: listing.more }
  } catch (error) {
    const reason = error instanceof ResourceManagerError ? error.kind : 'unavailable'
    log.warn(
      {
        app,
        tenantId,
        reason,
        ...(error instanceof ResourceManagerError
          ? { status: error.status, armError: error.code }
          : { err: error }),
      },
      'subscription listing after consent failed',
    )
    return { kind: 'failed', reason }
  }
}
