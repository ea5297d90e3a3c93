// One GUID check for the whole broker: the code's isGuid and the JSON schemas' GUID_PATTERN must
// agree, in either case, and refuse every other spelling.
import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import { GUID_PATTERN, isGuid } from '../../src/guid.js'

const GUIDS = ['7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13', '7C3B1E5A-4D2F-4B8E-9A61-2F0C8D4E6B13']
const NOT_GUIDS = [
  '',
  '{7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13}',
  '7c3b1e5a4d2f4b8e9a612f0c8d4e6b13',
  '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b1',
  '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13 ',
  '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b1g',
  'organizations',
]

describe('GUID', () => {
  it('isGuid accepts both cases and nothing else', () => {
    for (const value of GUIDS) expect(isGuid(value), value).toBe(true)
    for (const value of NOT_GUIDS) expect(isGuid(value), value).toBe(false)
  })

  it('GUID_PATTERN decides the same in a JSON schema (no regex flags there)', () => {
    const validate = new Ajv().compile({ type: 'string', pattern: GUID_PATTERN })
    for (const value of GUIDS) expect(validate(value), value).toBe(true)
    for (const value of NOT_GUIDS) expect(validate(value), value).toBe(false)
  })
})
