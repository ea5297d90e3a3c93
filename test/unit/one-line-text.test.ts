// One-line free text (src/one-line-text.ts): every class of refused character is refused, by the
// check in code and by the JSON schemas that use the pattern (compiled by Ajv, as Fastify does),
// and plain text in any script is taken.
import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import { displayableText, isOneLineText } from '../../src/one-line-text.js'
import { reasonSchema } from '../../src/routes/admin/schemas.js'
import { PLAIN_UNICODE, REFUSED_IN_JSON } from '../support/one-line-text.js'

const ACCEPTED = [
  'customer offboarded (ticket 42)',
  PLAIN_UNICODE,
  'Contoso <EU> & "partners"',
  'non\u00a0breaking space',
  'emoji 😀 and Ελληνικά',
]

describe('one-line text', () => {
  const validReason = new Ajv({ strict: true }).compile(reasonSchema)

  it.each(REFUSED_IN_JSON)('refuses a %s anywhere in the text', (_name, character) => {
    for (const text of [`before${character}after`, `${character}start`, `end${character}`]) {
      expect(isOneLineText(text), JSON.stringify(text)).toBe(false)
      expect(validReason(text), JSON.stringify(text)).toBe(false)
    }
  })

  it('refuses empty and blank text, invisible format characters included', () => {
    for (const text of ['', ' ', '   ', '\u00a0', '\u3000', '\u200b', '\ufeff', ' \u2060 ', '\u200d\u200c']) {
      expect(isOneLineText(text), JSON.stringify(text)).toBe(false)
      expect(validReason(text), JSON.stringify(text)).toBe(false)
    }
  })

  it('takes plain text in any script, punctuation and symbols included', () => {
    for (const text of ACCEPTED) {
      expect(isOneLineText(text), text).toBe(true)
      expect(validReason(text), text).toBe(true)
    }
    // the characters just outside the refused ranges
    for (const text of ['a\u00a0b', 'a\u2027b', 'a\u202fb', 'a\u2065b', 'a\u206ab', 'a\u200db', 'a\u061bb']) {
      expect(isOneLineText(text), JSON.stringify(text)).toBe(true)
    }
  })
})

describe('displayable text', () => {
  it.each(REFUSED_IN_JSON)('takes no %s through', (_name, character) => {
    for (const text of [`before${character}after`, `${character}start`, `end${character}`]) {
      const shown = displayableText(text, 100)
      expect(isOneLineText(shown), JSON.stringify(shown)).toBe(true)
      expect(shown.replace(/ /g, ''), JSON.stringify(text)).toBe(text.replace(character, ''))
    }
  })

  it('turns line breaks into one space and removes the rest', () => {
    expect(displayableText('AADSTS50105: \u202eContact\u0000\u001b[31m', 100)).toBe(
      'AADSTS50105: Contact[31m',
    )
    expect(displayableText('Trace ID: 1\r\nCorrelation ID: 2\u2028Timestamp: 3', 100)).toBe(
      'Trace ID: 1 Correlation ID: 2 Timestamp: 3',
    )
    expect(displayableText(`ok${PLAIN_UNICODE} 😀`, 100)).toBe(`ok${PLAIN_UNICODE} 😀`)
  })

  it('cuts long text to the bound by code point, never inside a surrogate pair', () => {
    expect(displayableText('abcdef', 6)).toBe('abcdef')
    expect(displayableText('abcdefg', 6)).toBe('abcde…')
    const cut = displayableText('😀'.repeat(10), 4)
    expect(cut).toBe('😀😀😀…')
    expect(isOneLineText(cut)).toBe(true)
  })
})
