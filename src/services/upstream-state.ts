// An app's upstream state in one tenant, as notifications see it: throttled by Entra (a 429 opened
// a throttle window) or not. Only changes are announced — `upstream.throttled` when the first 429
// arrives, `upstream.recovered` on the first token fetched after it — never one per request. The
// store writes the state and its outbox entry in one atomic step.
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Registration, Store } from '../store/types.js'

/** The outbox subject of an app's upstream state in one tenant and cloud. */
export function upstreamSubject(registration: Pick<Registration, 'app' | 'cloud' | 'tenantId'>): string {
  return `upstream:${registration.app}:${registration.cloud}:${registration.tenantId}`
}

/**
 * Records that Entra throttles (`retryAfter` seconds) or serves again the app in the tenant;
 * announces it only when the state changes. A store failure is logged (the token answer stands).
 */
export async function recordUpstreamState(
  store: Store,
  registration: Pick<Registration, 'app' | 'cloud' | 'tenantId'>,
  throttled: boolean,
  now: number,
  logger: FastifyBaseLogger,
  retryAfter?: number,
): Promise<void> {
  const facts: Record<string, string> = {
    app: registration.app,
    cloud: registration.cloud,
    tenantId: registration.tenantId,
    ...(retryAfter === undefined ? {} : { retryAfterSeconds: String(retryAfter) }),
  }
  const entry = {
    id: randomUUID(),
    kind: throttled ? ('upstream.throttled' as const) : ('upstream.recovered' as const),
    at: new Date(now).toISOString(),
    facts,
  }
  try {
    const changed = await store.webhooks.setUpstreamState(upstreamSubject(registration), throttled, entry)
    if (changed) logger.warn({ ...facts }, throttled ? 'upstream throttles this app' : 'upstream recovered')
  } catch (error) {
    logger.warn({ err: error }, 'could not record the upstream state')
  }
}
