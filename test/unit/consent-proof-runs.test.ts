// ConsentProofRuns without HTTP: a proof handed over by a stopping instance, claimed by another
// instance that then stops too before taking it over, still ends at its deadline; a proof still in
// the callback's inline wait when its instance stops is interrupted and handed over too.
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { sha256Hex } from '../../src/crypto/sha256.js'
import type { ProofStatus } from '../../src/services/consent-flow-types.js'
import { ConsentProofRuns, PROOF_INTERRUPTED } from '../../src/services/consent-proof-runs.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { testConfig } from '../support/config.js'

const log = pino({ level: 'silent' })

describe('a handed-over admin-consent proof', () => {
  it('ends as consent_not_effective at its deadline when the instance that claimed it stopped first', async () => {
    const config = testConfig({ authorityUrl: 'http://127.0.0.1:9' })
    let now = Date.parse('2026-12-01T10:00:00Z')
    const clock = () => now
    const store = createMemoryStore({ keyRing: config.keyRing, clock })
    const flow = {
      v: 1,
      app: 'ms-graph-mail',
      cloud: 'global',
      kind: 'admin',
      phase: 'admin-consent',
      state: 's',
      tid: 't',
    } as never
    const resumedBy: string[] = []
    const runs = (name: string) =>
      new ConsentProofRuns({
        config,
        store,
        clock,
        inlineWaitMs: 10,
        resume: () => async () => {
          resumedBy.push(name)
          return PROOF_INTERRUPTED as never
        },
      })
    // Instance A runs a proof that only ends when A stops: it hands the proof over.
    const a = runs('a')
    const waiting = (signal: AbortSignal) =>
      new Promise<typeof PROOF_INTERRUPTED>((resolve) =>
        signal.addEventListener('abort', () => resolve(PROOF_INTERRUPTED)),
      )
    expect(await a.run('proof-1', waiting as never, flow, log)).toEqual({ kind: 'pending' })
    await a.stop()
    const raw = await store.ephemeral.get(`consent:proof:${sha256Hex('proof-1')}`, { secret: true })
    const handover = (JSON.parse(raw!) as { handover: { id: string } }).handover
    // Instance B claims it and stops (killed) before rewriting the record as its own run.
    expect(
      await store.ephemeral.claim(
        `consent:proof-resumed:${sha256Hex(handover.id)}`,
        config.consent.flowTtlMs,
      ),
    ).toBe(true)
    // Instance C answers the page's polls: pending while the deadline holds, then the failure.
    const c = runs('c')
    expect(await c.status('proof-1', log)).toEqual({ kind: 'pending' })
    now += config.consent.proofBudgetMs + 30_000 + 60_000
    const ended: ProofStatus = await c.status('proof-1', log)
    expect(ended.kind).toBe('failed')
    expect(ended.kind === 'failed' && ended.failure.reason).toBe('consent_not_effective')
    expect(resumedBy).toEqual([])
  })

  it('interrupts a proof still in the inline wait when the instance stops, and waits for its hand-over', async () => {
    const config = testConfig({ authorityUrl: 'http://127.0.0.1:9' })
    const store = createMemoryStore({ keyRing: config.keyRing })
    const flow = { v: 1, app: 'ms-graph-mail', cloud: 'global', kind: 'admin', phase: 'admin-consent' }
    // A callback waits up to a minute inline: stop() comes while it still does.
    const runs = new ConsentProofRuns({
      config,
      store,
      clock: Date.now,
      inlineWaitMs: 60_000,
      resume: () => async () => PROOF_INTERRUPTED as never,
    })
    const interrupted: boolean[] = []
    let started!: () => void
    const begun = new Promise<void>((resolve) => (started = resolve))
    const work = (signal: AbortSignal) =>
      new Promise<typeof PROOF_INTERRUPTED>((resolve) => {
        started()
        signal.addEventListener('abort', () => {
          interrupted.push(true)
          resolve(PROOF_INTERRUPTED)
        })
      })
    const callback = runs.run('proof-2', work as never, flow as never, log)
    await begun
    const stoppedAt = Date.now()
    await runs.stop()
    // Interrupted at once, not after the inline wait, and handed over before stop() returned.
    expect(Date.now() - stoppedAt).toBeLessThan(5_000)
    expect(interrupted).toEqual([true])
    const raw = await store.ephemeral.get(`consent:proof:${sha256Hex('proof-2')}`, { secret: true })
    expect(JSON.parse(raw!)).toMatchObject({ state: 'running', handover: { flow } })
    expect(await callback).toEqual({ kind: 'pending' })
  })
})
