// Failed token requests to Entra ID, counted per app, error code and minute in the store
// (UpstreamFailureLog) so an operator sees on the console's home page which apps failed upstream
// in the last hour, across every instance. Counting never fails the request it counts.
import type { FastifyBaseLogger } from 'fastify'
import type { Store, UpstreamFailureCount } from '../store/types.js'

/** The window the console's home page reports. */
export const UPSTREAM_FAILURE_WINDOW_MS = 60 * 60_000

/**
 * Counts one failed token request of `app` (`code`: the broker's error code, or `needs_consent`
 * when Entra refused the grant). A store failure is logged; the caller's answer stands.
 */
export async function recordUpstreamFailure(
  store: Pick<Store, 'upstreamFailures'>,
  app: string,
  code: string,
  now: number,
  logger: FastifyBaseLogger,
): Promise<void> {
  try {
    await store.upstreamFailures.record(app, code, now)
  } catch (error) {
    logger.warn({ err: error }, 'could not count the upstream failure')
  }
}

/** Failed token requests in the last hour (whole minutes), per app and code, most first. */
export function upstreamFailuresLastHour(
  store: Pick<Store, 'upstreamFailures'>,
  now: number,
): Promise<UpstreamFailureCount[]> {
  return store.upstreamFailures.count(now - UPSTREAM_FAILURE_WINDOW_MS, now)
}
