// Examples for the one-line text rule (src/one-line-text.ts), shared by the unit test of the rule
// and the tests of every route that takes such text.

/** One example of each class of refused character, named. */
export const REFUSED_EXAMPLES: ReadonlyArray<[string, string]> = [
  ['C0 control (NUL)', '\u0000'],
  ['C0 control (line feed)', '\n'],
  ['C0 control (escape)', '\u001b'],
  ['DEL', '\u007f'],
  ['C1 control (next line)', '\u0085'],
  ['C1 control (CSI)', '\u009b'],
  ['C1 control (last)', '\u009f'],
  ['line separator', '\u2028'],
  ['paragraph separator', '\u2029'],
  ['Arabic letter mark', '\u061c'],
  ['left-to-right mark', '\u200e'],
  ['right-to-left mark', '\u200f'],
  ['left-to-right embedding', '\u202a'],
  ['right-to-left override', '\u202e'],
  ['left-to-right isolate', '\u2066'],
  ['pop directional isolate', '\u2069'],
]

/**
 * Lone surrogates, refused too. Only JSON (`"\ud800"`) and code can carry one: a form body is UTF-8,
 * which has no encoding for it (URLSearchParams and browsers send U+FFFD instead), so form tests use
 * REFUSED_EXAMPLES alone.
 */
export const LONE_SURROGATES: ReadonlyArray<[string, string]> = [
  ['lone high surrogate', '\ud800'],
  ['lone low surrogate', '\udfff'],
]

/** Every example, for JSON bodies and checks in code. */
export const REFUSED_IN_JSON: ReadonlyArray<[string, string]> = [...REFUSED_EXAMPLES, ...LONE_SURROGATES]

/** Plain text outside ASCII that must still be taken. */
export const PLAIN_UNICODE = "Zoë's tenant — 東京"
