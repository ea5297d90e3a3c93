import { describe, expect, it } from 'vitest'
import { sha256Hex } from '../../src/crypto/sha256.js'
import { authenticateOperator, bearerToken, operatorForToken } from '../../src/services/operator-auth.js'

const ALICE = 'alice-token-0123456789abcdefghij'
const BOB = 'bob-token-0123456789abcdefghijkl'
const config = {
  operatorTokens: [
    { name: 'alice', sha256: sha256Hex(ALICE) },
    { name: 'bob', sha256: sha256Hex(BOB).toUpperCase() },
  ],
}

describe('operator authentication', () => {
  it('names the operator whose token is presented', () => {
    expect(authenticateOperator(config, `Bearer ${ALICE}`)).toBe('alice')
    expect(authenticateOperator(config, `bearer ${BOB}`)).toBe('bob')
  })

  it('rejects a missing header, another scheme, a wrong, truncated or extended token', () => {
    expect(authenticateOperator(config, undefined)).toBeUndefined()
    expect(authenticateOperator(config, '')).toBeUndefined()
    expect(authenticateOperator(config, 'Bearer')).toBeUndefined()
    expect(authenticateOperator(config, `Basic ${ALICE}`)).toBeUndefined()
    expect(authenticateOperator(config, ALICE)).toBeUndefined()
    expect(authenticateOperator(config, `Bearer ${ALICE.slice(0, -1)}`)).toBeUndefined()
    expect(authenticateOperator(config, `Bearer ${ALICE}x`)).toBeUndefined()
    expect(authenticateOperator(config, `Bearer ${ALICE} ${BOB}`)).toBeUndefined()
    expect(authenticateOperator(config, `Bearer ${'a'.repeat(10_000)}`)).toBeUndefined()
  })

  it('compares only tokens of the form the configuration accepts, even when a configured hash matches', () => {
    // OPERATOR_TOKEN_HASHES can name any token; the console's sign-in form could carry these.
    const spaced = 'a token with spaces 0123456789'
    const nonAscii = 'tökén-outside-ascii-0123456789'
    const tooLong = 'y'.repeat(513)
    const hashed = {
      operatorTokens: [spaced, nonAscii, tooLong].map((token, i) => ({
        name: `op${i}`,
        sha256: sha256Hex(token),
      })),
    }
    expect(operatorForToken(hashed, spaced)).toBeUndefined()
    expect(operatorForToken(hashed, nonAscii)).toBeUndefined()
    expect(operatorForToken(hashed, tooLong)).toBeUndefined()
    const longest = 'y'.repeat(512)
    expect(operatorForToken({ operatorTokens: [{ name: 'max', sha256: sha256Hex(longest) }] }, longest)).toBe(
      'max',
    )
  })

  it('never accepts the hash itself as a token', () => {
    expect(authenticateOperator(config, `Bearer ${sha256Hex(ALICE)}`)).toBeUndefined()
  })

  it('accepts nothing when no operator is configured', () => {
    expect(operatorForToken({ operatorTokens: [] }, ALICE)).toBeUndefined()
    expect(operatorForToken({ operatorTokens: [] }, '')).toBeUndefined()
  })

  it('extracts bearer tokens strictly', () => {
    expect(bearerToken('Bearer abc')).toBe('abc')
    expect(bearerToken('Bearer  abc ')).toBe('abc')
    expect(bearerToken('Bearerabc')).toBeUndefined()
    expect(bearerToken('Token abc')).toBeUndefined()
  })
})
