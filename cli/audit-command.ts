// consent-broker-admin's `audit` command: the audit trail, oldest first (or --newest-first), from a
// cursor or a time (--since, an ISO 8601 time or an age such as 24h), page by page or --all.
import { type Client, type Json, query, readPages } from './broker-client.js'
import { type CliIo, type Options, positiveLimit, print, text } from './command-context.js'
import { EXIT, usageError } from './exit-codes.js'
import { printable, table } from './table.js'

/** `--since`: an ISO 8601 time, or an age such as `30m`, `24h`, `7d` before `now`. */
export function sinceTime(value: string, now: number): string {
  const age = /^(\d+)([mhd])$/.exec(value)
  if (age !== null) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 'm' | 'h' | 'd']
    const at = new Date(now - Number(age[1]) * unit)
    // An age past what a Date holds (about 273,790 years) is an Invalid Date, whose toISOString throws
    if (Number.isNaN(at.getTime()))
      throw usageError(`--since: the age "${printable(value)}" reaches back before any time a date can hold`)
    return at.toISOString()
  }
  const ms = Date.parse(value)
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || !Number.isFinite(ms)) {
    throw usageError(
      `--since must be an ISO 8601 time or an age like 30m, 24h, 7d; got "${printable(value)}"`,
    )
  }
  return new Date(ms).toISOString()
}

export async function audit(client: Client, options: Options, io: CliIo): Promise<number> {
  if (options.since !== undefined && options.cursor !== undefined) {
    throw usageError('audit: give --cursor or --since, not both')
  }
  if (options.since !== undefined && options.newestFirst) {
    throw usageError('audit: --since reads oldest first; not with --newest-first')
  }
  const order = options.newestFirst ? 'desc' : undefined
  const since = options.since === undefined ? undefined : sinceTime(options.since, io.now())
  const limit = positiveLimit(options.limit) ?? (options.all ? '500' : undefined)
  const { items, nextCursor } = await readPages(
    client,
    // `since` starts the walk; the cursors carry it on
    (cursor, first) => `admin/api/audit${query({ cursor, since: first ? since : undefined, limit, order })}`,
    'items',
    options,
  )
  if (options.json) return print(io, { items, ...(nextCursor === undefined ? {} : { nextCursor }) })
  io.stdout(
    items.length === 0
      ? 'no events\n'
      : table(
          // Narrow, the event id (a paging cursor, printed on the "more:" line) gives way.
          [...(options.wide ? ['ID'] : []), 'AT', 'TYPE', 'ACTOR', 'TENANT', 'APP', 'REGISTRATION', 'DETAIL'],
          items.map((e) => [
            ...(options.wide ? [text(e.id)] : []),
            text(e.at),
            text(e.type),
            text(e.actor),
            text(e.tenantId),
            text(e.app),
            text(e.registrationId),
            e.detail === undefined
              ? '-'
              : Object.entries(e.detail as Json)
                  .map(([name, value]) => `${name}=${text(value)}`)
                  .join(' '),
          ]),
          options,
        ),
  )
  if (nextCursor !== undefined) io.stdout(`more: --cursor ${nextCursor} (or --all)\n`)
  return EXIT.ok
}
