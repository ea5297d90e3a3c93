// Keep-alive for delegated grants: Microsoft lets a refresh token lapse after ~90 days without use,
// so a delegated registration whose token has not been refreshed for `keepAliveIdleMs` is
// refreshed in the background. One instance at a time (a lock), a few registrations at once,
// through the issuer (so a foreground request and the keep-alive never refresh the same grant
// twice, and the keep-alive waits behind callers for the app's upstream rate cap), and a failure
// here never reaches the process: it is logged and retried on the next tick.
// Order of a pass: first every registration idle for URGENT_IDLE_MS (close to the lapse), across
// all buckets; then the rest. Each of the two sweeps walks the store's idle order (its idleOrder)
// as a ring from a cursor kept in the ephemeral store: a pass starts where the previous one (on
// any instance) stopped, so a pass cut short by restarts never leaves the high buckets unread.
import type { FastifyBaseLogger } from 'fastify'
import type { Config } from '../config.js'
import type { IdlePosition, Store } from '../store/types.js'
import type { TokenIssuer } from './token-issuer.js'
import type { ScopeResolver } from './token-scope.js'

/** What the keep-alive needs; it refreshes through the instance's one TokenIssuer. */
export interface KeepAliveDeps {
  config: Config
  store: Store
  issuer: TokenIssuer
  scopes: ScopeResolver
  logger: FastifyBaseLogger
  clock: () => number
}

/** What one pass did. */
export interface KeepAliveRun {
  /** False when another instance holds the keep-alive lock. */
  ran: boolean
  refreshed: number
  failed: number
  skipped: number
}

const LOCK_NAME = 'token-keep-alive'
/** Ephemeral keys of the two sweeps' cursors (shared by instances, kept across restarts). */
const CURSOR_KEY = 'token-keep-alive:cursor:'
/** A cursor unused this long is dropped (the next pass then starts at the beginning). */
const CURSOR_TTL_MS = 30 * 86_400_000
/**
 * Idle this long (or `keepAliveIdleMs` when longer), a registration is refreshed before the rest:
 * 30 days before Microsoft's 90-day inactivity lapse.
 */
export const URGENT_IDLE_MS = 60 * 86_400_000
/** Idle registrations read per page. */
const BATCH = 200
/** Registrations refreshed at once within a page (each also waits for the upstream rate cap). */
export const KEEPALIVE_CONCURRENCY = 4

/** Refreshes idle delegated grants in the background, on one instance at a time. */
export class KeepAlive {
  readonly #deps: KeepAliveDeps
  #timer: NodeJS.Timeout | undefined
  #running: Promise<KeepAliveRun> | undefined
  #stopped = false

  constructor(deps: KeepAliveDeps) {
    this.#deps = deps
  }

  /** Runs a pass every `keepAliveIntervalMs` (never two at once); does nothing once stopped. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return
    this.#timer = setInterval(() => {
      if (this.#running !== undefined) return
      this.#running = this.runOnce()
        .catch((error: unknown) => {
          this.#deps.logger.warn({ err: error }, 'keep-alive run failed; retrying on the next tick')
          return { ran: false, refreshed: 0, failed: 0, skipped: 0 }
        })
        .finally(() => {
          this.#running = undefined
        })
    }, this.#deps.config.tokens.keepAliveIntervalMs)
    this.#timer.unref()
  }

  /** Stops the timer and waits for a run in progress. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running
  }

  /** One pass: refreshes every idle delegated registration, those close to the lapse first. */
  async runOnce(): Promise<KeepAliveRun> {
    const { config, store, logger, clock } = this.#deps
    const result: KeepAliveRun = { ran: false, refreshed: 0, failed: 0, skipped: 0 }
    const lockTtl = Math.max(60_000, config.tokens.responseDeadlineMs * 4)
    const handle = await store.locks.acquire(LOCK_NAME, lockTtl)
    if (handle === null) return result
    result.ran = true
    const renewal = setInterval(
      () => {
        store.locks.renew(handle, lockTtl).catch(() => {})
      },
      Math.floor(lockTtl / 3),
    )
    renewal.unref()
    try {
      const now = clock()
      const idleMs = config.tokens.keepAliveIdleMs
      const urgentMs = Math.max(URGENT_IDLE_MS, idleMs)
      // A registration refreshed during the pass moves ahead in idle order; should it still look
      // idle (clocks apart), `visited` keeps the pass from taking it again.
      const visited = new Set<string>()
      await this.#sweep('urgent', now - urgentMs, visited, result)
      if (urgentMs > idleMs) await this.#sweep('idle', now - idleMs, visited, result)
      if (visited.size > 0) logger.info({ ...result }, 'keep-alive pass done')
      return result
    } finally {
      clearInterval(renewal)
      await store.locks.release(handle).catch(() => {})
    }
  }

  /**
   * Refreshes every registration idle since before `beforeMs`, a page at a time, from the sweep's
   * saved cursor to the end of the idle order, then from its beginning up to that cursor. Those
   * refreshed leave the range; those that can't be (waiting for consent, app gone, upstream
   * failing) stay behind the cursor instead of filling every page and starving the rest. The
   * cursor is saved after each page, and where a stopped page got to.
   */
  async #sweep(name: string, beforeMs: number, visited: Set<string>, result: KeepAliveRun): Promise<void> {
    const { store } = this.#deps
    if (this.#stopped) return
    const before = new Date(beforeMs).toISOString()
    const start = await this.#readCursor(name)
    // the ring ends at the starting cursor in the order the store lists in (its layout decides:
    // a Redis store mid-upgrade lists another order than a finished one)
    const order = await store.registrations.idleOrder()
    let wrapped = start === undefined
    let after = start
    while (!this.#stopped) {
      let page = await store.registrations.listIdleDelegated(before, BATCH, after)
      let last = false
      if (wrapped && start !== undefined) {
        // past the starting cursor: the first part of the sweep has seen the rest
        const past = page.findIndex((position) => order.compare(position, start) > 0)
        if (past >= 0) {
          page = page.slice(0, past)
          last = true
        }
      }
      if (page.length === 0) {
        if (wrapped) return
        wrapped = true
        after = undefined
        continue
      }
      after = page[page.length - 1]
      const done = await this.#refreshPage(page, visited, result)
      if (done > 0) await this.#saveCursor(name, page[done - 1] as IdlePosition)
      if (done < page.length || last) return
    }
  }

  /** Refreshes one page, a few at a time in page order; returns how many of its first were done. */
  async #refreshPage(page: IdlePosition[], visited: Set<string>, result: KeepAliveRun): Promise<number> {
    const finished = page.map(({ id }) => visited.has(id))
    for (const { id } of page) visited.add(id)
    let next = 0
    const worker = async () => {
      while (!this.#stopped && next < page.length) {
        const at = next++
        if (finished[at]) continue
        await this.#keepAlive((page[at] as IdlePosition).id, result)
        finished[at] = true
      }
    }
    await Promise.all(Array.from({ length: Math.min(KEEPALIVE_CONCURRENCY, page.length) }, worker))
    const undone = finished.indexOf(false)
    return undone < 0 ? page.length : undone
  }

  async #readCursor(name: string): Promise<IdlePosition | undefined> {
    const raw = await this.#deps.store.ephemeral.get(CURSOR_KEY + name)
    if (raw === null) return undefined
    try {
      const { id, score } = JSON.parse(raw) as Partial<IdlePosition>
      return typeof id === 'string' && typeof score === 'number' ? { id, score } : undefined
    } catch {
      return undefined
    }
  }

  async #saveCursor(name: string, position: IdlePosition): Promise<void> {
    const value = JSON.stringify({ id: position.id, score: position.score })
    await this.#deps.store.ephemeral.put(CURSOR_KEY + name, value, CURSOR_TTL_MS)
  }

  async #keepAlive(id: string, result: KeepAliveRun): Promise<void> {
    const { config, store, issuer, scopes, logger, clock } = this.#deps
    const registration = await store.registrations.getMeta(id)
    if (registration === null || registration.status !== 'active' || registration.kind !== 'delegated') {
      result.skipped++
      return
    }
    const app = scopes.forApp(registration.app, registration.cloud)
    if (app === undefined) {
      result.skipped++
      logger.warn(
        { registrationId: id, app: registration.app, cloud: registration.cloud },
        'keep-alive skipped a registration whose app or cloud is no longer configured',
      )
      return
    }
    try {
      await issuer.issue({
        registration,
        app,
        scope: app.defaultScope,
        deadlineAt: clock() + config.tokens.responseDeadlineMs,
        force: true,
        priority: 'background',
      })
      result.refreshed++
    } catch (error) {
      result.failed++
      logger.warn(
        { registrationId: id, app: registration.app, code: (error as { code?: string }).code },
        'keep-alive refresh failed',
      )
    }
  }
}
