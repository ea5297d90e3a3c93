// The upstream failure counters on Redis: one HASH per minute (`P{upf}:<minute>`, field
// "<app> <code>" → count, expiring two hours after it was last written), all under the `{upf}`
// hash tag, so the last hour is one pipeline of 61 HGETALLs in one slot, even on a Cluster.
import type { RedisClient } from '../redis-connection.js'
import type { UpstreamFailureCount, UpstreamFailureLog } from '../types.js'
import {
  failureBucket,
  failureBuckets,
  failureField,
  sumFailures,
  UPSTREAM_FAILURE_KEEP_MS,
} from '../upstream-failures.js'
import type { RedisKeys } from './keys.js'

/** `UpstreamFailureLog` on Redis. */
export class RedisUpstreamFailures implements UpstreamFailureLog {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async record(app: string, code: string, atMs: number): Promise<void> {
    const key = this.keys.upstreamFailures(failureBucket(atMs))
    await this.redis
      .multi()
      .hincrby(key, failureField(app, code), 1)
      .pexpire(key, UPSTREAM_FAILURE_KEEP_MS)
      .exec()
  }

  async count(sinceMs: number, untilMs: number): Promise<UpstreamFailureCount[]> {
    const pipeline = this.redis.pipeline()
    for (const bucket of failureBuckets(sinceMs, untilMs))
      pipeline.hgetall(this.keys.upstreamFailures(bucket))
    const replies = (await pipeline.exec()) ?? []
    return sumFailures(
      replies.map(([error, value]) => {
        if (error) throw error
        return Object.entries((value ?? {}) as Record<string, string>).map(
          ([field, count]) => [field, Number(count)] as [string, number],
        )
      }),
    )
  }
}
