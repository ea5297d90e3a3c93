// The store's layout migrations service (services/index-rebuild.ts): an instance that finds the
// migration lock held tries again later with a bounded backoff (it used to give up until its next
// restart), and the operator's finish runs after the start-up job, under the same lock, audited;
// the repair of interrupted index moves follows them, and runs every 30 s.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { KeyRing } from '../../src/crypto/envelope.js'
import { IndexRebuild } from '../../src/services/index-rebuild.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { Store } from '../../src/store/types.js'

const log = pino({ level: 'silent' }) as unknown as FastifyBaseLogger
const LOCK = 'registration-indexes-rebuild'

describe('IndexRebuild', () => {
  let store: Store
  beforeEach(() => {
    vi.useFakeTimers()
    store = createMemoryStore({ keyRing: new KeyRing([{ id: 'k1', key: randomBytes(32) }]) })
  })
  afterEach(async () => {
    await store.close()
    vi.useRealTimers()
  })

  it('retries with a growing, bounded delay while another instance holds the lock', async () => {
    const ensure = vi.spyOn(store.registrations, 'ensureIndexes')
    const held = await store.locks.acquire(LOCK, 3_600_000)
    expect(held).not.toBeNull()
    const service = new IndexRebuild({ store, logger: log })
    service.start()
    await vi.advanceTimersByTimeAsync(0)
    expect(ensure).not.toHaveBeenCalled()
    // 5 s, then 10 s, 20 s … up to 2 minutes between attempts; none runs the job while held
    await vi.advanceTimersByTimeAsync(5_000 + 10_000 + 20_000 + 40_000 + 80_000 + 120_000 + 120_000)
    expect(ensure).not.toHaveBeenCalled()
    await store.locks.release(held!)
    await vi.advanceTimersByTimeAsync(120_000)
    expect(ensure).toHaveBeenCalledTimes(1)
    // done: no further attempt
    await vi.advanceTimersByTimeAsync(600_000)
    expect(ensure).toHaveBeenCalledTimes(1)
    await service.stop()
  })

  it('finishes the upgrade on request after the start-up job, audited, and reports the state', async () => {
    const finish = vi.spyOn(store.registrations, 'finishUpgrade')
    const service = new IndexRebuild({ store, logger: log })
    service.start()
    const { status, started } = await service.finishUpgrade({ kind: 'operator', name: 'alice' })
    expect(started).toBe(true)
    expect(status).toEqual({ state: 'finishing' })
    expect(await service.finishUpgrade({ kind: 'operator', name: 'bob' })).toEqual({
      status: { state: 'finishing' },
      started: false,
    })
    await vi.advanceTimersByTimeAsync(0)
    expect(finish).toHaveBeenCalledTimes(1)
    expect(await service.upgradeStatus()).toEqual({ state: 'contracted' })
    const audit = await store.audit.read({})
    expect(audit.items.map((e) => [e.type, e.actor, e.detail?.phase])).toEqual([
      ['store.upgrade_finished', 'operator:alice', 'started'],
      ['store.upgrade_finished', 'operator:alice', 'completed'],
    ])
    await service.stop()
  })

  it('reports a failed finish, and runs it again on the next request', async () => {
    const finish = vi.spyOn(store.registrations, 'finishUpgrade').mockRejectedValueOnce(new Error('boom'))
    vi.spyOn(store.registrations, 'upgradeState').mockResolvedValue('expanded')
    const service = new IndexRebuild({ store, logger: log })
    service.start()
    await service.finishUpgrade({ kind: 'operator', name: 'alice' })
    await vi.advanceTimersByTimeAsync(0)
    expect(await service.upgradeStatus()).toEqual({ state: 'failed', error: 'boom' })
    expect((await service.finishUpgrade({ kind: 'operator', name: 'alice' })).started).toBe(true)
    await vi.advanceTimersByTimeAsync(0)
    expect(finish).toHaveBeenCalledTimes(2)
    expect(await service.upgradeStatus()).toEqual({ state: 'expanded' })
    await service.stop()
  })

  it('repairs interrupted index moves after the start-up job and every 30 s, retrying a failure', async () => {
    const repair = vi
      .spyOn(store.registrations, 'repairIndexes')
      .mockResolvedValueOnce(0)
      .mockRejectedValueOnce(new Error('CLUSTERDOWN'))
      .mockResolvedValue(0)
    const service = new IndexRebuild({ store, logger: log })
    service.start()
    await vi.advanceTimersByTimeAsync(0)
    expect(repair).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(30_000)
    expect(repair).toHaveBeenCalledTimes(2) // failed: tried again 5 s later
    await vi.advanceTimersByTimeAsync(5_000)
    expect(repair).toHaveBeenCalledTimes(3)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(repair).toHaveBeenCalledTimes(5)
    await service.stop()
    await vi.advanceTimersByTimeAsync(60_000)
    expect(repair).toHaveBeenCalledTimes(5)
  })
})
