// One-line free text a caller gives the broker (a tenant label, a revocation reason): one definition
// of what it may not contain, for the JSON schemas' `pattern` and the checks in code. Such text is
// shown in the console, the CLI's tables and --json, webhooks and obtain-token's `revoked` message,
// so it may carry nothing that breaks a line or makes it read other than what it holds. Text the
// broker only shows (an identity provider's message, a value echoed in an error) is made displayable
// by the same definition instead of refused.

/**
 * The refused characters, as the body of a regex character class: C0 and C1 controls and DEL
 * (U+0000–001F, U+007F–009F; U+0085 and U+009B break lines or start terminal sequences), the line
 * and paragraph separators (U+2028, U+2029), and the bidi controls — the Arabic letter, left-to-right
 * and right-to-left marks (U+061C, U+200E, U+200F), embeddings, overrides and isolates (U+202A–202E,
 * U+2066–2069) — which reorder how the text around them is displayed — and lone surrogates
 * (\\p{Cs} under the `u` flag matches only a surrogate not in a pair): they are no character, so
 * storing one as UTF-8 (Redis) silently turns it into U+FFFD and the text reads back changed.
 */
const REFUSED =
  '\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069\\p{Cs}'

/** The refused characters in words, for error messages. */
export const REFUSED_CHARACTERS_WORDS =
  'control characters, line or paragraph separators, bidi controls or lone surrogates'

/**
 * JSON-schema `pattern` of one-line text: none of the refused characters, and something visible —
 * not only white space and invisible format characters (zero-width space and joiners, the BOM).
 */
export const ONE_LINE_TEXT_PATTERN = `^(?=.*[^\\s\\p{Cf}])[^${REFUSED}]+$`

// The `u` flag, as Ajv compiles a schema's `pattern`: the check in code is the schemas' own.
const ONE_LINE_TEXT = new RegExp(ONE_LINE_TEXT_PATTERN, 'u')

/** Whether `value` is one-line text: something visible, no refused character. */
export function isOneLineText(value: string): boolean {
  return ONE_LINE_TEXT.test(value)
}

/** Refused characters that break a line or space words (tab, CR, LF, VT, FF, NEL, U+2028/9). */
const LINE_BREAKING = /[\t-\r\u0085\u2028\u2029]+/gu
const REFUSED_ANY = new RegExp(`[${REFUSED}]`, 'gu')

/** How much of a request value an error message or record echoes back (see displayableText). */
export const ECHOED_TEXT_MAX = 200

/**
 * `value` made safe to display on one line, for text the broker shows but does not take (an
 * identity provider's message, a request value echoed in an error): runs of line-breaking
 * characters become one space, every other refused character is removed, and the result is cut to
 * `max` code points with "…" — by code point, so the cut never leaves half a surrogate pair.
 */
export function displayableText(value: string, max: number): string {
  const clean = value.replace(LINE_BREAKING, ' ').replace(REFUSED_ANY, '')
  // no more code points than code units: short text needs no count
  if (clean.length <= max) return clean
  const points = Array.from(clean)
  return points.length > max ? `${points.slice(0, max - 1).join('')}…` : clean
}
