// Azure Resource Manager, read-only: the subscriptions a token's principal can see and each one's
// resource groups. Called once after consent of an Azure app, with the token that consent just
// obtained, so the result page can show what to paste as Subscription ID and Resource Group. Every
// call is bounded; a failure is a ResourceManagerError whose kind says what went wrong, never the
// token. Calls go to the cloud's configured Resource Manager URL and nowhere else.
import type { CloudName } from '../clouds.js'
import type { Config } from '../config.js'
import { isGuid } from '../guid.js'

/** `2022-12-01` lists subscriptions; `2021-04-01` resource groups (both GA, stable shapes). */
const SUBSCRIPTIONS_API_VERSION = '2022-12-01'
const RESOURCE_GROUPS_API_VERSION = '2021-04-01'
/** Enough for a result page; more are counted as "more" rather than listed. */
const DEFAULT_MAX_SUBSCRIPTIONS = 25
const DEFAULT_MAX_RESOURCE_GROUPS = 50

export interface AzureSubscription {
  readonly subscriptionId: string
  readonly displayName: string
  /** `Enabled`, `Warned`, `PastDue`, `Disabled` … as ARM says. */
  readonly state: string
  /** Its resource groups' names; undefined when they could not be listed. */
  readonly resourceGroups: readonly string[] | undefined
  /** More resource groups exist than listed. */
  readonly moreResourceGroups: boolean
}

export interface SubscriptionListing {
  readonly subscriptions: readonly AzureSubscription[]
  /** More subscriptions exist than listed. */
  readonly more: boolean
}

export type ResourceManagerFailureKind =
  /** 401: the token was refused (ARM's error code says why). */
  | 'unauthorized'
  /** 403: the principal may not read this. */
  | 'forbidden'
  /** 5xx, connection failure, or any other unexpected status. */
  | 'unavailable'
  /** No answer in time. */
  | 'timeout'
  /** An answer that is not the documented JSON. */
  | 'invalid'

export class ResourceManagerError extends Error {
  override readonly name = 'ResourceManagerError'
  constructor(
    readonly kind: ResourceManagerFailureKind,
    message: string,
    /** ARM's `error.code`, e.g. `InvalidAuthenticationTokenAudience`. */
    readonly code?: string,
    readonly status?: number,
  ) {
    super(message)
  }
}

export interface ResourceManager {
  /** The subscriptions `accessToken` (an ARM token of `cloud`) can see, each with its resource groups. */
  listSubscriptions(cloud: CloudName, accessToken: string, signal?: AbortSignal): Promise<SubscriptionListing>
}

export interface ResourceManagerOptions {
  /** Bound on the whole listing; default `config.tokens.upstreamTimeoutMs`. */
  timeoutMs?: number
  maxSubscriptions?: number
  maxResourceGroups?: number
}

interface ArmList {
  value: unknown[]
  nextLink: unknown
}

function armErrorCode(body: unknown): string | undefined {
  const error = (body as { error?: { code?: unknown } } | null)?.error
  return typeof error?.code === 'string' ? error.code.slice(0, 100) : undefined
}

export function createResourceManager(config: Config, options: ResourceManagerOptions = {}): ResourceManager {
  const timeoutMs = options.timeoutMs ?? config.tokens.upstreamTimeoutMs
  const maxSubscriptions = options.maxSubscriptions ?? DEFAULT_MAX_SUBSCRIPTIONS
  const maxResourceGroups = options.maxResourceGroups ?? DEFAULT_MAX_RESOURCE_GROUPS

  async function getList(url: string, accessToken: string, signal: AbortSignal): Promise<ArmList> {
    let response: Response
    try {
      response = await fetch(url, {
        headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
        redirect: 'manual',
        signal,
      })
    } catch (error) {
      const name = (error as Error).name
      if (signal.aborted || name === 'TimeoutError' || name === 'AbortError') {
        throw new ResourceManagerError('timeout', 'Resource Manager did not answer in time')
      }
      throw new ResourceManagerError('unavailable', 'Resource Manager could not be reached')
    }
    let body: unknown
    try {
      body = await response.json()
    } catch {
      body = undefined
    }
    if (response.status !== 200) {
      const code = armErrorCode(body)
      const kind =
        response.status === 401 ? 'unauthorized' : response.status === 403 ? 'forbidden' : 'unavailable'
      throw new ResourceManagerError(
        kind,
        `Resource Manager answered ${response.status}`,
        code,
        response.status,
      )
    }
    const list = body as { value?: unknown; nextLink?: unknown } | undefined
    if (list === undefined || list === null || !Array.isArray(list.value)) {
      throw new ResourceManagerError(
        'invalid',
        'Resource Manager answered without a value list',
        undefined,
        200,
      )
    }
    return { value: list.value, nextLink: list.nextLink }
  }

  return {
    async listSubscriptions(cloud, accessToken, signal) {
      const bounded =
        signal === undefined
          ? AbortSignal.timeout(timeoutMs)
          : AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
      const base = config.resourceManagerUrls[cloud]
      const listed = await getList(
        `${base}/subscriptions?api-version=${SUBSCRIPTIONS_API_VERSION}`,
        accessToken,
        bounded,
      )
      const found: Array<{ subscriptionId: string; displayName: string; state: string }> = []
      for (const item of listed.value) {
        const entry = item as { subscriptionId?: unknown; displayName?: unknown; state?: unknown } | null
        // The id becomes a URL path segment below: only a GUID may.
        if (typeof entry?.subscriptionId !== 'string' || !isGuid(entry.subscriptionId)) continue
        found.push({
          subscriptionId: entry.subscriptionId.toLowerCase(),
          displayName: typeof entry.displayName === 'string' ? entry.displayName.slice(0, 200) : '',
          state: typeof entry.state === 'string' ? entry.state.slice(0, 40) : '',
        })
      }
      const shown = found.slice(0, maxSubscriptions)
      const subscriptions = await Promise.all(
        shown.map(async (subscription): Promise<AzureSubscription> => {
          try {
            const groups = await getList(
              `${base}/subscriptions/${subscription.subscriptionId}/resourcegroups?api-version=${RESOURCE_GROUPS_API_VERSION}`,
              accessToken,
              bounded,
            )
            const names = groups.value
              .map((group) => (group as { name?: unknown } | null)?.name)
              .filter((name): name is string => typeof name === 'string' && name !== '')
              .map((name) => name.slice(0, 90))
            return {
              ...subscription,
              resourceGroups: names.slice(0, maxResourceGroups),
              moreResourceGroups: names.length > maxResourceGroups || groups.nextLink != null,
            }
          } catch (error) {
            // One subscription's groups failing leaves the others (and the subscription) listed.
            if (!(error instanceof ResourceManagerError)) throw error
            return { ...subscription, resourceGroups: undefined, moreResourceGroups: false }
          }
        }),
      )
      return { subscriptions, more: found.length > shown.length || listed.nextLink != null }
    },
  }
}
