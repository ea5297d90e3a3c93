import { createCipheriv, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  decodeEncryptedToken,
  importRegistrationKey,
  matchesToken,
  ObtainTokenCryptoError,
  openEncryptedToken,
  replayMarker,
} from '../../src/crypto/obtain-token.js'
import { base64Decode, base64Encode, encryptContent } from '../support/xsoar-client.js'

const key32 = randomBytes(32).toString('base64')

function open(token: string, key: string) {
  return openEncryptedToken(decodeEncryptedToken(token), importRegistrationKey(key))
}

function reason(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    return error instanceof ObtainTokenCryptoError ? error.reason : 'other'
  }
  return undefined
}

describe('the test client base64 (independent implementation)', () => {
  it('matches node for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const encoded = base64Encode(bytes)
        expect(encoded).toBe(Buffer.from(bytes).toString('base64'))
        expect([...base64Decode(encoded)]).toEqual([...bytes])
      }),
    )
  })
})

describe('encrypted_token', () => {
  it('opens what the independent client encrypts, with 16, 24 and 32-byte keys', () => {
    for (const size of [16, 24, 32]) {
      const key = randomBytes(size).toString('base64')
      const opened = open(encryptContent('tenant-id', key, 1_700_000_000), key)
      expect(opened).toEqual({ timestamp: 1_700_000_000, content: 'tenant-id' })
    }
  })

  it('splits at the first colon (content may hold colons) and allows empty content', () => {
    expect(open(encryptContent('a:b::c', key32, 12), key32)).toEqual({ timestamp: 12, content: 'a:b::c' })
    expect(open(encryptContent('', key32, 12), key32)).toEqual({ timestamp: 12, content: '' })
  })

  it('round-trips any content', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.integer({ min: 0, max: 2 ** 33 }), (content, ts) => {
        expect(open(encryptContent(content, key32, ts), key32)).toEqual({ timestamp: ts, content })
      }),
      { numRuns: 50 },
    )
  })

  it('rejects a wrong key as bad_key', () => {
    const token = encryptContent('x', key32)
    expect(reason(() => open(token, randomBytes(32).toString('base64')))).toBe('bad_key')
  })

  it('rejects any flipped bit as bad_key', () => {
    const raw = Buffer.from(encryptContent('tenant', key32), 'base64')
    for (let i = 0; i < raw.length; i++) {
      const copy = Buffer.from(raw)
      copy[i] = copy[i]! ^ 1
      expect(reason(() => open(copy.toString('base64'), key32))).toBe('bad_key')
    }
  })

  it('rejects non-standard base64, missing padding and short input as malformed', () => {
    const token = encryptContent('tenant', key32)
    const urlSafe = token.replace(/\+/g, '-').replace(/\//g, '_')
    if (urlSafe !== token) expect(reason(() => decodeEncryptedToken(urlSafe))).toBe('malformed')
    expect(
      reason(() => decodeEncryptedToken(token.replace(/=+$/, '') + (token.endsWith('=') ? '' : 'A'))),
    ).toBe('malformed')
    expect(reason(() => decodeEncryptedToken('AAAA'))).toBe('malformed')
    expect(reason(() => decodeEncryptedToken(`${token} `))).toBe('malformed')
    expect(reason(() => decodeEncryptedToken('!!!!'))).toBe('malformed')
  })

  it('accepts exactly the strings the standard padded base64 expression accepts (fast round-trip check)', () => {
    const STANDARD = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
    const base = Buffer.alloc(40, 7).toString('base64') // 40 bytes: ends in one '='
    const variants = [
      base,
      // stray bits after the last byte: not canonical, still matched by the expression
      `${base.slice(0, -2)}B=`,
      `${Buffer.alloc(41, 7).toString('base64').slice(0, -3)}B==`,
      `${base.slice(0, -1)}`,
      `${base}=`,
      ` ${base}`,
      base.replace('B', '-'),
      base.replace('B', '\n'),
      `${base.slice(0, 4)}=${base.slice(5)}`,
      Buffer.alloc(42, 1).toString('base64'),
    ]
    for (const variant of variants) {
      const accepted = reason(() => decodeEncryptedToken(variant)) === undefined
      expect([variant, accepted]).toEqual([variant, STANDARD.test(variant)])
    }
  })

  it('rejects an authenticated plaintext without "<seconds>:" as bad_plaintext', () => {
    const seal = (plaintext: string) => {
      const nonce = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', Buffer.from(key32, 'base64'), nonce)
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
      return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64')
    }
    for (const plaintext of ['no-colon', ':content', 'abc:content', '-1:content', '1.5:x']) {
      expect(reason(() => open(seal(plaintext), key32))).toBe('bad_plaintext')
    }
    const message = (plaintext: string) => {
      try {
        open(seal(plaintext), key32)
      } catch (error) {
        return (error as Error).message
      }
      return undefined
    }
    expect(message('abc:content')).toBe('encrypted_token does not hold "<unix seconds>:<content>"')
    // A timestamp in milliseconds (Date.now()) is named as such.
    expect(message(`${Date.now()}:content`)).toBe(
      'encrypted_token holds a timestamp in milliseconds; send "<unix seconds>:<content>" (seconds, e.g. Math.floor(Date.now() / 1000))',
    )
    // microseconds are not called milliseconds: the shape alone
    expect(message(`${Date.now()}000:content`)).toBe(
      'encrypted_token does not hold "<unix seconds>:<content>"',
    )
  })

  it('imports only standard base64 keys of 16, 24 or 32 bytes', () => {
    expect(() => importRegistrationKey(randomBytes(31).toString('base64'))).toThrow()
    expect(() => importRegistrationKey(randomBytes(32).toString('base64url'))).toThrow()
    expect(() => importRegistrationKey('')).toThrow()
  })

  it('marks a token by its nonce and tag, and compares strings', () => {
    const token = encryptContent('x', key32)
    const raw = decodeEncryptedToken(token)
    const marker = replayMarker(raw)
    expect(marker).toBe(replayMarker(Buffer.from(token, 'base64')))
    expect(Buffer.from(marker, 'base64url')).toEqual(Buffer.concat([raw.subarray(0, 12), raw.subarray(-16)]))
    // the same content encrypted again (new nonce) is another request
    expect(replayMarker(decodeEncryptedToken(encryptContent('x', key32)))).not.toBe(marker)
    const utf8 = (text: string) => Buffer.from(text, 'utf8')
    expect(matchesToken('abc', utf8('abc'))).toBe(true)
    expect(matchesToken('é', utf8('é'))).toBe(true)
    expect(matchesToken('abc', utf8('abd'))).toBe(false)
    expect(matchesToken('abc', utf8('abcd'))).toBe(false)
    // the same length in characters, not in bytes
    expect(matchesToken('é', utf8('e'))).toBe(false)
  })
})
