// What every consent-broker-admin command is handed — the process's I/O (CliIo) and the parsed
// options (Options) — and the little they all share: a table cell (text), JSON output (print) and
// the --limit check (positiveLimit).
import { EXIT, usageError } from './exit-codes.js'
import { printable } from './table.js'

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>
  stdout: (text: string) => void
  stderr: (text: string) => void
  fetch: typeof fetch
  sleep: (ms: number) => Promise<void>
  now: () => number
}

export interface Options {
  json: boolean
  /** Full ids and times, no 120-column limit. */
  wide: boolean
  app?: string
  tenant?: string
  status?: string
  limit?: string
  cursor?: string
  since?: string
  all: boolean
  reason?: string
  wait: boolean
  newestFirst: boolean
  events?: string
}

export const text = (value: unknown): string =>
  value === undefined || value === null ? '-' : printable(String(value))

export function print(io: CliIo, value: unknown): number {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`)
  return EXIT.ok
}

/** `--limit` as given, checked to be an integer from 1 to `max` (the route's bound); a usage error otherwise. */
export function positiveLimit(value: string | undefined, max = 500): string | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw usageError(`--limit must be an integer from 1 to ${max}, got "${printable(value)}"`)
  }
  return value
}
