// What keeps the broker's token requests to Entra ID bounded, whatever happens: the shared rate cap
// (token requests per app registration at Microsoft — per client id and cloud, so a tenant's own app
// has its own — per second across every instance; background refreshes may use only part of it, so
// callers without a servable token go first), and the token groups' backoff after
// transient failures (the shared marker of token-markers.ts, honoured before every attempt). It
// also remembers which groups this instance saw failing (metrics) and logs backoff state changes,
// not one line per failed request.
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import { type BrokerError, tokenDeadlinePassed } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { Registration, Store } from '../store/types.js'
import { ANSWER_MARGIN_MS, sleep } from './token-grant.js'
import {
  type BackoffMarker,
  backoffError,
  checkThrottle,
  clearBackoff,
  readBackoff,
  recordBackoff,
  recordThrottle,
  type UpstreamPriority,
} from './token-markers.js'
import type { Random } from './token-schedule.js'
import type { AppScopes } from './token-scope.js'

/**
 * Whose rate cap a token request counts against: the app registration at Microsoft that makes it
 * (the hosted app's client id, or a tenant's own app's), in its cloud. `app` is the broker's app
 * slug, the metrics label (a client id is not: tenants' own apps are unbounded in number).
 */
export interface UpstreamCaller {
  readonly app: string
  readonly cloud: string
  readonly clientId: string
}

/** Who asks Entra for `registration`'s tokens: a tenant's own app, or the hosted `app`. */
export function upstreamCallerOf(registration: Registration, app: AppScopes): UpstreamCaller {
  return {
    app: registration.app,
    cloud: registration.cloud,
    clientId: registration.ownClientId ?? app.resolved.clientId,
  }
}

/** The rate limiter key of `caller`'s cap: one per client id and cloud, shared by every instance. */
export function upstreamRateKey(caller: UpstreamCaller): string {
  return `upstream:${caller.cloud}:${caller.clientId.toLowerCase()}`
}

/**
 * A caller's deadline (epoch ms by the clock), as an object read afresh at each wait: a flight's
 * request, whose deadline a caller who joins it moves on (token-issuer.ts).
 */
export interface Deadline {
  readonly deadlineAt: number
}

/** A next allowed attempt at most this far away is waited for; a later one is answered at once. */
const SHORT_WAIT_MS = 1_000
/** The rate cap's window. */
const RATE_WINDOW_MS = 1_000
/** Background refreshes (refresh-ahead, keep-alive) may take this share of the rate cap. */
const BACKGROUND_SHARE = 0.5
const MAX_TRACKED_GROUPS = 10_000

/** What the guard needs. */
export interface UpstreamGuardDeps {
  config: Config
  store: Store
  metrics: Metrics
  logger: FastifyBaseLogger
  clock: () => number
  random: Random
}

/** Rate cap and backoff of the upstream token requests of one broker instance. */
export class UpstreamGuard {
  readonly #deps: UpstreamGuardDeps
  /** Groups this instance saw backing off: until when, and their app (metrics). */
  readonly #failing = new Map<string, { app: string; until: number }>()

  constructor(deps: UpstreamGuardDeps) {
    this.#deps = deps
    deps.metrics.observeUpstreamBackoff(() => this.#backoffByApp())
  }

  /**
   * Before a refresh: throws the recorded failure while the group backs off (or its app and tenant
   * are throttled), unless the next allowed attempt is close enough to wait for. Returns whether the
   * group was backing off (a success then ends it).
   */
  async admit(registration: Registration, group: string, deadlineAt: number): Promise<boolean> {
    const { store, clock } = this.#deps
    const [marker] = await Promise.all([
      readBackoff(store, group),
      checkThrottle(store, registration, clock()),
    ])
    if (marker === undefined) return false
    const now = clock()
    if (marker.nextAt > now) {
      this.noteBackingOff(registration, group, marker.nextAt)
      const wait = marker.nextAt - now
      if (wait > SHORT_WAIT_MS || marker.nextAt > deadlineAt - ANSWER_MARGIN_MS - 500) {
        throw backoffError(marker, now)
      }
      await sleep(wait)
    }
    return true
  }

  /** The group's backoff marker, when it is backing off now (noted for the metrics). */
  async backingOff(registration: Registration, group: string): Promise<BackoffMarker | undefined> {
    const marker = await readBackoff(this.#deps.store, group)
    if (marker === undefined || marker.nextAt <= this.#deps.clock()) return undefined
    this.noteBackingOff(registration, group, marker.nextAt)
    return marker
  }

  /** Remembers that `group` backs off until `until` (read from the shared marker). */
  noteBackingOff(registration: Registration, group: string, until: number): void {
    if (this.#failing.size >= MAX_TRACKED_GROUPS) this.#prune()
    this.#failing.set(group, { app: registration.app, until })
  }

  /** Whether this instance knows `group` to be failing upstream (its last refresh failed or backs off). */
  isFailing(group: string, now: number): boolean {
    const entry = this.#failing.get(group)
    return entry !== undefined && entry.until + SHORT_WAIT_MS > now
  }

  /**
   * Waits for a slot of the upstream rate cap of the app registration making the request (its
   * client id: the hosted app's or a tenant's own; shared by every instance). Background work may
   * use only part of each window; a caller gives up when its deadline would pass. The deadline is
   * read afresh before each wait: a caller who joins the flight meanwhile may move it on.
   */
  async permit(caller: UpstreamCaller, priority: UpstreamPriority, deadline: Deadline): Promise<void> {
    const { store, clock, metrics, random } = this.#deps
    const limit = this.#limit(priority)
    const key = upstreamRateKey(caller)
    let counted = false
    for (;;) {
      const slot = await store.rateLimiter.take(key, limit, RATE_WINDOW_MS)
      if (slot.allowed) return
      if (!counted) {
        metrics.upstreamRateWaits.inc({ app: caller.app, priority })
        counted = true
      }
      // Spread the waiters over the next window instead of waking them all at its start.
      const wait = slot.retryAfterMs + Math.floor(random() * 100)
      if (clock() + wait > deadline.deadlineAt - ANSWER_MARGIN_MS - 100) throw tokenDeadlinePassed(1)
      await sleep(wait)
    }
  }

  /**
   * The keep-alive (one attempt, one instance at a time) waits for its rate slot before it takes
   * the refresh lock, never while holding it: a caller whose token expires meanwhile would wait for
   * the lock behind the queue.
   */
  async backgroundSlot(registration: Registration, app: AppScopes, deadline: Deadline): Promise<void> {
    await this.permit(upstreamCallerOf(registration, app), 'background', deadline)
  }

  /**
   * One background rate slot now, without waiting (a refresh-ahead, holding the lock, skips rather
   * than queue): undefined when taken, else the milliseconds until the window has room again.
   */
  async tryBackgroundSlot(registration: Registration, app: AppScopes): Promise<number | undefined> {
    const key = upstreamRateKey(upstreamCallerOf(registration, app))
    const slot = await this.#deps.store.rateLimiter.take(key, this.#limit('background'), RATE_WINDOW_MS)
    return slot.allowed ? undefined : Math.max(1, slot.retryAfterMs)
  }

  /** Slots of each rate cap window that `priority` may take. */
  #limit(priority: UpstreamPriority): number {
    const cap = this.#deps.config.tokens.upstreamRatePerApp
    return priority === 'caller' ? cap : Math.max(1, Math.floor(cap * BACKGROUND_SHARE))
  }

  /**
   * A transient failure (5xx, timeout, network, 429): one more failure in the group's shared
   * backoff, and for a 429 the app and tenant's throttle window. Logs a warning when the group starts
   * backing off, debug afterwards. Returns when the next attempt is allowed.
   */
  async failed(registration: Registration, group: string, error: BrokerError): Promise<number> {
    const { store, clock, logger, random } = this.#deps
    const now = clock()
    if (error.code === 'upstream_throttled' && error.retryAfter !== undefined) {
      await recordThrottle(store, registration, error.retryAfter, now, logger)
    }
    let nextAt = now + SHORT_WAIT_MS
    try {
      const { marker, previous } = await recordBackoff(store, group, error, now, random)
      nextAt = marker.nextAt
      const context = {
        app: registration.app,
        cloud: registration.cloud,
        tenantId: registration.tenantId,
        group,
        code: error.code,
        failures: marker.failures,
        nextAttemptInMs: marker.nextAt - now,
      }
      if (previous === undefined) {
        logger.warn(
          context,
          error.code === 'upstream_throttled'
            ? 'Entra ID throttles token requests: backing off (cached tokens are served meanwhile)'
            : 'Entra ID token requests failing: backing off (cached tokens are served meanwhile)',
        )
      } else {
        logger.debug(context, 'token refresh failed again; backing off further')
      }
    } catch (e) {
      logger.warn({ err: e }, 'could not record the token group backoff')
    }
    this.noteBackingOff(registration, group, nextAt)
    return nextAt
  }

  /** A refresh succeeded: the group's backoff (if any) ends, logged once. */
  async succeeded(registration: Registration, group: string, wasBackingOff: boolean): Promise<void> {
    const { store, logger } = this.#deps
    const knownFailing = this.#failing.delete(group)
    if (!wasBackingOff && !knownFailing) return
    await clearBackoff(store, group).catch((e: unknown) =>
      logger.warn({ err: e }, 'could not clear the token group backoff'),
    )
    logger.info(
      { app: registration.app, cloud: registration.cloud, tenantId: registration.tenantId, group },
      'Entra ID token requests succeed again: backoff ended',
    )
  }

  #prune(): void {
    const now = this.#deps.clock()
    for (const [group, entry] of this.#failing)
      if (entry.until + SHORT_WAIT_MS <= now) this.#failing.delete(group)
    if (this.#failing.size >= MAX_TRACKED_GROUPS) this.#failing.clear()
  }

  #backoffByApp(): Record<string, number> {
    this.#prune()
    const now = this.#deps.clock()
    const counts: Record<string, number> = {}
    for (const entry of this.#failing.values()) {
      if (entry.until > now) counts[entry.app] = (counts[entry.app] ?? 0) + 1
    }
    return counts
  }
}
