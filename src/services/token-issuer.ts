// Access tokens for registrations: served from the sealed cache while fresh, refreshed ahead of
// expiry in the background, otherwise fetched from Entra ID once per expiry, however many requests
// and broker instances ask at once; bounded upstream whatever fails. This file is the single-flight
// and lock core; the pieces it coordinates live beside it:
//   token-groups.ts          cache groups and this instance's copy of fresh tokens
//   token-refresh-ahead.ts   the background refresh of a token in use
//   token-fetch.ts           one refresh under the lock: grant, rotated refresh token, cache
//   token-schedule.ts        refresh-ahead point, backoff with jitter (pure, clock injected)
//   token-upstream-guard.ts  the shared rate cap and the token groups' backoff
//   token-markers.ts         failure, backoff and throttle markers shared between instances
//   token-grant.ts           the call to Entra (grant, retry) and the answer to its failures
//   token-registration.ts    needs_consent, rotated refresh token, status errors
//
//   request ──► cache fresh? ──yes──► hit (past its refresh-ahead point: one background refresh
//                 │ no                       per instance, which gives way to another instance's)
//                 ▼
//   in-process single-flight (one promise per group+scope; other requests of this instance share it,
//                 │ each moving its deadline on to theirs)
//                 │ leader of this instance
//                 ▼
//   backoff / throttle marker: no attempt before the next allowed one (short waits are waited)
//                 ▼
//   Redis lock `token-refresh:<group>|<scope>` (random token, lease of a few seconds renewed every
//      │ acquired                                 third of it) │ held by another instance
//      ▼                                                       ▼
//   re-read cache (another instance may have     wait: poll the cache (short backoff) until the
//   just refreshed), re-read the registration,   leader's token appears (`shared`), the leader's
//   wait for the app's rate cap, call upstream   failure is published, or the lease lapses (take
//   (≤ upstream timeout, one retry on 5xx/       over: a killed leader costs one lease); give up
//   timeout for callers), store the rotated      at the response deadline
//   refresh token with compare-and-set, cache
//   with its jittered refresh-ahead point, release
//
// Failures are published for waiters (`token-fail:` keys; a background refresh's only for
// background waiters: a caller takes the lock and tries itself); transient ones (5xx, timeout,
// network, 429) put the token group in a shared backoff, during which cached tokens are served and
// callers without one get the recorded failure; consent failures move the registration to
// `needs_consent`. A call the caller's deadline cut short is not held against Entra (token-grant.ts);
// background work takes its rate slot before the lock, never while holding it.

import type { FastifyBaseLogger } from 'fastify'
import { withDeadline } from '../abortable.js'
import type { Config } from '../config.js'
import type { IdentityProvider } from '../entra/types.js'
import { otherInstanceFetching, tokenDeadlinePassed } from '../errors.js'
import type { Metrics } from '../metrics.js'
import type { CachedToken, LockHandle, Registration, Store } from '../store/types.js'
import {
  type FetchContext,
  fetchUnderLock,
  type IssuedToken,
  type IssueRequest,
  issued,
  type LeadOptions,
  REFRESH_LOCK_LEASE_MS,
  refreshLockName,
  type TokenSource,
} from './token-fetch.js'
import { ANSWER_MARGIN_MS, DEFAULT_RETRY_AFTER_S, sleep } from './token-grant.js'
import { type HeldToken, LocalTokenCache, tokenGroup } from './token-groups.js'
import { answersWaiter, failureError, failureKey, parseFailure } from './token-markers.js'
import { RefreshAhead } from './token-refresh-ahead.js'
import { RegistrationLifecycle } from './token-registration.js'
import type { Random } from './token-schedule.js'
import type { ScopeResolver } from './token-scope.js'
import { SingleFlight } from './token-single-flight.js'
import { UpstreamGuard } from './token-upstream-guard.js'

export type { IssuedToken, IssueRequest, TokenSource } from './token-fetch.js'

/** What a TokenIssuer needs; one issuer per broker instance. */
export interface TokenIssuerDeps {
  config: Config
  store: Store
  idp: IdentityProvider
  metrics: Metrics
  logger: FastifyBaseLogger
  clock: () => number
  /** The scopes of each app and cloud (a background refresh resolves its app through it). */
  scopes: ScopeResolver
  /** Jitter source, [0, 1); default Math.random (tests inject one). */
  random?: Random
}

const POLL_START_MS = 15
const POLL_MAX_MS = 200
/** Its holder renews it this often while the upstream call runs. */
const REFRESH_LOCK_RENEW_MS = 800

/** Issues access tokens: cache, refresh-ahead, single-flight per instance, one lock across instances. */
export class TokenIssuer {
  readonly #deps: TokenIssuerDeps
  readonly #flights = new SingleFlight<IssuedToken>()
  /**
   * The request each running caller flight works to (by flight key): a caller who joins later moves
   * its deadline on, so the flight does not give up at the first caller's deadline for all of them.
   */
  readonly #flightRequests = new Map<string, IssueRequest>()
  /** Fresh tokens this instance has already opened: a hit costs no Redis read. */
  readonly #local: LocalTokenCache
  readonly #lifecycle: RegistrationLifecycle
  readonly #guard: UpstreamGuard
  readonly #random: Random
  readonly #marginMs: number
  readonly #ahead: RefreshAhead
  readonly #fetchContext: FetchContext

  constructor(deps: TokenIssuerDeps) {
    this.#deps = deps
    this.#random = deps.random ?? Math.random
    this.#marginMs = deps.config.tokens.refreshMarginSeconds * 1000
    this.#local = new LocalTokenCache(this.#marginMs, deps.clock)
    this.#guard = new UpstreamGuard({
      config: deps.config,
      store: deps.store,
      metrics: deps.metrics,
      logger: deps.logger,
      clock: deps.clock,
      random: this.#random,
    })
    this.#lifecycle = new RegistrationLifecycle({
      config: deps.config,
      store: deps.store,
      logger: deps.logger,
      clock: deps.clock,
      onTokensDropped: (group) => this.#local.forgetGroup(group),
    })
    this.#fetchContext = {
      deps,
      lifecycle: this.#lifecycle,
      guard: this.#guard,
      random: this.#random,
      marginMs: this.#marginMs,
    }
    this.#ahead = new RefreshAhead({
      ...deps,
      guard: this.#guard,
      local: this.#local,
      flights: this.#flights,
      lead: (request, group, seen, handle, options) => this.#lead(request, group, seen, handle, options),
    })
  }

  /** A fresh token this instance holds for the registration's group and scope, without I/O. */
  peek(registration: Registration, scope: string): HeldToken | undefined {
    return this.peekGroup(tokenGroup(registration), scope)
  }

  /** `peek` with the registration's {@link tokenGroup} already at hand (obtain-token keeps it). */
  peekGroup(group: string, scope: string): HeldToken | undefined {
    return this.#local.get(group, scope)
  }

  /**
   * Serves a fresh token `peek` returned: a hit, counted. Past its refresh-ahead point it also
   * starts a background refresh (the caller never waits for it).
   */
  served(registration: Registration, token: HeldToken): IssuedToken {
    return this.#serve(registration, token, token.requestedScope)
  }

  /**
   * An access token for the request: a fresh cached one, else one fetched once for every caller
   * of every instance. Throws a BrokerError (consent required, throttled, upstream failure while no
   * servable token exists, deadline).
   */
  async issue(request: IssueRequest): Promise<IssuedToken> {
    const { store, clock, metrics } = this.#deps
    const group = tokenGroup(request.registration)
    const cached =
      request.cached === undefined
        ? (this.peekGroup(group, request.scope) ?? (await store.tokens.get(group, request.scope)))
        : request.cached
    if (!request.force && cached !== null && this.#local.isFresh(cached, clock())) {
      this.#local.remember(group, request.scope, cached)
      return this.#serve(request.registration, cached, request.scope)
    }
    const key = `${group}|${request.scope}${request.force ? '|force' : ''}`
    const { promise, shared } = this.#flights.run(key, () => {
      const flight = { ...request }
      this.#flightRequests.set(key, flight)
      return this.#acquireAndFetch(flight, group, cached).finally(() => {
        if (this.#flightRequests.get(key) === flight) this.#flightRequests.delete(key)
      })
    })
    if (shared) {
      // The flight reads its deadline afresh at each wait and attempt.
      const flight = this.#flightRequests.get(key)
      if (flight !== undefined && flight.deadlineAt < request.deadlineAt)
        flight.deadlineAt = request.deadlineAt
    }
    const result = await withDeadline(promise, request.deadlineAt - clock(), () =>
      tokenDeadlinePassed(DEFAULT_RETRY_AFTER_S),
    )
    const source: TokenSource = shared && result.source === 'miss' ? 'shared' : result.source
    this.#local.remember(group, request.scope, result)
    metrics.countTokenCache(request.registration.app, source)
    return { ...result, source }
  }

  /** A fresh token served; past its refresh-ahead point, a background refresh starts. */
  #serve(registration: Registration, token: CachedToken, scope: string): IssuedToken {
    this.#deps.metrics.countTokenCache(registration.app, 'hit')
    if (token.refreshAt !== undefined && token.refreshAt <= this.#deps.clock()) {
      this.#ahead.due(registration, token, scope)
    }
    return issued(token, 'hit')
  }

  /** The instance-level leader: takes the Redis lock or waits for whoever holds it. */
  async #acquireAndFetch(
    request: IssueRequest,
    group: string,
    seen: CachedToken | null,
  ): Promise<IssuedToken> {
    const { store, clock, metrics } = this.#deps
    const lockName = refreshLockName(group, request.scope)
    const failKey = failureKey(group, request.scope)
    await this.#guard.admit(request.registration, group, request.deadlineAt)

    const priority = request.priority ?? 'caller'
    if (priority === 'background')
      await this.#guard.backgroundSlot(request.registration, request.app, request)
    const waitStart = clock()
    let delay = POLL_START_MS
    let waited = false
    // A background refresh's failure passed over while waiting: its holder ended, no takeover.
    let passedOver = false
    // The failure marker as it was before the first try for the lock (read beside it, sent first):
    // a different one later is the holder's answer. Compared by value, not by its time, which is
    // the writer's clock. When it can't be read, the first marker read while waiting is the baseline.
    let markerBefore: Promise<string | null | undefined> = store.ephemeral.get(failKey).catch(() => undefined)
    for (;;) {
      const handle = await store.locks.acquire(lockName, REFRESH_LOCK_LEASE_MS)
      if (handle !== null) {
        metrics.lockWaits.inc({ result: waited ? 'waited' : 'acquired' })
        if (waited) metrics.lockWaitSeconds.observe((clock() - waitStart) / 1000)
        return await this.#lead(request, group, seen, handle, {
          waited: waited && !passedOver,
          priority,
          attempts: priority === 'background' ? 1 : 2,
          slotTaken: priority === 'background',
        })
      }
      // Another instance is refreshing: take its result rather than refreshing again.
      waited = true
      const remaining = request.deadlineAt - clock()
      if (remaining <= delay + ANSWER_MARGIN_MS) {
        metrics.lockWaits.inc({ result: 'timeout' })
        metrics.lockWaitSeconds.observe((clock() - waitStart) / 1000)
        throw otherInstanceFetching(2)
      }
      await sleep(delay)
      delay = Math.min(Math.ceil(delay * 1.6), POLL_MAX_MS)
      const [entry, failure, before] = await Promise.all([
        store.tokens.get(group, request.scope),
        store.ephemeral.get(failKey),
        markerBefore,
      ])
      if (entry !== null && this.#isNewResult(entry, seen, request.force === true)) {
        metrics.lockWaitSeconds.observe((clock() - waitStart) / 1000)
        metrics.lockWaits.inc({ result: 'waited' })
        return issued(entry, 'shared')
      }
      if (before === undefined) markerBefore = Promise.resolve(failure)
      const marker = before === undefined || failure === before ? undefined : parseFailure(failure)
      if (marker !== undefined) {
        if (!answersWaiter(marker, priority)) {
          passedOver = true
          continue
        }
        metrics.lockWaitSeconds.observe((clock() - waitStart) / 1000)
        metrics.lockWaits.inc({ result: 'waited' })
        throw failureError(marker, clock())
      }
    }
  }

  /** A cache entry written by someone else after we looked (or fresh, when not forcing). */
  #isNewResult(entry: CachedToken, seen: CachedToken | null, force: boolean): boolean {
    const now = this.#deps.clock()
    if (entry.expiresAt <= now) return false
    const changed = seen === null || entry.accessToken !== seen.accessToken
    return force ? changed : changed || this.#local.isFresh(entry, now)
  }

  /** Holds the lock (lease renewed while held) around the re-read and the fetch; always releases it. */
  async #lead(
    request: IssueRequest,
    group: string,
    seen: CachedToken | null,
    handle: LockHandle,
    options: LeadOptions,
  ): Promise<IssuedToken> {
    const { store, logger, metrics } = this.#deps
    const renewal = setInterval(() => {
      store.locks.renew(handle, REFRESH_LOCK_LEASE_MS).then(
        (held) => {
          if (!held)
            logger.warn({ lock: handle.name }, 'token refresh lock lease lost before the refresh ended')
        },
        (error: unknown) =>
          logger.warn({ err: error, lock: handle.name }, 'token refresh lock renewal failed'),
      )
    }, REFRESH_LOCK_RENEW_MS)
    renewal.unref()
    try {
      // Re-read after acquiring: another instance may have refreshed between our miss and our lock.
      const entry = await store.tokens.get(group, request.scope)
      if (entry !== null && this.#isNewResult(entry, seen, request.force === true)) {
        return issued(entry, 'shared')
      }
      if (options.waited) {
        // The holder let its lease lapse (or released it) without a result: it died or hung.
        metrics.lockTakeovers.inc()
        logger.info({ lock: handle.name }, 'took over a token refresh whose holder stopped without a result')
      }
      const wasBackingOff = await this.#guard.admit(request.registration, group, request.deadlineAt)
      return await fetchUnderLock(this.#fetchContext, request, group, options, wasBackingOff)
    } finally {
      clearInterval(renewal)
      await store.locks.release(handle).catch((error: unknown) => {
        logger.warn(
          { err: error, lock: handle.name },
          'token refresh lock release failed (it expires by itself)',
        )
      })
    }
  }
}
