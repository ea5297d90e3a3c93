// Admin-consent proofs that outlive the callback request. With real Microsoft a new consent can take
// up to a minute to propagate, and the proof (consent-proof.ts) retries until it does: the browser
// must never hang on that. The callback starts the proof on its instance and waits a moment; a proof
// that is still running by then is left to run in the background and the browser is sent to a
// waiting page (`/callback/status`) that refreshes itself. The proof's state is kept in the store
// (sealed: a finished proof names its one-time result) under the hash of a random id that only the
// browser's flow cookie carries, so any instance can answer the waiting page; the outcome — the
// result page or the usual failure page — is handed out once.
import { setTimeout as sleepFor } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { type Config, findApp } from '../config.js'
import { sha256Hex } from '../crypto/sha256.js'
import { internalError, statusOf } from '../errors.js'
import type { Store } from '../store/types.js'
import type { CallbackOutcome, ConsentFailure, ProofStatus } from './consent-flow-types.js'

/** How long the callback waits for a proof before answering with the waiting page. */
export const PROOF_INLINE_WAIT_MS = 2000
/** After its budget, how long a proof may still be reported running (its last attempt, the writes). */
const PROOF_GRACE_MS = 30_000
const PROOF_KEY = 'consent:proof:'

/** A proof as stored: running until its deadline, or done with the outcome to hand out once. */
type ProofRecord =
  | { v: 1; state: 'running'; deadline: number }
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
}

/** Admin-consent proofs in the background, their state shared through the store. */
export class ConsentProofRuns {
  readonly #deps: ProofRunsDependencies
  readonly #running = new Set<Promise<void>>()

  constructor(deps: ProofRunsDependencies) {
    this.#deps = deps
  }

  /**
   * Runs `work` (the proof and what follows it) under `proofId`. When it ends within the inline
   * wait, its outcome is returned as is; otherwise `{ kind: 'pending' }` and it goes on in the
   * background, its outcome stored for `status`. An error `work` throws in time is thrown here (the
   * error page, as before); one thrown later is logged and ends the waiting page on the error page.
   */
  async run(
    proofId: string,
    work: () => Promise<CallbackOutcome>,
    log: FastifyBaseLogger,
  ): Promise<CallbackOutcome | { kind: 'pending' }> {
    const { config, store, clock } = this.#deps
    const key = PROOF_KEY + sha256Hex(proofId)
    const ttlMs = config.consent.flowTtlMs
    const deadline = clock() + config.consent.proofBudgetMs + PROOF_GRACE_MS
    await store.ephemeral.put(key, JSON.stringify({ v: 1, state: 'running', deadline }), ttlMs, {
      secret: true,
    })
    const outcome = work().then(
      (done) => ({ done }),
      (error: unknown) => ({ error }),
    )
    const waited = new AbortController()
    const inline = await Promise.race([
      outcome,
      sleepFor(this.#deps.inlineWaitMs ?? PROOF_INLINE_WAIT_MS, 'waiting' as const, {
        signal: waited.signal,
      }).catch(() => 'waiting' as const),
    ])
    if (inline !== 'waiting') {
      waited.abort()
      await store.ephemeral.delete(key)
      if ('error' in inline) throw inline.error
      return inline.done
    }
    const stored = outcome.then(async (ended) => {
      if ('error' in ended) log.error({ err: ended.error }, 'the admin-consent proof failed unexpectedly')
      const stored: StoredOutcome = 'error' in ended ? { kind: 'error' } : toStored(ended.done)
      try {
        await store.ephemeral.put(key, JSON.stringify({ v: 1, state: 'done', outcome: stored }), ttlMs, {
          secret: true,
        })
      } catch (err) {
        log.error({ err }, 'could not record the outcome of an admin-consent proof')
      }
    })
    this.#running.add(stored)
    void stored.finally(() => this.#running.delete(stored))
    log.info('admin-consent proof continues in the background; the browser waits on /callback/status')
    return { kind: 'pending' }
  }

  /**
   * Where the proof under `proofId` stands. A finished one is taken (its outcome is handed out
   * once); one still running past its deadline (its instance stopped) ends as `consent_not_effective`;
   * one whose work threw throws `internal_error`.
   */
  async status(proofId: string): Promise<ProofStatus> {
    const { config, store, clock } = this.#deps
    const key = PROOF_KEY + sha256Hex(proofId)
    const raw = await store.ephemeral.get(key, { secret: true })
    const record = raw === null ? undefined : parseRecord(raw)
    if (record === undefined) return { kind: 'unknown' }
    if (record.state === 'running') {
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

  /** Waits for the proofs still running on this instance (graceful shutdown, tests). */
  async settle(): Promise<void> {
    await Promise.all([...this.#running])
  }
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
