// consent-broker-admin's plain-text tables: control characters neutralised, and — unless --wide —
// fitted to a 120-column terminal: UUIDs shortened to their first 8 characters, ISO times to the
// minute, then the widest columns cut (with "…") until the line fits.

export const TABLE_WIDTH = 120
/** How many of a UUID's characters a narrow table shows (`7c3b1e5a…`, its first group: UUID below). */
export const SHORT_ID_LENGTH = 8
/**
 * Said when an id no longer than a narrow table's is not found, or one holds the table's "…": it
 * was likely copied from a table, and ids are not resolved by prefix (that would be one more request).
 */
export const SHORT_ID_HINT = `tables show only the first ${SHORT_ID_LENGTH} characters of an id: use --wide or --json for the full id`
const SEPARATOR = '  '
const UUID = /\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi
const ISO_TIME = /\b(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(:\d{2}(\.\d+)?)?Z\b/g

export interface TableOptions {
  /** Full cells, no width limit (--wide). Default false. */
  wide?: boolean
}

/** Control characters (ANSI escapes, newlines) from stored values never reach the terminal raw. */
export function printable(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}

/** A cell for a narrow table: `7c3b1e5a…` for a UUID, `2026-11-30 10:04Z` for an ISO time. */
export function shortCell(value: string): string {
  return value.replace(UUID, '$1…').replace(ISO_TIME, '$1 $2Z')
}

/**
 * A plain-text table: a header row, then one line per row, columns padded to their widest cell.
 * Narrow (the default), each line fits TABLE_WIDTH characters.
 */
export function table(
  headers: readonly string[],
  rawRows: ReadonlyArray<readonly string[]>,
  options: TableOptions = {},
): string {
  const rows = rawRows.map((row) =>
    row.map((cell) => (options.wide ? printable(cell) : shortCell(printable(cell)))),
  )
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  )
  if (!options.wide) fitWidths(headers, widths)
  const cut = (cell: string, width: number) =>
    cell.length <= width ? cell : `${cell.slice(0, width - 1).replace(/…$/, '')}…`
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => {
        const fitted = cut(cell, widths[i]!)
        return i === cells.length - 1 ? fitted : fitted.padEnd(widths[i]!)
      })
      .join(SEPARATOR)
      .trimEnd()
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`
}

/**
 * Narrows the widest column, one character at a time, until the table fits: first no column below
 * 20 characters (or its natural width) and the last one (free text) no shorter than 12, then none
 * below its header.
 */
function fitWidths(headers: readonly string[], widths: number[]): void {
  const total = () => widths.reduce((sum, width) => sum + width, 0) + SEPARATOR.length * (widths.length - 1)
  const natural = [...widths]
  const last = widths.length - 1
  for (const floorOf of [(i: number) => Math.min(natural[i]!, i === last ? 12 : 20), () => 0]) {
    while (total() > TABLE_WIDTH) {
      let widest = -1
      for (let i = 0; i < widths.length; i++) {
        const floor = Math.max(headers[i]!.length, floorOf(i))
        if (widths[i]! > floor && (widest === -1 || widths[i]! > widths[widest]!)) widest = i
      }
      if (widest === -1) break
      widths[widest]! -= 1
    }
  }
}
