// The console's times and ids: relative times measured from an injected clock (server-side, no
// script), the exact UTC on hover, ids shortened with the full value kept.
import { describe, expect, it } from 'vitest'
import { ago, exactUtc, relativeTime, shortened, shortId } from '../../src/views/console-format.js'

const NOW = Date.parse('2026-11-30T12:00:00.000Z')
const SECOND = 1_000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

describe('relativeTime', () => {
  it.each([
    [0, 'just now'],
    [-10 * SECOND, 'just now'],
    [20 * SECOND, 'in a few seconds'],
    [-50 * SECOND, '1 minute ago'],
    [-3 * MINUTE, '3 minutes ago'],
    [3 * MINUTE, 'in 3 minutes'],
    [-44 * MINUTE, '44 minutes ago'],
    [-50 * MINUTE, '1 hour ago'],
    [2 * HOUR, 'in 2 hours'],
    [-2 * HOUR - 20 * MINUTE, '2 hours ago'],
    [-21 * HOUR, '21 hours ago'],
    [-23 * HOUR, '1 day ago'],
    [-5 * DAY, '5 days ago'],
    [40 * DAY, 'in 1 month'],
    [-95 * DAY, '3 months ago'],
    [-400 * DAY, '1 year ago'],
    [3 * 365 * DAY, 'in 3 years'],
  ])('%i ms from now reads "%s"', (offset, expected) => {
    expect(relativeTime(NOW + offset, NOW)).toBe(expected)
  })
})

describe('ago', () => {
  it('writes the relative time, the machine-readable time and the exact UTC on hover', () => {
    const at = new Date(NOW - 3 * MINUTE).toISOString()
    expect(ago(at, NOW).value).toBe(
      '<time datetime="2026-11-30T11:57:00.000Z" title="2026-11-30 11:57:00 UTC">3 minutes ago</time>',
    )
    expect(exactUtc(NOW)).toBe('2026-11-30 12:00:00 UTC')
  })

  it('follows the injected clock, not the machine clock', () => {
    const at = '2026-11-30T10:00:00.000Z'
    expect(ago(at, NOW).value).toContain('>2 hours ago<')
    expect(ago(at, NOW - 4 * HOUR).value).toContain('>in 2 hours<')
  })

  it('says "never" when there is no time, and shows an unreadable value as it is', () => {
    expect(ago(undefined, NOW).value).toBe('<span class="muted">never</span>')
    expect(ago('not a date <b>', NOW).value).toBe('<time>not a date &lt;b&gt;</time>')
  })
})

describe('short ids', () => {
  it('keeps the first 8 characters, the full value on hover and in the copy button', () => {
    const id = 'c0ffee00-1234-4abc-8def-0123456789ab'
    expect(shortened(id)).toBe('c0ffee00…')
    expect(shortened('short-id')).toBe('short-id')
    const link = shortId(id, 'tenant ID', `/admin/registrations?tenant=${id}`).value
    expect(link).toContain(
      `<a href="/admin/registrations?tenant=${id}" title="${id}"><code>c0ffee00…</code></a>`,
    )
    expect(link).toContain(`data-copy-text="${id}"`)
    // The copy button needs the page script, which shows it: without JavaScript it stays hidden.
    expect(link).toMatch(/<button type="button" class="copy"[^>]* hidden>Copy<\/button>/)
    expect(shortId('<x>"y"', 'id').value).not.toContain('<x>')
  })
})
