// The store's index maintenance: its layout migrations and the repair of interrupted index moves,
// one instance at a time (a lock shared by all three):
// - at start-up, in the background, `store.registrations.ensureIndexes()`: indexes data of older
//   releases, leaves a store the previous release wrote expanded (both layouts kept, so instances
//   of both releases can share it during a rolling upgrade), completes an interrupted finish;
// - on the operator's word (`finishUpgrade`, once every instance runs this release), the contract:
//   `store.registrations.finishUpgrade()` (store/redis/store-upgrade.ts), audited;
// - after either, and every REPAIR_EVERY_MS, `store.registrations.repairIndexes()`: on a Redis
//   Cluster a status change writes its record, then its index entries; the moves a failure between
//   the two left undone (journaled: store/redis/index-moves.ts) are completed, so listings, counts
//   and tenant summaries never stay stale for a change nobody retries.
// An instance that finds the lock held (another is migrating, or one crashed holding it until its
// TTL lapses) tries again later with a bounded backoff, as after a Redis failure. Meanwhile the
// store answers from whichever layout is complete, so nothing waits for either.
import type { FastifyBaseLogger } from 'fastify'
import type { Store, UpgradeState } from '../store/types.js'
import { type Actor, actorLabel, recordAudit } from './audit.js'

const LOCK_NAME = 'registration-indexes-rebuild'
/** Long enough for 100 000 registrations on a slow Redis; renewed while a migration runs. */
const LOCK_TTL_MS = 120_000
/** First wait before trying again (lock held, or Redis failed); doubled up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 5_000
const RETRY_MAX_MS = 120_000
/** How often interrupted index moves are looked for (one read of an empty journal, normally). */
const REPAIR_EVERY_MS = 30_000

/** An upgrade's state as an operator sees it: the store's, or this instance's finish running or failed. */
export interface UpgradeStatus {
  /** `finishing` while this instance runs the finish; `failed` when its last attempt failed. */
  state: UpgradeState | 'finishing' | 'failed'
  /** Why the last finish on this instance failed. */
  error?: string
}

type Job = 'start-up' | 'finish' | 'repair'

/** What the index maintenance needs. */
export interface IndexRebuildDeps {
  store: Store
  logger: FastifyBaseLogger
  /** Between two repairs of interrupted index moves; default REPAIR_EVERY_MS (tests shorten it). */
  repairEveryMs?: number
}

/**
 * Runs the store's index maintenance: the start-up migration once per process, the finish on
 * request, the repair of interrupted index moves after them and periodically.
 */
export class IndexRebuild {
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #stopped = false
  #startUpDone = false
  #retryMs = RETRY_MIN_MS
  /** The finish requested on this instance: who asked, and whether it failed. */
  #finish: { actor: string; error?: string } | undefined
  #finishing = false
  readonly #repairEveryMs: number

  constructor(private readonly deps: IndexRebuildDeps) {
    this.#repairEveryMs = deps.repairEveryMs ?? REPAIR_EVERY_MS
  }

  /** Starts the first attempt (returns at once). */
  start(): void {
    this.#schedule(0)
  }

  /** Stops retrying and waits for an attempt in progress. */
  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
  }

  /**
   * Starts finishing the upgrade in the background (the contract: see the file header), unless it
   * is running here; returns the status at once. Only once every instance runs this release.
   */
  async finishUpgrade(actor: Actor): Promise<{ status: UpgradeStatus; started: boolean }> {
    if (this.#finishing) return { status: await this.upgradeStatus(), started: false }
    this.#finishing = true
    this.#finish = { actor: actorLabel(actor) }
    await recordAudit(this.deps.store, this.deps.logger, {
      type: 'store.upgrade_finished',
      actor: this.#finish.actor,
      detail: { phase: 'started' },
    })
    this.#retryMs = RETRY_MIN_MS
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#schedule(0)
    return { status: await this.upgradeStatus(), started: true }
  }

  /** The store's upgrade state, or this instance's finish in progress or failed. */
  async upgradeStatus(): Promise<UpgradeStatus> {
    const state = await this.deps.store.registrations.upgradeState()
    if (this.#finishing) return { state: 'finishing' }
    const error = this.#finish?.error
    if (error !== undefined && state !== 'contracted') return { state: 'failed', error }
    return { state }
  }

  #schedule(delayMs: number): void {
    if (this.#stopped || this.#timer !== undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      // an attempt in progress runs whatever was requested meanwhile before it ends
      if (this.#running !== undefined) return
      this.#running = this.#attempt().finally(() => {
        this.#running = undefined
        // a job requested meanwhile at once, else the next repair (a retry already scheduled wins)
        this.#schedule(this.#next() !== undefined ? 0 : this.#repairEveryMs)
      })
    }, delayMs)
    this.#timer.unref()
  }

  /** The next job: the start-up one until done, then a requested finish. */
  #next(): Job | undefined {
    if (!this.#startUpDone) return 'start-up'
    return this.#finishing ? 'finish' : undefined
  }

  /**
   * Runs the pending jobs under the lock, then a repair; a held lock or a failure is retried later
   * (a failed finish waits for the operator's next request).
   */
  async #attempt(): Promise<void> {
    const { store, logger } = this.deps
    let job: Job = this.#next() ?? 'repair'
    try {
      const handle = await store.locks.acquire(LOCK_NAME, LOCK_TTL_MS)
      if (handle === null) {
        // another instance migrates, or crashed holding the lock until its TTL: try again later
        return this.#retry()
      }
      const renewal = setInterval(() => {
        store.locks.renew(handle, LOCK_TTL_MS).catch(() => {})
      }, LOCK_TTL_MS / 3)
      renewal.unref()
      try {
        for (; job !== 'repair'; job = this.#next() ?? 'repair') {
          if (job === 'start-up') await this.#startUp()
          else await this.#finishNow()
        }
        await this.#repair()
      } finally {
        clearInterval(renewal)
        await store.locks.release(handle).catch(() => {})
      }
      this.#retryMs = RETRY_MIN_MS
    } catch (error) {
      if (job === 'finish') {
        this.#finishing = false
        if (this.#finish !== undefined) this.#finish.error = (error as Error).message
        logger.error({ err: error }, 'finishing the store upgrade failed; run it again')
        await recordAudit(store, logger, {
          type: 'store.upgrade_finished',
          actor: this.#finish?.actor ?? 'system',
          detail: { phase: 'failed' },
        })
        return
      }
      logger.warn(
        { err: error, retryInMs: this.#retryMs },
        job === 'repair'
          ? 'repairing interrupted registration index moves failed; retrying'
          : 'registration index migration failed; retrying',
      )
      this.#retry()
    }
  }

  #retry(): void {
    const delay = this.#retryMs
    this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2)
    this.#schedule(delay)
  }

  async #startUp(): Promise<void> {
    const result = await this.deps.store.registrations.ensureIndexes()
    this.#startUpDone = true
    if (result.rebuilt) {
      this.deps.logger.info({ registrations: result.registrations }, 'registration indexes rebuilt')
    }
    if (result.upgrade === 'expanded') {
      this.deps.logger.info(
        'store keeps the previous release layout too (rolling upgrade): finish the upgrade once every instance runs this release',
      )
    }
  }

  async #repair(): Promise<void> {
    const repaired = await this.deps.store.registrations.repairIndexes()
    if (repaired > 0) {
      this.deps.logger.warn(
        { registrations: repaired },
        'registration index entries repaired: status changes had been interrupted before their index move',
      )
    }
  }

  async #finishNow(): Promise<void> {
    const result = await this.deps.store.registrations.finishUpgrade()
    this.#finishing = false
    this.deps.logger.info({ ...result }, 'store upgrade finished')
    await recordAudit(this.deps.store, this.deps.logger, {
      type: 'store.upgrade_finished',
      actor: this.#finish?.actor ?? 'system',
      detail: { phase: 'completed', registrations: result.registrations, pruned: result.pruned },
    })
  }
}
