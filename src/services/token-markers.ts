// What one broker instance tells the others about a token fetch, through short-lived store keys:
// the failure of a refresh (`token-fail:`), for the instances waiting on its lock; the backoff of a
// token group after transient failures (`token-backoff:`: consecutive failures and the next allowed
// attempt, honoured by every instance and every new request); and a throttle window (`throttle:`)
// after a 429, during which no instance calls Entra for that tenant and app.
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { type BrokerError, type ErrorCode, recordedFailure, upstreamThrottled } from '../errors.js'
import type { Registration, Store } from '../store/types.js'
import { BACKOFF_MAX_MS, nextAttemptAt, type Random } from './token-schedule.js'
import { recordUpstreamState } from './upstream-state.js'

/** Who asks for an upstream call: a caller without a servable token, or background work. */
export type UpstreamPriority = 'caller' | 'background'

/** How long a published failure is visible to waiters. */
const FAILURE_MARKER_MS = 5_000

/** A refresh failure as published for the instances waiting on the refresh lock. */
export interface FailureMarker {
  /**
   * Epoch ms when the failure happened, by the writer's clock: it shortens the Retry-After a
   * waiter repeats. Waiters tell a new failure from an old one by the marker's value, not by this
   * time (instances' clocks differ).
   */
  at: number
  /** Random: two failures are two different values, whatever their time and content. */
  id?: string
  code: ErrorCode
  message: string
  retryAfter?: number
  details?: Record<string, string | number | boolean | null>
  /**
   * Failed in a background refresh (refresh-ahead, keep-alive), which makes one attempt at a lower
   * share of the rate cap: a waiting caller does not take it as its answer, but takes the lock and
   * tries itself (within the backoff). Absent in markers of earlier releases: a caller's failure.
   */
  background?: true
}

/** Store key of the failure marker of one group and scope. */
export function failureKey(group: string, scope: string): string {
  return `token-fail:${group}|${scope}`
}

/** Publishes `error` for waiters; a store failure is logged, never thrown (the caller has its error). */
export async function publishFailure(
  store: Store,
  key: string,
  error: BrokerError,
  now: number,
  logger: FastifyBaseLogger,
  priority: UpstreamPriority,
): Promise<void> {
  const marker: FailureMarker = {
    at: now,
    id: randomUUID(),
    code: error.code,
    message: error.message,
    ...(error.retryAfter === undefined ? {} : { retryAfter: error.retryAfter }),
    ...(error.details === undefined ? {} : { details: error.details }),
    ...(priority === 'background' ? { background: true } : {}),
  }
  await store.ephemeral
    .put(key, JSON.stringify(marker), FAILURE_MARKER_MS)
    .catch((e: unknown) => logger.warn({ err: e }, 'could not publish a token failure for waiters'))
}

/** A stored failure marker, or undefined when absent or not one. */
export function parseFailure(raw: string | null): FailureMarker | undefined {
  if (raw === null) return undefined
  try {
    const value = JSON.parse(raw) as FailureMarker
    return typeof value.at === 'number' && typeof value.code === 'string' ? value : undefined
  } catch {
    return undefined
  }
}

/** Whether a waiter of `priority` answers with `marker`: a caller passes over a background failure. */
export function answersWaiter(marker: FailureMarker, priority: UpstreamPriority): boolean {
  return priority === 'background' || marker.background !== true
}

/**
 * The error a waiter answers with: the leader's, its Retry-After shortened by the time since (never
 * lengthened: the leader's clock may be ahead of this one).
 */
export function failureError(marker: FailureMarker, now: number): BrokerError {
  return recordedFailure({
    code: marker.code,
    message: marker.message,
    ...(marker.retryAfter === undefined
      ? {}
      : {
          retryAfter: Math.min(
            marker.retryAfter,
            Math.max(1, marker.retryAfter - Math.floor((now - marker.at) / 1000)),
          ),
        }),
    ...(marker.details === undefined ? {} : { details: marker.details }),
  })
}

/** Throttling applies to the app registration in the tenant, whichever broker registration asks. */
function throttleKey(registration: Registration): string {
  return `throttle:${registration.app}:${registration.cloud}:${registration.tenantId}`
}

/** Throws `upstream_throttled` while a throttle window recorded by any instance is open. */
export async function checkThrottle(store: Store, registration: Registration, now: number): Promise<void> {
  const raw = await store.ephemeral.get(throttleKey(registration))
  const until = raw === null ? 0 : Number(raw)
  if (!(until > now)) return
  throw throttledError(Math.max(1, Math.ceil((until - now) / 1000)))
}

/** Opens a throttle window of `retryAfter` seconds for every instance; a store failure is logged. */
export async function recordThrottle(
  store: Store,
  registration: Registration,
  retryAfter: number,
  now: number,
  logger: FastifyBaseLogger,
): Promise<void> {
  await store.ephemeral
    .put(throttleKey(registration), String(now + retryAfter * 1000), retryAfter * 1000)
    .catch((e: unknown) => logger.warn({ err: e }, 'could not record the throttle window'))
  await recordUpstreamState(store, registration, true, now, logger, retryAfter)
}

/** The 429 answered while Entra throttles this tenant and app. */
export function throttledError(retryAfter: number): BrokerError {
  return upstreamThrottled(retryAfter)
}

/** A token group backing off after transient failures, as every instance reads it. */
export interface BackoffMarker {
  /** Consecutive transient failures. */
  failures: number
  /** Epoch ms before which no instance asks Entra for this group's tokens. */
  nextAt: number
  /** The last failure, answered to callers who have no servable token meanwhile. */
  code: ErrorCode
  message: string
}

/** Store key of a token group's backoff marker. */
function backoffKey(group: string): string {
  return `token-backoff:${group}`
}

/** The group's backoff marker, or undefined when it is not backing off (or the marker is unreadable). */
export async function readBackoff(store: Store, group: string): Promise<BackoffMarker | undefined> {
  const raw = await store.ephemeral.get(backoffKey(group))
  if (raw === null) return undefined
  try {
    const value = JSON.parse(raw) as BackoffMarker
    return typeof value.nextAt === 'number' && typeof value.failures === 'number' ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * Counts one more transient failure of `group` and publishes the next allowed attempt (backoff with
 * jitter, or Retry-After when longer). The marker outlives that attempt by the longest backoff, so
 * the count keeps growing while failures go on and starts over once they stop.
 */
export async function recordBackoff(
  store: Store,
  group: string,
  error: BrokerError,
  now: number,
  random: Random,
): Promise<{ marker: BackoffMarker; previous: BackoffMarker | undefined }> {
  const previous = await readBackoff(store, group)
  const failures = (previous?.failures ?? 0) + 1
  const marker: BackoffMarker = {
    failures,
    nextAt: nextAttemptAt(
      now,
      failures,
      error.code === 'upstream_throttled' ? error.retryAfter : undefined,
      random,
    ),
    code: error.code,
    message: error.message,
  }
  await store.ephemeral.put(backoffKey(group), JSON.stringify(marker), marker.nextAt - now + BACKOFF_MAX_MS)
  return { marker, previous }
}

/** Ends the group's backoff (a refresh succeeded). */
export async function clearBackoff(store: Store, group: string): Promise<void> {
  await store.ephemeral.delete(backoffKey(group))
}

/** The error answered while a group backs off and no servable token exists. */
export function backoffError(marker: BackoffMarker, now: number): BrokerError {
  return recordedFailure({
    code: marker.code,
    message: marker.message,
    retryAfter: Math.max(1, Math.ceil((marker.nextAt - now) / 1000)),
  })
}
