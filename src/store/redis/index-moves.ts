// A status change where the record and its index entries can't be written in one script (a
// Cluster, or a sharded Redis behind a proxy refusing CROSSSLOT): the record (slot of `reg:{id}`)
// first, then the move of its entries and tenant summary counts (slot `{idx}`). Should anything
// fail between the two (the `{idx}` node failing over, the process dying), a retry finds the record
// already changed and writes nothing, so the move has to be made by someone else:
//   1. before the record's write, a mark `<uuid>:<id>` goes into the journal `{idx}:moves` (score:
//      when, ms); failing that, the change is refused with nothing written;
//   2. the record's write (UPDATE_RECORD, registrations.ts);
//   3. the move, re-checked against the record until they agree (concurrent writers), then the mark
//      is removed — also when the write changed nothing (a version conflict).
// Marks left behind are replayed by `repair` (the index maintenance of services/index-rebuild.ts on
// every instance, and a re-consent before it reads the needs_consent index): each registration's
// entries are moved to the status its record has now, and a mark older than MARK_GRACE_MS is then
// removed — a younger one may be a writer's between its steps 1 and 2, which would otherwise lose
// its journal entry should its own move fail. `sync` is the same move for one registration, run
// by whoever finds a record already where they wanted it (a revocation retried).
import { randomUUID } from 'node:crypto'
import type { RedisClient } from '../redis-connection.js'
import type { Registration, RegistrationStatus } from '../types.js'
import { isoToMs } from '../validation.js'
import { MOVE_STATUS_COUNTED } from './index-lua.js'
import { indexBlock, type RedisKeys, SUMMARY_VERSION } from './keys.js'
import { indexAfter } from './registration-index.js'
import { runScript } from './scripts.js'
import { isStatus, type SummaryFacts } from './secondary-indexes.js'

/** A status entry re-checked against its record this many times at most (concurrent updates). */
const VERIFY_ROUNDS = 5
/**
 * A mark younger than this may belong to a writer still between its journal entry and its record
 * write (commands time out after 5 s, retried twice through reconnects and failovers): minutes
 * longer, and clocks of instances apart by as much still agree.
 */
const MARK_GRACE_MS = 5 * 60_000
/** Marks read per round trip of a repair. */
const REPAIR_BATCH = 200
/** Length of a mark's UUID and its `:` separator, before the registration id. */
const MARK_ID_AT = 37

/** The journal of pending index moves of one Redis store, and the moves themselves. */
export class RedisIndexMoves {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly clock: () => number,
    /** A record's public fields, or null when it is missing. */
    private readonly getMeta: (id: string) => Promise<Registration | null>,
  ) {}

  /** Step 1: journals a move of `id`'s entries about to be needed; returns the mark. */
  async begin(id: string): Promise<string> {
    const mark = `${randomUUID()}:${id}`
    await this.redis.zadd(this.keys.indexMoves, this.clock(), mark)
    return mark
  }

  /** Step 3: moves `id`'s entries to `status` (verified against the record), then drops the mark. */
  async complete(mark: string, id: string, status: RegistrationStatus, facts: SummaryFacts): Promise<void> {
    await this.move(id, status, facts)
    await this.forget(mark)
  }

  /** Drops a mark whose move is done (or was never needed: the record's write changed nothing). */
  async forget(mark: string): Promise<void> {
    await this.redis.zrem(this.keys.indexMoves, mark)
  }

  /**
   * Puts `id`'s index entries under the status its record has now, until a read of the record
   * agrees with the last move (a concurrent update may move it in between; the last one to verify
   * leaves the entries right), its tenant summary's counts with them.
   */
  async move(id: string, status: RegistrationStatus, facts: SummaryFacts): Promise<void> {
    let moved = status
    const keys = [
      this.keys.tenantSummary(facts.tenantId),
      ...indexBlock(this.keys, facts.app, facts.tenantId),
    ]
    for (let round = 0; round < VERIFY_ROUNDS; round++) {
      await runScript(this.redis, MOVE_STATUS_COUNTED, keys, [
        id,
        moved,
        SUMMARY_VERSION,
        facts.app,
        facts.cloud,
        facts.consented,
      ])
      const now = await this.redis.hget(this.keys.reg(id), 'status')
      if (!isStatus(now) || now === moved) return
      moved = now
    }
  }

  /**
   * Moves `id`'s entries to where its record says (its consent counted as the tenant's last, as
   * when it was written: raising it again changes nothing). False when the record is missing.
   */
  async sync(id: string): Promise<boolean> {
    const meta = await this.getMeta(id)
    if (meta === null) return false
    await this.move(id, meta.status, {
      tenantId: meta.tenantId,
      app: meta.app,
      cloud: meta.cloud,
      consented: String(isoToMs(meta.consentedAt, 'consentedAt')),
    })
    return true
  }

  /**
   * Replays the journal: every registration with a mark gets its entries moved to its record's
   * status, and the marks older than MARK_GRACE_MS are dropped (their writer is done or gone).
   * Returns how many were dropped. Costs one read when the journal is empty (always, where the
   * record and its entries are written together).
   */
  async repair(): Promise<number> {
    const settled = new Set<string>()
    const oldest = this.clock() - MARK_GRACE_MS
    let dropped = 0
    for (let after: { id: string; score: number } | undefined; ; ) {
      const marks = await indexAfter(this.redis, this.keys.indexMoves, after, REPAIR_BATCH)
      if (marks.length === 0) return dropped
      after = marks[marks.length - 1]
      for (const { id: mark, score } of marks) {
        const id = mark.slice(MARK_ID_AT)
        if (!settled.has(id)) {
          await this.sync(id)
          settled.add(id)
        }
        if (score <= oldest) {
          await this.forget(mark)
          dropped++
        }
      }
    }
  }
}
