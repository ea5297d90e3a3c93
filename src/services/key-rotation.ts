// Master-key rotation: re-seals every stored secret under the key ring's newest key.
//
// Precondition (documented): every broker instance already runs with the new key first in
// MASTER_KEYS and the old keys still listed, so whatever any instance writes meanwhile is sealed
// under the new key and everything old still opens.
//
// The pass walks `registrations.scanIds` in batches; `resealBatch` is the store's concurrency-safe
// rewrite (a record changed meanwhile is read again, never overwritten with what was read before),
// so tokens keep being served throughout. Cached access tokens of each registration are dropped
// (they are sealed too, and the cache has no re-seal): the next request fetches a fresh one sealed
// under the new key. A batch costs a few round trips whatever its size (lock renewal and scan,
// one read of every record, one write of every record, the token drops, the progress), not a few
// per registration: the pass's pace is set by Redis round trips, and under load by event-loop
// turns. Progress (the scan cursor and counts) is kept in the ephemeral store after every batch,
// so a pass interrupted by a restart resumes where it stopped (a shutdown finishes its batch
// first; after a crash the batch in flight is done again, what it had re-sealed counting as
// unchanged); a lock makes sure only one instance runs a pass at a time. A store error fails the
// pass (`failed`, resumable), rather than counting every record of an outage as failed.
import type { FastifyBaseLogger } from 'fastify'
import type { KeyRing } from '../crypto/envelope.js'
import type { LockHandle, Store } from '../store/types.js'
import { type Actor, actorLabel, recordAudit } from './audit.js'
import { registrationTokenGroup, tenantTokenGroup } from './token-groups.js'

/**
 * Where the latest pass stands: `idle` (none ever ran), `running`, `interrupted` (its instance
 * stopped beating; start resumes it), `completed` (`failed` > 0 means some registrations could not
 * be re-sealed) or `failed` (the pass itself stopped on an error).
 */
export type RotationState = 'idle' | 'running' | 'interrupted' | 'completed' | 'failed'

/** How far a pass got; kept in the stored state and shown as is. */
interface RotationProgress {
  /** Registrations visited so far in this pass. */
  scanned: number
  /** Registrations whose secrets were rewritten under the new key. */
  resealed: number
  /** Registrations already under the new key. */
  unchanged: number
  /** Registrations whose secrets could not be re-sealed (e.g. sealed under a key no longer in the ring). */
  failed: number
  /** Up to 20 registration ids that failed, to look at (`webhook:<endpoint id>` for an endpoint). */
  failedIds: string[]
  /**
   * Webhook endpoints whose signing secret was re-sealed under the new key (at the end of the
   * pass, after the registrations); an endpoint secret that would not open counts in `failed`.
   */
  webhookSecretsResealed?: number
  /** Last error message of a failed pass. Never contains a secret. */
  error?: string
}

const noProgress = (): RotationProgress => ({
  scanned: 0,
  resealed: 0,
  unchanged: 0,
  failed: 0,
  failedIds: [],
})

/** The latest pass as the operator API and the CLI show it (`GET /admin/api/keys/rotation`). */
export interface RotationStatus extends RotationProgress {
  state: RotationState
  /** The key this pass re-seals under (the key ring's newest when it started). */
  keyId: string
  /** The newest key of this instance's key ring; a pass for another key is stale. */
  currentKeyId: string
  /** Older keys still in the ring; drop them from MASTER_KEYS once a pass completed without failures. */
  oldKeyIds: string[]
  /** ISO time the pass started (absent while idle). */
  startedAt?: string
  /** Actor label of whoever started it (`operator:<name>`). */
  startedBy?: string
  /** ISO time of the last saved progress. */
  updatedAt?: string
  /** ISO time the pass completed or failed. */
  completedAt?: string
}

interface StoredState extends RotationProgress {
  state: 'running' | 'completed' | 'failed'
  keyId: string
  cursor?: string
  startedAt: string
  startedBy: string
  updatedAt: string
  heartbeatAt: number
  completedAt?: string
}

const STATE_KEY = 'key-rotation:state'
const LOCK_NAME = 'key-rotation'
const STATE_TTL_MS = 30 * 86_400_000
const LOCK_TTL_MS = 60_000
const MAX_FAILED_IDS = 20

/** What a KeyRotation needs; the batch sizes have defaults. */
export interface KeyRotationOptions {
  store: Store
  keyRing: KeyRing
  log: FastifyBaseLogger
  clock: () => number
  /** Registrations per batch (one scan, one read, one write of them all); default 100. */
  batchSize?: number
}

/**
 * Re-seals every stored secret under the key ring's newest key, in the background, resumably, one
 * instance at a time (a store lock). One per app, built at start-up and stopped with it.
 */
export class KeyRotation {
  readonly #store: Store
  readonly #keyRing: KeyRing
  readonly #log: FastifyBaseLogger
  readonly #clock: () => number
  readonly #batchSize: number
  #running: Promise<void> | undefined
  #stopping = false

  constructor(options: KeyRotationOptions) {
    this.#store = options.store
    this.#keyRing = options.keyRing
    this.#log = options.log
    this.#clock = options.clock
    this.#batchSize = options.batchSize ?? 100
  }

  /** The latest pass as stored (shared by every instance), `idle` when none ever ran. */
  async status(): Promise<RotationStatus> {
    return this.#present(await this.#read())
  }

  /**
   * Starts a pass in the background (or resumes an interrupted one), unless one is running on any
   * instance, and returns the status. A completed or failed pass, or one for another key, starts over.
   */
  async start(actor: Actor): Promise<{ status: RotationStatus; started: boolean }> {
    if (this.#running !== undefined || this.#stopping) return { status: await this.status(), started: false }
    const lock = await this.#store.locks.acquire(LOCK_NAME, LOCK_TTL_MS)
    if (lock === null) return { status: await this.status(), started: false }
    try {
      const previous = await this.#read()
      const keyId = this.#keyRing.current.id
      const now = this.#clock()
      // A running (interrupted) or failed pass for the same key resumes at its cursor.
      const resume = previous !== null && previous.state !== 'completed' && previous.keyId === keyId
      const state: StoredState = resume
        ? { ...previous, state: 'running', heartbeatAt: now, updatedAt: new Date(now).toISOString() }
        : {
            state: 'running',
            keyId,
            startedAt: new Date(now).toISOString(),
            startedBy: actorLabel(actor),
            updatedAt: new Date(now).toISOString(),
            heartbeatAt: now,
            ...noProgress(),
          }
      delete state.error
      await this.#write(state)
      await recordAudit(this.#store, this.#log, {
        type: 'keys.rotated',
        actor: actorLabel(actor),
        detail: {
          phase: resume ? 'resumed' : 'started',
          keyId,
          oldKeyIds: this.#oldKeyIds().join(','),
          scanned: state.scanned,
        },
      })
      this.#running = this.#run(state, lock).finally(() => {
        this.#running = undefined
      })
      return { status: this.#present(state), started: true }
    } catch (error) {
      await this.#store.locks.release(lock).catch(() => undefined)
      throw error
    }
  }

  /** Stops after the current batch (app shutdown); the saved cursor lets the next start resume. */
  async stop(): Promise<void> {
    this.#stopping = true
    await this.#running
  }

  /** Resolves when the pass this instance runs (if any) ends; for tests and the CLI-less callers. */
  async settled(): Promise<void> {
    await this.#running
  }

  async #run(state: StoredState, lock: LockHandle): Promise<void> {
    try {
      for (;;) {
        if (this.#stopping) {
          state.heartbeatAt = 0 // shows as interrupted at once, on every instance
          await this.#write(state)
          this.#log.info(
            { scanned: state.scanned },
            'key rotation paused for shutdown; start it again to resume',
          )
          return
        }
        // the renewal and the next ids in one round trip (the scan only reads)
        const [renewed, page] = await Promise.all([
          this.#store.locks.renew(lock, LOCK_TTL_MS),
          this.#store.registrations.scanIds(state.cursor, this.#batchSize),
        ])
        if (!renewed) {
          this.#log.warn('key rotation lost its lock; another instance may continue the pass')
          return
        }
        await this.#processBatch(state, page.ids)
        state.scanned += page.ids.length
        const now = this.#clock()
        state.heartbeatAt = now
        state.updatedAt = new Date(now).toISOString()
        if (page.nextCursor === undefined) {
          await this.#resealWebhookSecrets(state)
          delete state.cursor
          state.state = 'completed'
          state.completedAt = state.updatedAt
          await this.#write(state)
          await this.#audit(state, 'completed')
          this.#log.info(
            { keyId: state.keyId, scanned: state.scanned, resealed: state.resealed, failed: state.failed },
            'key rotation completed',
          )
          return
        }
        state.cursor = page.nextCursor
        await this.#write(state)
      }
    } catch (err) {
      state.state = 'failed'
      state.error = err instanceof Error ? err.message : 'unknown error'
      state.updatedAt = new Date(this.#clock()).toISOString()
      this.#log.error({ err, keyId: state.keyId, scanned: state.scanned }, 'key rotation failed')
      await this.#write(state).catch(() => undefined)
      await this.#audit(state, 'failed')
    } finally {
      await this.#store.locks.release(lock).catch(() => undefined)
    }
  }

  /**
   * One batch in a few round trips: the store re-seals every record (one read of all, one
   * compare-and-set write per record, sent together), then the cached tokens of the batch are
   * dropped at once (each group once, though many admin registrations share a tenant's).
   */
  async #processBatch(state: StoredState, ids: readonly string[]): Promise<void> {
    const groups = new Set<string>()
    for (const result of await this.#store.registrations.resealBatch(ids)) {
      if (result.outcome === 'failed') {
        state.failed++
        if (state.failedIds.length < MAX_FAILED_IDS) state.failedIds.push(result.id)
        this.#log.error(
          { err: result.error, registrationId: result.id },
          'key rotation could not re-seal a registration',
        )
        continue
      }
      // a record deleted since the scan has nothing left to re-seal
      if (result.outcome === 'resealed') state.resealed++
      else state.unchanged++
      groups.add(registrationTokenGroup(result.id))
      if (result.outcome !== 'missing' && result.registration.kind === 'admin') {
        groups.add(tenantTokenGroup(result.registration))
      }
    }
    await Promise.all([...groups].map((group) => this.#store.tokens.deleteGroup(group)))
  }

  /** The endpoints' signing secrets, so deliveries still sign once the old key is retired. */
  async #resealWebhookSecrets(state: StoredState): Promise<void> {
    const { resealed, failed } = await this.#store.webhooks.resealEndpointSecrets()
    state.webhookSecretsResealed = (state.webhookSecretsResealed ?? 0) + resealed.length
    for (const id of failed) {
      state.failed++
      if (state.failedIds.length < MAX_FAILED_IDS) state.failedIds.push(`webhook:${id}`)
      this.#log.error({ endpointId: id }, 'key rotation could not re-seal a webhook endpoint secret')
    }
  }

  async #audit(state: StoredState, phase: 'completed' | 'failed'): Promise<void> {
    await recordAudit(this.#store, this.#log, {
      type: 'keys.rotated',
      actor: state.startedBy,
      detail: {
        phase,
        keyId: state.keyId,
        scanned: state.scanned,
        resealed: state.resealed,
        unchanged: state.unchanged,
        failed: state.failed,
        webhookSecretsResealed: state.webhookSecretsResealed ?? 0,
      },
    })
  }

  #oldKeyIds(): string[] {
    return this.#keyRing.ids.filter((id) => id !== this.#keyRing.current.id)
  }

  async #read(): Promise<StoredState | null> {
    const raw = await this.#store.ephemeral.get(STATE_KEY)
    if (raw === null) return null
    try {
      return JSON.parse(raw) as StoredState
    } catch {
      return null
    }
  }

  async #write(state: StoredState): Promise<void> {
    await this.#store.ephemeral.put(STATE_KEY, JSON.stringify(state), STATE_TTL_MS)
  }

  #present(state: StoredState | null): RotationStatus {
    const base = { currentKeyId: this.#keyRing.current.id, oldKeyIds: this.#oldKeyIds() }
    if (state === null) {
      return {
        ...base,
        keyId: base.currentKeyId,
        state: 'idle',
        ...noProgress(),
      }
    }
    let shown: RotationState = state.state
    // A pass whose instance stopped beating (crash, shutdown) is resumable, not running.
    if (state.state === 'running' && this.#running === undefined) {
      if (this.#clock() - state.heartbeatAt > LOCK_TTL_MS) shown = 'interrupted'
    }
    return {
      ...base,
      keyId: state.keyId,
      state: shown,
      startedAt: state.startedAt,
      startedBy: state.startedBy,
      updatedAt: state.updatedAt,
      ...(state.completedAt === undefined ? {} : { completedAt: state.completedAt }),
      scanned: state.scanned,
      resealed: state.resealed,
      unchanged: state.unchanged,
      failed: state.failed,
      failedIds: state.failedIds,
      webhookSecretsResealed: state.webhookSecretsResealed ?? 0,
      ...(state.error === undefined ? {} : { error: state.error }),
    }
  }
}
