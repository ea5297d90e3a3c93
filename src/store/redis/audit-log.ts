// The audit log in Redis: one stream, capped by MAXLEN ~ and optionally trimmed by age; stream ids
// are the records' ids and the cursors of the pages.
import { auditPage, auditReadArguments, decodeAuditFields, encodeAuditFields } from '../audit-codec.js'
import type { RedisClient } from '../redis-connection.js'
import type { AuditEvent, AuditLog, AuditPage, AuditQuery } from '../types.js'
import type { RedisKeys } from './keys.js'

/** `AuditLog` on Redis: the `audit` stream. */
export class RedisAuditLog implements AuditLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly clock: () => number,
    private readonly maxLen: number,
    private readonly retentionMs: number | undefined,
  ) {}

  async append(event: AuditEvent): Promise<string> {
    const fields = encodeAuditFields(event, new Date(this.clock()).toISOString())
    const id = await this.redis.xadd(this.keys.audit, 'MAXLEN', '~', this.maxLen, '*', ...fields)
    if (id === null) throw new Error('XADD returned no id')
    if (this.retentionMs !== undefined) {
      // stream ids carry the server's clock: trim relative to the id just written
      const newestMs = Number(id.slice(0, id.indexOf('-')))
      await this.redis.xtrim(this.keys.audit, 'MINID', Math.max(0, newestMs - this.retentionMs))
    }
    return id
  }

  async read(options: AuditQuery): Promise<AuditPage> {
    const { limit, cursor, exhausted } = auditReadArguments(options)
    // `(0-0` newest first or `(max-max` oldest first: Redis refuses the range, and it holds nothing
    if (exhausted) return auditPage([], limit)
    const entries =
      options.order === 'desc'
        ? await this.redis.xrevrange(
            this.keys.audit,
            cursor === undefined ? '+' : `(${cursor}`,
            '-',
            'COUNT',
            limit,
          )
        : await this.redis.xrange(
            this.keys.audit,
            cursor === undefined ? '-' : `(${cursor}`,
            '+',
            'COUNT',
            limit,
          )
    return auditPage(
      entries.map(([id, fields]) => decodeAuditFields(id, fields)),
      limit,
    )
  }
}
