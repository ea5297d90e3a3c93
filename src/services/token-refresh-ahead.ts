// Refresh-ahead: a token still served but past its refresh-ahead point is refreshed in the
// background, so callers never wait at its expiry. One refresh per token at a time on an instance
// (and none sooner than AHEAD_RECHECK_MS after the last), started after the caller's answer is
// written; it adopts another instance's newer token, steps aside while the group backs off,
// another instance holds the lock or the rate cap's background share is used up (it never queues
// holding the lock), and refreshes under the lock with one attempt. Its failures stay its own:
// callers never join its flight, and its failure markers are not their answer.
import type { FastifyBaseLogger } from 'fastify'
import { BoundedCache } from '../bounded-cache.js'
import type { Config } from '../config.js'
import { otherInstanceFetching, tokenDeadlinePassed } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { CachedToken, LockHandle, Registration, Store } from '../store/types.js'
import {
  type IssuedToken,
  type IssueRequest,
  issued,
  type LeadOptions,
  REFRESH_LOCK_LEASE_MS,
  refreshLockName,
} from './token-fetch.js'
import { type LocalTokenCache, tokenGroup } from './token-groups.js'
import { backoffError } from './token-markers.js'
import type { AppScopes, ScopeResolver } from './token-scope.js'
import type { SingleFlight } from './token-single-flight.js'
import type { UpstreamGuard } from './token-upstream-guard.js'

/** A token past its refresh-ahead point starts a background refresh at most this often per instance. */
const AHEAD_RECHECK_MS = 1_000
const AHEAD_TRACKED_MAX = 10_000

/** What refresh-ahead shares with its token issuer. */
export interface RefreshAheadDeps {
  config: Config
  store: Store
  metrics: Metrics
  logger: FastifyBaseLogger
  clock: () => number
  scopes: ScopeResolver
  guard: UpstreamGuard
  /** The issuer's copy of fresh tokens (an adopted or refreshed token goes in). */
  local: LocalTokenCache
  /** The issuer's single-flight; refresh-ahead runs under keys of its own (`…|ahead`). */
  flights: SingleFlight<IssuedToken>
  /** The issuer's refresh under a held lock (re-read, fetch, cache, release). */
  lead: (
    request: IssueRequest,
    group: string,
    seen: CachedToken,
    handle: LockHandle,
    options: LeadOptions,
  ) => Promise<IssuedToken>
}

/** The background refreshes of one token issuer. */
export class RefreshAhead {
  readonly #deps: RefreshAheadDeps
  /** group|scope → epoch ms before which no new background refresh starts here. */
  readonly #notBefore = new BoundedCache<number>({ maxEntries: AHEAD_TRACKED_MAX })

  constructor(deps: RefreshAheadDeps) {
    this.#deps = deps
  }

  /** Starts a background refresh of a token in use, unless one started here recently. */
  due(registration: Registration, token: CachedToken, scope: string): void {
    const { clock, metrics, scopes, logger } = this.#deps
    const now = clock()
    const group = tokenGroup(registration)
    if (this.#deps.guard.isFailing(group, now))
      metrics.servedDuringUpstreamFailure.inc({ app: registration.app })
    const key = `${group}|${scope}`
    const notBefore = this.#notBefore.get(key)
    if (notBefore !== undefined && notBefore > now) return
    this.#notBefore.set(key, now + AHEAD_RECHECK_MS)
    const app = scopes.forApp(registration.app, registration.cloud)
    if (app === undefined) return
    // Started on a later turn of the event loop, not this request's: the caller's answer is
    // written before any of the refresh's work (its Redis commands included) is done.
    // Its own flight: a caller who misses meanwhile must not join it, since a refresh-ahead steps
    // aside (another instance holds the lock, a backoff) where a caller waits or fetches.
    setImmediate(() => {
      const { promise } = this.#deps.flights.run(`${key}|ahead`, () =>
        this.#run(registration, app, scope, group, token),
      )
      promise.catch((error: unknown) => {
        logger.debug({ err: error, group }, 'background token refresh did not refresh')
      })
    })
  }

  /**
   * The background refresh of a token in use: adopts another instance's newer token, skips while
   * the group backs off or another instance holds the lock, takes a background rate slot under the
   * lock (or lets go of it when there is none), and refreshes with one attempt.
   */
  async #run(
    registration: Registration,
    app: AppScopes,
    scope: string,
    group: string,
    seen: CachedToken,
  ): Promise<IssuedToken> {
    const { store, clock, metrics, config } = this.#deps
    const label = registration.app
    const key = `${group}|${scope}`
    const [entry, backoff] = await Promise.all([
      store.tokens.get(group, scope),
      this.#deps.guard.backingOff(registration, group),
    ])
    const now = clock()
    if (entry !== null && entry.accessToken !== seen.accessToken && this.#deps.local.isFresh(entry, now)) {
      this.#deps.local.remember(group, scope, entry)
      this.#notBefore.delete(key)
      metrics.refreshAhead.inc({ app: label, outcome: 'adopted' })
      return issued(entry, 'shared')
    }
    if (backoff !== undefined) {
      this.#notBefore.set(key, backoff.nextAt)
      metrics.refreshAhead.inc({ app: label, outcome: 'backoff' })
      throw backoffError(backoff, now)
    }
    const handle = await store.locks.acquire(refreshLockName(group, scope), REFRESH_LOCK_LEASE_MS)
    if (handle === null) {
      metrics.refreshAhead.inc({ app: label, outcome: 'other_instance' })
      throw otherInstanceFetching(1)
    }
    // The slot after the lock: an instance that loses the race for the lock spends none. Without
    // one it lets go at once rather than hold the lock while it queues (a caller whose token
    // expires meanwhile would queue behind it), and tries again when the window has room.
    let busyForMs: number | undefined
    try {
      busyForMs = await this.#deps.guard.tryBackgroundSlot(registration, app)
    } catch (error) {
      await this.#release(handle)
      throw error
    }
    if (busyForMs !== undefined) {
      await this.#release(handle)
      this.#notBefore.set(key, clock() + busyForMs)
      metrics.refreshAhead.inc({ app: label, outcome: 'rate_capped' })
      throw tokenDeadlinePassed(1)
    }
    const request: IssueRequest = {
      registration,
      app,
      scope,
      deadlineAt: clock() + config.tokens.responseDeadlineMs,
      // The cached token is still fresh: only a different one counts as someone else's result.
      force: true,
    }
    try {
      const result = await this.#deps.lead(request, group, seen, handle, {
        waited: false,
        priority: 'background',
        attempts: 1,
        slotTaken: true,
      })
      this.#deps.local.remember(group, scope, result)
      this.#notBefore.delete(key)
      metrics.refreshAhead.inc({ app: label, outcome: result.source === 'miss' ? 'refreshed' : 'adopted' })
      return result
    } catch (error) {
      metrics.refreshAhead.inc({ app: label, outcome: 'failed' })
      throw error
    }
  }

  /** Lets go of a lock taken for nothing; a failure is logged (the lease ends it anyway). */
  async #release(handle: LockHandle): Promise<void> {
    await this.#deps.store.locks.release(handle).catch((error: unknown) => {
      this.#deps.logger.warn(
        { err: error, lock: handle.name },
        'token refresh lock release failed (it expires by itself)',
      )
    })
  }
}
