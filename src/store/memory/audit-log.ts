// The audit log in memory: stream-like ids (`<ms>-<seq>`) and the same fields, cap and age trim
// as the Redis stream.
import {
  auditPage,
  auditPosition,
  auditReadArguments,
  compareAuditPositions,
  decodeAuditFields,
  encodeAuditFields,
} from '../audit-codec.js'
import type { AuditEvent, AuditLog, AuditPage, AuditQuery } from '../types.js'

/** `AuditLog` in memory. */
export class MemoryAuditLog implements AuditLog {
  readonly #entries: Array<{ id: string; ms: number; fields: string[] }> = []
  #lastMs = 0
  #seq = 0

  constructor(
    private readonly clock: () => number,
    private readonly maxLen: number,
    private readonly retentionMs: number | undefined,
  ) {}

  async append(event: AuditEvent): Promise<string> {
    const now = Math.trunc(this.clock())
    if (now > this.#lastMs) {
      this.#lastMs = now
      this.#seq = 0
    } else {
      this.#seq++
    }
    const id = `${this.#lastMs}-${this.#seq}`
    this.#entries.push({
      id,
      ms: this.#lastMs,
      fields: encodeAuditFields(event, new Date(now).toISOString()),
    })
    if (this.#entries.length > this.maxLen) this.#entries.splice(0, this.#entries.length - this.maxLen)
    if (this.retentionMs !== undefined) {
      const minMs = this.#lastMs - this.retentionMs
      let drop = 0
      while (drop < this.#entries.length && this.#entries[drop]!.ms < minMs) drop++
      this.#entries.splice(0, drop)
    }
    return id
  }

  async read(options: AuditQuery): Promise<AuditPage> {
    // (a cursor at the edge of the id range leaves nothing beyond it: the filter finds nothing)
    const { limit, position } = auditReadArguments(options)
    const before = options.order === 'desc'
    // BigInt, as a stream id's parts go past Number's exact integers
    const beyond = (id: string): boolean => {
      if (position === undefined) return true
      const versus = compareAuditPositions(auditPosition(id), position)
      return before ? versus < 0 : versus > 0
    }
    const picked = this.#entries.filter((entry) => beyond(entry.id))
    if (before) picked.reverse()
    return auditPage(
      picked.slice(0, limit).map((entry) => decodeAuditFields(entry.id, entry.fields)),
      limit,
    )
  }
}
