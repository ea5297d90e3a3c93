// bench/RESULTS.md is written by `npm run bench`, which ends it with the hand-written notes of
// bench/notes.ts: a note edited in one place and not the other would leave the committed results
// saying something the next run drops (or the reverse).
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { BENCH_NOTES } from '../../bench/notes.js'

describe('bench/RESULTS.md', () => {
  it('ends with the notes of bench/notes.ts, as the benchmark writes them', () => {
    const results = readFileSync(new URL('../../bench/RESULTS.md', import.meta.url), 'utf8')
    const at = results.indexOf('\n## Where the time goes\n')
    expect(at).toBeGreaterThan(0)
    expect(results.slice(at + 1)).toBe(`${BENCH_NOTES}\n`)
  })
})
