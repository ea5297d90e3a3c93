// Admin-consent proofs that outlive the callback request. With real Microsoft a new consent can take
// up to a minute to propagate, and the proof (consent-proof.ts) retries until it does: the browser
// must never hang on that. The callback starts the proof on its instance and waits a moment; a proof
// that is still running by then is left to run in the background and the browser is sent to a
// waiting page (`/callback/status`) that refreshes itself. The proof's state is kept in the store
// (sealed: a finished proof names its one-time result) under the hash of a random id that only the
// browser's flow cookie carries, so any instance can answer the waiting page; the outcome — the
// result page or the usual failure page — is handed out once.
//
// An instance that stops (`stop`, graceful shutdown) interrupts its proofs rather than abandon them:
// the proof stops between or during its attempts (never once the registration is being written:
// that finishes and its outcome is stored), and the run is handed over — its record keeps what the
// proof needs (the flow record, sealed) — so the waiting page's next poll, on whichever instance,
// resumes it there. Microsoft keeps the consent; resuming costs the browser one more poll.
import { setTimeout as sleepFor } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { type Config, findApp } from '../config.js'
import { sha256Hex } from '../crypto/sha256.js'
import { randomToken } from '../crypto/tokens.js'
import { internalError, statusOf } from '../errors.js'
import type { Store } from '../store/types.js'
import type { FlowRecord } from './consent-flow-records.js'
import type { CallbackOutcome, ConsentFailure, ProofStatus } from './consent-flow-types.js'

/** How long the callback waits for a proof before answering with the waiting page. */
export const PROOF_INLINE_WAIT_MS = 2000
/** After its budget, how long a proof may still be reported running (its last attempt, the writes). */
const PROOF_GRACE_MS = 30_000
const PROOF_KEY = 'consent:proof:'
/** Claimed by the instance that resumes a handed-over run (one per hand-over). */
const PROOF_RESUMED_KEY = 'consent:proof-resumed:'

/** What a proof's work answers when `stop` interrupted it: hand the run over. */
export const PROOF_INTERRUPTED = Symbol('proof interrupted')

/** A proof and what follows it; `signal` aborts when the instance stops. */
export type ProofWork = (signal: AbortSignal) => Promise<CallbackOutcome | typeof PROOF_INTERRUPTED>

/**
 * A proof as stored: running until its deadline, or done with the outcome to hand out once. A run
 * handed over by a stopping instance is still `running` (so an instance of the release before,
 * during a rolling upgrade, reads it as before) with what resuming it needs.
 */
type ProofRecord =
  | { v: 1; state: 'running'; deadline: number; handover?: { id: string; flow: FlowRecord } }
  | { v: 1; state: 'done'; outcome: StoredOutcome }

type StoredOutcome =
  | { kind: 'completed'; resultHandle: string }
  | { kind: 'failed'; failure: Omit<ConsentFailure, 'app'> & { app?: string } }
  /** The work threw (a store failure, a bug): the waiting page ends on the error page. */
  | { kind: 'error' }

/** What a proof run needs. */
export interface ProofRunsDependencies {
  config: Config
  store: Pick<Store, 'ephemeral'>
  clock: () => number
  /** How long the callback waits before answering with the waiting page; default 2 s. */
  inlineWaitMs?: number
  /** The work of a handed-over run, rebuilt from its flow record (the admin-consent phase's). */
  resume: (flow: FlowRecord, log: FastifyBaseLogger) => ProofWork
}

/** Admin-consent proofs in the background, their state shared through the store. */
export class ConsentProofRuns {
  readonly #deps: ProofRunsDependencies
  /** The runs in the background on this instance, each with what interrupts it. */
  readonly #running = new Map<Promise<void>, AbortController>()
  #stopped = false

  constructor(deps: ProofRunsDependencies) {
    this.#deps = deps
  }

  /**
   * Runs `work` (the proof and what follows it) under `proofId`. When it ends within the inline
   * wait, its outcome is returned as is; otherwise `{ kind: 'pending' }` and it goes on in the
   * background, its outcome stored for `status`. An error `work` throws in time is thrown here (the
   * error page, as before); one thrown later is logged and ends the waiting page on the error page.
   * `flow` (the admin-consent phase's flow record) is what another instance resumes the run from,
   * should this one stop first.
   */
  async run(
    proofId: string,
    work: ProofWork,
    flow: FlowRecord,
    log: FastifyBaseLogger,
  ): Promise<CallbackOutcome | { kind: 'pending' }> {
    const key = PROOF_KEY + sha256Hex(proofId)
    const { outcome, background, release } = await this.#start(key, work, flow, log)
    try {
      const waited = new AbortController()
      const inline = await Promise.race([
        outcome,
        sleepFor(this.#deps.inlineWaitMs ?? PROOF_INLINE_WAIT_MS, 'waiting' as const, {
          signal: waited.signal,
        }).catch(() => 'waiting' as const),
      ])
      waited.abort()
      if (inline !== 'waiting' && !('done' in inline && inline.done === PROOF_INTERRUPTED)) {
        await this.#deps.store.ephemeral.delete(key)
        if ('error' in inline) throw inline.error
        return inline.done as CallbackOutcome
      }
      background()
      log.info('admin-consent proof continues in the background; the browser waits on /callback/status')
      return { kind: 'pending' }
    } finally {
      release()
    }
  }

  /**
   * Starts `work` under `key` (a new run or a resumed one): records it running, then runs it with
   * what interrupts it, interrupted at once when this instance is stopping. `background` leaves it
   * to go on there, its outcome stored for `status`. The run is tracked from its start, so `stop`
   * interrupts and waits for one still in the callback's inline wait too; `release` ends that
   * tracking (idempotent), once the run returned inline or `background` tracks its storing instead.
   */
  async #start(
    key: string,
    work: ProofWork,
    flow: FlowRecord,
    log: FastifyBaseLogger,
  ): Promise<{ outcome: Promise<Settled>; background: () => void; release: () => void }> {
    await this.#putRunning(key)
    const interrupt = new AbortController()
    if (this.#stopped) interrupt.abort()
    const outcome = settled(work(interrupt.signal))
    let release: () => void = () => undefined
    this.#track(new Promise<void>((resolve) => (release = resolve)), interrupt)
    return {
      outcome,
      background: () => {
        this.#background(key, outcome, interrupt, flow, log)
        release()
      },
      release,
    }
  }

  /** Keeps `running` (and what interrupts it) for `stop` until it settles. */
  #track(running: Promise<void>, interrupt: AbortController): void {
    this.#running.set(running, interrupt)
    void running.finally(() => this.#running.delete(running))
  }

  async #putRunning(key: string, handover?: { id: string; flow: FlowRecord }): Promise<void> {
    const { config, store, clock } = this.#deps
    const deadline = clock() + config.consent.proofBudgetMs + PROOF_GRACE_MS
    const record: ProofRecord = {
      v: 1,
      state: 'running',
      deadline,
      ...(handover === undefined ? {} : { handover }),
    }
    await store.ephemeral.put(key, JSON.stringify(record), config.consent.flowTtlMs, { secret: true })
  }

  /** Stores the outcome of a run going on in the background once it ends (or hands it over). */
  #background(
    key: string,
    outcome: Promise<Settled>,
    interrupt: AbortController,
    flow: FlowRecord,
    log: FastifyBaseLogger,
  ): void {
    const { config, store } = this.#deps
    const stored = outcome.then(async (ended) => {
      try {
        if ('done' in ended && ended.done === PROOF_INTERRUPTED) {
          await this.#putRunning(key, { id: randomToken(), flow })
          log.info('admin-consent proof interrupted by shutdown; handed over to the next status poll')
          return
        }
        if ('error' in ended) log.error({ err: ended.error }, 'the admin-consent proof failed unexpectedly')
        const result: StoredOutcome =
          'error' in ended ? { kind: 'error' } : toStored(ended.done as CallbackOutcome)
        await store.ephemeral.put(
          key,
          JSON.stringify({ v: 1, state: 'done', outcome: result }),
          config.consent.flowTtlMs,
          { secret: true },
        )
      } catch (err) {
        log.error({ err }, 'could not record the outcome of an admin-consent proof')
      }
    })
    this.#track(stored, interrupt)
  }

  /**
   * Where the proof under `proofId` stands. A finished one is taken (its outcome is handed out
   * once); one still running past its deadline (its instance stopped) ends as `consent_not_effective`;
   * one whose work threw throws `internal_error`. One handed over by a stopping instance is resumed
   * here, in the background (by one instance: the first to claim it), unless this one is stopping too.
   */
  async status(proofId: string, log: FastifyBaseLogger): Promise<ProofStatus> {
    const { config, store, clock } = this.#deps
    const key = PROOF_KEY + sha256Hex(proofId)
    const raw = await store.ephemeral.get(key, { secret: true })
    const record = raw === null ? undefined : parseRecord(raw)
    if (record === undefined) return { kind: 'unknown' }
    if (record.state === 'running') {
      const handover = record.handover
      if (handover !== undefined && !this.#stopped) {
        const resumed = PROOF_RESUMED_KEY + sha256Hex(handover.id)
        if (await store.ephemeral.claim(resumed, config.consent.flowTtlMs)) {
          const work = this.#deps.resume(handover.flow, log)
          const started = await this.#start(key, work, handover.flow, log).catch(async (err: unknown) => {
            // Not resumed after all: the next poll (here or elsewhere) may claim it again.
            await store.ephemeral.delete(resumed).catch(() => undefined)
            throw err
          })
          started.background()
          log.info('admin-consent proof handed over by a stopping instance resumed here')
          return { kind: 'pending' }
        }
        // Claimed elsewhere: that instance rewrites the record as its own run; should it stop
        // before doing so, the deadline below still ends the wait.
      }
      if (clock() <= record.deadline) return { kind: 'pending' }
      if ((await store.ephemeral.take(key, { secret: true })) === null) return { kind: 'unknown' }
      return { kind: 'failed', failure: failure('consent_not_effective', undefined) }
    }
    // Taken, not read: of two tabs polling the same proof, one gets the result.
    if ((await store.ephemeral.take(key, { secret: true })) === null) return { kind: 'unknown' }
    const outcome = record.outcome
    if (outcome.kind === 'error') throw internalError()
    if (outcome.kind === 'completed') return outcome
    const { app, ...rest } = outcome.failure
    return { kind: 'failed', failure: { ...rest, app: app === undefined ? undefined : findApp(config, app) } }
  }

  /**
   * Waits for the proofs running on this instance, and for those they hand on to (a run leaving its
   * inline wait is tracked by its storing before its start stops being), until none is left.
   */
  async settle(): Promise<void> {
    while (this.#running.size > 0) await Promise.all([...this.#running.keys()])
  }

  /**
   * Graceful shutdown: interrupts the proofs running here (a registration already being written is
   * finished) and waits until each has stored its outcome or its hand-over; resumes none from now on.
   */
  async stop(): Promise<void> {
    this.#stopped = true
    for (const interrupt of this.#running.values()) interrupt.abort()
    await this.settle()
  }
}

type Settled = { done: CallbackOutcome | typeof PROOF_INTERRUPTED } | { error: unknown }

function settled(work: Promise<CallbackOutcome | typeof PROOF_INTERRUPTED>): Promise<Settled> {
  return work.then(
    (done) => ({ done }),
    (error: unknown) => ({ error }),
  )
}

function failure(reason: 'consent_not_effective', app: undefined): ConsentFailure {
  return { reason, status: statusOf(reason), app, purpose: 'consent' }
}

function toStored(outcome: CallbackOutcome): StoredOutcome {
  if (outcome.kind === 'completed') return { kind: 'completed', resultHandle: outcome.resultHandle }
  if (outcome.kind === 'failed') {
    const { app, ...rest } = outcome.failure
    return { kind: 'failed', failure: { ...rest, ...(app === undefined ? {} : { app: app.slug }) } }
  }
  // The admin-consent phase ends in a result or a failure, never in a redirect or a sign-in.
  return { kind: 'error' }
}

function parseRecord(raw: string): ProofRecord | undefined {
  try {
    const value = JSON.parse(raw) as ProofRecord
    return value?.v === 1 && (value.state === 'running' || value.state === 'done') ? value : undefined
  } catch {
    return undefined
  }
}
