// Validation failures in words a caller can act on. Ajv names a refused pattern by its regular
// expression (`body/reason must match pattern "^(?=.*\S)[^\u0000-…]+$"`), which says nothing to the
// operator who sent it; the patterns the broker's schemas use are described here instead. For an
// unknown property (Ajv says only "must NOT have additional properties") the message names the
// properties the schema takes, or the one a misspelt name was meant to be. It never repeats a name
// the request chose otherwise: the message is logged, and a parameter's name may be anything, a
// secret included (logger.ts keeps unknown parameters out of log lines, names and values). A value
// outside a list is answered with the list, a date-time with an example, a missing body as missing.
// Every other failure keeps Ajv's own message (`must NOT have more than 500 characters`). Fastify builds
// the message of each request validation error with this (app.ts: schemaErrorFormatter).

import { distance } from 'fastest-levenshtein'
import type { FastifySchemaValidationError } from 'fastify'
import { GUID_PATTERN } from '../guid.js'
import { ONE_LINE_TEXT_PATTERN, REFUSED_CHARACTERS_WORDS } from '../one-line-text.js'
import { optional } from './admin/console-common.js'
import {
  APP_SLUG_PATTERN,
  AUDIT_CURSOR_PATTERN,
  DECIMAL_COUNT_PATTERN,
  REGISTRATION_ID_PATTERN,
} from './admin/schemas.js'
import { ENDPOINT_ID_PATTERN, MESSAGE_ID_PATTERN } from './admin/webhooks-schemas.js'

/** What each of the schemas' patterns asks for. */
const WORDS: ReadonlyArray<readonly [string, string]> = [
  [ONE_LINE_TEXT_PATTERN, `must be one line of text, not blank, without ${REFUSED_CHARACTERS_WORDS}`],
  [GUID_PATTERN, 'must be a GUID (8-4-4-4-12 hexadecimal digits)'],
  [
    REGISTRATION_ID_PATTERN,
    'must be a registration ID (a letter or digit, then letters, digits, ".", "_" and "-", at most 128 in all)',
  ],
  [APP_SLUG_PATTERN, 'must be an app name (lower-case letters and digits joined by "-")'],
  [ENDPOINT_ID_PATTERN, 'must be a webhook endpoint ID (ep_ and 24 hexadecimal digits)'],
  [MESSAGE_ID_PATTERN, 'must be a delivery message ID (36 hexadecimal digits and "-")'],
  [AUDIT_CURSOR_PATTERN, 'must be a cursor from an earlier page'],
  [DECIMAL_COUNT_PATTERN, 'must be a whole number in decimal digits, at most 999999999'],
]

/** Each pattern, and the same made optional by the console's filters (`optional`), in words. */
const PATTERN_WORDS: ReadonlyMap<string, string> = new Map(
  WORDS.flatMap(([pattern, words]) => [
    [pattern, words],
    [optional(pattern).pattern, `${words}, or be empty`],
  ]),
)

/** A name the message may repeat as a misspelling: plain characters, like every property's. */
const PLAIN_NAME = /^[A-Za-z0-9_-]{1,64}$/
/** At most this many edits away from a property the schema takes, a name is that one misspelt. */
const MISSPELT_WITHIN = 2

/**
 * The unknown property's words: the property it misspells, when it is within MISSPELT_WITHIN edits
 * of one the schema takes (a name that close to a known one can't carry a secret, so it is
 * repeated), else the properties the schema takes. `parentSchema` is there when the validator
 * reports verbosely (routes/json-bodies.ts); without it, no names at all.
 */
function unknownPropertyWords(error: FastifySchemaValidationError): string {
  const properties = (error as { parentSchema?: { properties?: Record<string, unknown> } }).parentSchema
    ?.properties
  if (properties === undefined) return 'has an unknown property'
  const known = Object.keys(properties)
  if (known.length === 0) return 'takes no properties'
  const name = String(error.params.additionalProperty)
  if (PLAIN_NAME.test(name)) {
    let meant: string | undefined
    let nearest = MISSPELT_WITHIN + 1
    for (const candidate of known) {
      const edits = distance(name.toLowerCase(), candidate.toLowerCase())
      if (edits < nearest) {
        nearest = edits
        meant = candidate
      }
    }
    if (meant !== undefined) return `has an unknown property "${name}" (did you mean "${meant}"?)`
  }
  return `has an unknown property (it takes ${known.join(', ')})`
}

/** The formats the schemas use, in words with an example (Ajv says `must match format "date-time"`). */
const FORMAT_WORDS: ReadonlyMap<string, string> = new Map([
  ['date-time', 'must be an ISO 8601 date and time with its offset, e.g. 2026-12-01T09:30:00Z'],
])

/** At most this many allowed values are listed in a message (the rest as "…"). */
const LISTED_VALUES = 12

/**
 * What is wrong, in words where Ajv's own would not help: a refused pattern, an unknown property,
 * a value outside a list (Ajv says only "must be equal to one of the allowed values": the list is
 * the schema's, so naming it repeats nothing the request chose), and a body that was not sent.
 */
function wordsFor(error: FastifySchemaValidationError, dataVar: string): string | undefined {
  if (error.keyword === 'pattern') return PATTERN_WORDS.get(String(error.params.pattern))
  if (error.keyword === 'format') return FORMAT_WORDS.get(String(error.params.format))
  if (error.keyword === 'additionalProperties') return unknownPropertyWords(error)
  if (error.keyword === 'enum') {
    // (an empty string allowed, as by the consent pages' `cloud`, is shown as "" rather than nothing)
    const allowed = (error.params.allowedValues as unknown[] | undefined)?.map((value) =>
      value === '' ? '""' : String(value),
    )
    if (allowed === undefined || allowed.length === 0) return undefined
    const listed = allowed.slice(0, LISTED_VALUES).join(', ')
    return `must be one of ${listed}${allowed.length > LISTED_VALUES ? ', …' : ''}`
  }
  // (`data` is there when the validator reports verbosely: the operator API's)
  const data = (error as { data?: unknown }).data
  if (
    error.keyword === 'type' &&
    dataVar === 'body' &&
    error.instancePath === '' &&
    'data' in error &&
    // (Fastify validates a request without a body as null; a JSON `null` carries nothing either)
    data == null
  ) {
    return 'is missing: send a JSON object, with Content-Type: application/json'
  }
  return undefined
}

/**
 * Fastify's `schemaErrorFormatter`: `<part><path> <what is wrong>` for each failure, joined by ", "
 * (Fastify's own shape), with a refused pattern and an unknown property described in words.
 */
export function schemaErrorMessage(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const described = errors.map(
    (error) => `${dataVar}${error.instancePath ?? ''} ${wordsFor(error, dataVar) ?? error.message}`,
  )
  return new Error(described.join(', '))
}
