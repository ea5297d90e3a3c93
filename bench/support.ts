// Small pieces the bench scripts share: a timestamped log line, sleeping, a median and a quantile,
// one field of Redis INFO, the keys matching a pattern, and where a `## ` section of a results file
// runs (SCALE.md holds bench/scale.ts's figures and, in its own section, bench/upgrade-finish.ts's).
import type { RedisClient } from '../src/store/redis-connection.js'

/** Prints `message` after the time of day (UTC, to the second). */
export const log = (message: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${message}`)

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** The middle value of `values` (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The value at quantile `q` (0…1) of `values` (nearest rank); NaN for none. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

/** One field of `INFO <section>`, as text ('' when absent). */
export async function infoField(redis: RedisClient, section: string, field: string): Promise<string> {
  const line = (await redis.info(section)).split(/\r?\n/).find((l) => l.startsWith(`${field}:`))
  return line === undefined ? '' : line.slice(field.length + 1)
}

/** Redis's `used_memory`, in bytes. */
export async function usedMemory(redis: RedisClient): Promise<number> {
  return Number(await infoField(redis, 'memory', 'used_memory'))
}

/** Every key matching the SCAN `pattern`. */
export async function scanKeys(redis: RedisClient, pattern: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

/** The heading of the section bench/upgrade-finish.ts writes into SCALE.md. */
export const UPGRADE_HEADING = '## Finishing a rolling upgrade'

/**
 * Where the section under the line `heading` runs in `text`: from the newline before its heading
 * (`start`) to just after the newline before the next `## ` heading, or the end (`end`); undefined
 * when there is no such heading.
 */
export function sectionBounds(text: string, heading: string): { start: number; end: number } | undefined {
  const start = text.indexOf(`\n${heading}\n`)
  if (start < 0) return undefined
  const next = text.indexOf('\n## ', start + 1)
  return { start, end: next < 0 ? text.length : next + 1 }
}
