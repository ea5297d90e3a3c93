// Validation failures in words: a refused pattern is described, not quoted as a regular expression;
// an unknown property by the one it misspells or the ones taken; every other failure keeps Ajv's message, in Fastify's `<part><path> <message>` shape.
import { Ajv } from 'ajv'
import type { FastifySchemaValidationError } from 'fastify'
import { describe, expect, it } from 'vitest'
import { GUID_PATTERN } from '../../src/guid.js'
import { ONE_LINE_TEXT_PATTERN } from '../../src/one-line-text.js'
import { optional } from '../../src/routes/admin/console-common.js'
import { APP_SLUG_PATTERN, AUDIT_CURSOR_PATTERN } from '../../src/routes/admin/schemas.js'
import { schemaErrorMessage } from '../../src/routes/validation-messages.js'

/** The errors Ajv reports for `data` under `schema` (all of them). */
function errorsOf(schema: object, data: unknown): FastifySchemaValidationError[] {
  const validate = new Ajv({ allErrors: true }).compile(schema)
  expect(validate(data)).toBe(false)
  return (validate.errors ?? []) as FastifySchemaValidationError[]
}

describe('schemaErrorMessage', () => {
  it('describes the one-line text pattern in words, naming the field', () => {
    const schema = {
      type: 'object',
      properties: { reason: { type: 'string', pattern: ONE_LINE_TEXT_PATTERN } },
    }
    const message = schemaErrorMessage(errorsOf(schema, { reason: 'two\nlines' }), 'body').message
    expect(message).toBe(
      'body/reason must be one line of text, not blank, without control characters, line or paragraph separators, bidi controls or lone surrogates',
    )
    expect(message).not.toContain('\\u')
  })

  it('describes a GUID, and an optional pattern (a console filter) as the same or empty', () => {
    const guid = { type: 'object', properties: { tenant: { type: 'string', pattern: GUID_PATTERN } } }
    expect(schemaErrorMessage(errorsOf(guid, { tenant: 'contoso' }), 'querystring').message).toBe(
      'querystring/tenant must be a GUID (8-4-4-4-12 hexadecimal digits)',
    )
    const cursor = { type: 'object', properties: { before: optional(AUDIT_CURSOR_PATTERN) } }
    expect(schemaErrorMessage(errorsOf(cursor, { before: 'abc' }), 'querystring').message).toBe(
      'querystring/before must be a cursor from an earlier page, or be empty',
    )
    const filter = { type: 'object', properties: { app: optional(APP_SLUG_PATTERN) } }
    expect(schemaErrorMessage(errorsOf(filter, { app: 'Not A Slug' }), 'querystring').message).toBe(
      'querystring/app must be an app name (lower-case letters and digits joined by "-"), or be empty',
    )
  })

  it('names the property an unknown one misspells, else the ones taken, never another name', () => {
    const schema = {
      type: 'object',
      additionalProperties: false,
      properties: {
        app: { type: 'string' },
        status: { type: 'string' },
        nested: { type: 'object', additionalProperties: false, properties: {} },
      },
    }
    // (the operator API's validators report verbosely: each error carries its schema)
    const errors = (data: unknown) => {
      const validate = new Ajv({ verbose: true }).compile(schema)
      expect(validate(data)).toBe(false)
      return (validate.errors ?? []) as FastifySchemaValidationError[]
    }
    expect(schemaErrorMessage(errors({ ap: 'x' }), 'body').message).toBe(
      'body has an unknown property "ap" (did you mean "app"?)',
    )
    expect(schemaErrorMessage(errors({ Stauts: 'x' }), 'querystring').message).toBe(
      'querystring has an unknown property "Stauts" (did you mean "status"?)',
    )
    expect(schemaErrorMessage(errors({ nested: { x: 1 } }), 'body').message).toBe(
      'body/nested takes no properties',
    )
    // Three edits or more from every name taken, or not a plain name: not repeated.
    for (const name of ['zz_unknown', 'a1b2'.repeat(16), 'stat\nus', 'státus', '']) {
      expect(schemaErrorMessage(errors({ [name]: 1 }), 'querystring').message, name).toBe(
        'querystring has an unknown property (it takes app, status, nested)',
      )
    }
    // Without the schema (a validator not reporting verbosely): no names at all.
    expect(schemaErrorMessage(errorsOf(schema, { ap: 'x' }), 'body').message).toBe(
      'body has an unknown property',
    )
  })

  it("lists the allowed values of an enum (the schema's, at most twelve), and calls an absent body missing", () => {
    const schema = {
      type: 'object',
      properties: {
        status: { type: 'string', enum: ['active', 'needs_consent', 'revoked'] },
        cloud: { type: 'string', enum: ['global', 'usgov', ''] },
        many: { enum: Array.from({ length: 14 }, (_, i) => `v${i}`) },
      },
    }
    expect(schemaErrorMessage(errorsOf(schema, { status: 'activ' }), 'querystring').message).toBe(
      'querystring/status must be one of active, needs_consent, revoked',
    )
    // an empty string allowed is shown as ""
    expect(schemaErrorMessage(errorsOf(schema, { cloud: 'moon' }), 'body').message).toBe(
      'body/cloud must be one of global, usgov, ""',
    )
    expect(schemaErrorMessage(errorsOf(schema, { many: 'x' }), 'body').message).toBe(
      'body/many must be one of v0, v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, …',
    )
    const verbose = new Ajv({ verbose: true }).compile(schema)
    expect(verbose(undefined)).toBe(false)
    const missing = (verbose.errors ?? []) as FastifySchemaValidationError[]
    expect(schemaErrorMessage(missing, 'body').message).toBe(
      'body is missing: send a JSON object, with Content-Type: application/json',
    )
    // (Fastify hands a request without a body to the validator as null)
    expect(verbose(null)).toBe(false)
    expect(schemaErrorMessage((verbose.errors ?? []) as FastifySchemaValidationError[], 'body').message).toBe(
      'body is missing: send a JSON object, with Content-Type: application/json',
    )
    // A body sent as something else keeps Ajv's words.
    expect(verbose([1])).toBe(false)
    expect(schemaErrorMessage((verbose.errors ?? []) as FastifySchemaValidationError[], 'body').message).toBe(
      'body must be object',
    )
  })

  it("keeps Ajv's own message for every other failure, and for a pattern it has no words for", () => {
    const schema = {
      type: 'object',
      required: ['reason'],
      properties: { limit: { type: 'integer', maximum: 500 }, code: { type: 'string', pattern: '^x+$' } },
    }
    expect(schemaErrorMessage(errorsOf(schema, { limit: 501, code: 'y' }), 'body').message).toBe(
      'body must have required property \'reason\', body/limit must be <= 500, body/code must match pattern "^x+$"',
    )
  })
})
