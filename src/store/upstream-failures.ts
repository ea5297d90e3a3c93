// The bucket arithmetic of the upstream failure counters (UpstreamFailureLog), shared by the Redis
// and memory stores: one bucket per minute, kept two hours, one counter per app and error code.
import type { UpstreamFailureCount } from './types.js'
import { requireName } from './validation.js'

/** One bucket per minute. */
export const UPSTREAM_FAILURE_BUCKET_MS = 60_000
/** Buckets are kept two hours (the console asks for the last hour). */
export const UPSTREAM_FAILURE_KEEP_MS = 2 * 60 * 60_000
const MAX_BUCKETS = UPSTREAM_FAILURE_KEEP_MS / UPSTREAM_FAILURE_BUCKET_MS

/** The bucket (minute number since the epoch) of `atMs`. */
export function failureBucket(atMs: number): number {
  return Math.floor(atMs / UPSTREAM_FAILURE_BUCKET_MS)
}

/** The buckets from the one of `sinceMs` to the one of `untilMs`, at most the kept ones (newest). */
export function failureBuckets(sinceMs: number, untilMs: number): number[] {
  const last = failureBucket(untilMs)
  const first = Math.max(failureBucket(sinceMs), last - MAX_BUCKETS)
  const buckets: number[] = []
  for (let bucket = first; bucket <= last; bucket++) buckets.push(bucket)
  return buckets
}

/** The counter's name within a bucket: app and code, which hold no space. */
export function failureField(app: string, code: string): string {
  requireName(app, 'app')
  requireName(code, 'code')
  if (/\s/.test(app) || /\s/.test(code)) throw new TypeError('app and code must not contain spaces')
  return `${app} ${code}`
}

/** Sums the buckets' counters (field → count) into lines, most failures first. */
export function sumFailures(buckets: Iterable<Iterable<[string, number]>>): UpstreamFailureCount[] {
  const totals = new Map<string, number>()
  for (const bucket of buckets)
    for (const [field, count] of bucket)
      if (Number.isFinite(count) && count > 0) totals.set(field, (totals.get(field) ?? 0) + count)
  return [...totals]
    .map(([field, failures]) => {
      const space = field.indexOf(' ')
      return { app: field.slice(0, space), code: field.slice(space + 1), failures }
    })
    .sort((a, b) => b.failures - a.failures || a.app.localeCompare(b.app) || a.code.localeCompare(b.code))
}
