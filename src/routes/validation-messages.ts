// Validation failures in words a caller can act on. Ajv names a refused pattern by its regular
// expression (`body/reason must match pattern "^(?=.*\S)[^\u0000-…]+$"`), which says nothing to the
// operator who sent it; the patterns the broker's schemas use are described here instead, an
// unknown property is named (Ajv says only "must NOT have additional properties"), and every other
// failure keeps Ajv's own message (`must NOT have more than 500 characters`). Fastify builds
// the message of each request validation error with this (app.ts: schemaErrorFormatter).
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

/**
 * A property name the message may repeat: the request chose it, and the message is logged, so only
 * a plain name (what every schema's properties look like) is echoed, never free text.
 */
const PLAIN_PROPERTY_NAME = /^[A-Za-z0-9_.-]{1,64}$/

/** What is wrong, in words where Ajv's own would not help: a refused pattern, an unknown property. */
function wordsFor(error: FastifySchemaValidationError): string | undefined {
  if (error.keyword === 'pattern') return PATTERN_WORDS.get(String(error.params.pattern))
  if (error.keyword === 'additionalProperties') {
    const name = String(error.params.additionalProperty)
    return PLAIN_PROPERTY_NAME.test(name)
      ? `has an unknown property "${name}"`
      : 'has an unknown property (not a plain name)'
  }
  return undefined
}

/**
 * Fastify's `schemaErrorFormatter`: `<part><path> <what is wrong>` for each failure, joined by ", "
 * (Fastify's own shape), with a refused pattern and an unknown property described in words.
 */
export function schemaErrorMessage(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const described = errors.map(
    (error) => `${dataVar}${error.instancePath ?? ''} ${wordsFor(error) ?? error.message}`,
  )
  return new Error(described.join(', '))
}
