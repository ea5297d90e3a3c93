// The upstream failure counters in memory (one process: the demo and unit tests): per minute a
// map "<app> <code>" → count; minutes older than two hours are dropped on each write.
import type { UpstreamFailureCount, UpstreamFailureLog } from '../types.js'
import {
  failureBucket,
  failureBuckets,
  failureField,
  sumFailures,
  UPSTREAM_FAILURE_BUCKET_MS,
  UPSTREAM_FAILURE_KEEP_MS,
} from '../upstream-failures.js'

/** `UpstreamFailureLog` in memory. */
export class MemoryUpstreamFailures implements UpstreamFailureLog {
  readonly #buckets = new Map<number, Map<string, number>>()

  async record(app: string, code: string, atMs: number): Promise<void> {
    const field = failureField(app, code)
    const bucket = failureBucket(atMs)
    const oldest = bucket - UPSTREAM_FAILURE_KEEP_MS / UPSTREAM_FAILURE_BUCKET_MS
    for (const key of this.#buckets.keys()) if (key < oldest) this.#buckets.delete(key)
    const counts = this.#buckets.get(bucket) ?? new Map<string, number>()
    counts.set(field, (counts.get(field) ?? 0) + 1)
    this.#buckets.set(bucket, counts)
  }

  async count(sinceMs: number, untilMs: number): Promise<UpstreamFailureCount[]> {
    return sumFailures(
      failureBuckets(sinceMs, untilMs).map((bucket) => [...(this.#buckets.get(bucket) ?? new Map())]),
    )
  }
}
