// "Did you mean …?" for consent-broker-admin: the known name nearest to a misspelt one.
import { distance } from 'fastest-levenshtein'

/** How many edits a misspelling may be from the name it is taken for. */
const MISSPELT_WITHIN = 2

/**
 * The candidate nearest to `given` (the first of equally near ones) within two edits — and fewer
 * than `given` has characters, so a one-letter name is not taken for any short one — or undefined.
 */
export function nearest(given: string, candidates: readonly string[]): string | undefined {
  let meant: string | undefined
  let fewest = Math.min(MISSPELT_WITHIN, given.length - 1) + 1
  for (const candidate of candidates) {
    const edits = distance(given.toLowerCase(), candidate.toLowerCase())
    if (edits < fewest) {
      fewest = edits
      meant = candidate
    }
  }
  return meant
}
