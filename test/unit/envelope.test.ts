import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { EnvelopeError, KeyRing, parseMasterKeys } from '../../src/crypto/envelope.js'

const key = (id: string) => ({ id, key: randomBytes(32) })

describe('KeyRing', () => {
  it('opens what it sealed, for any text and associated data', () => {
    const ring = new KeyRing([key('a')])
    fc.assert(
      fc.property(fc.string(), fc.string(), (plaintext, aad) => {
        expect(ring.open(ring.seal(plaintext, aad), aad)).toBe(plaintext)
      }),
    )
  })

  it('never shows the plaintext and never repeats a ciphertext', () => {
    const ring = new KeyRing([key('a')])
    const secret = 'refresh-token-0123456789'
    const one = ring.seal(secret, 'registration:1:refresh_token')
    const two = ring.seal(secret, 'registration:1:refresh_token')
    expect(one).not.toContain(secret)
    expect(Buffer.from(one.split('.')[2]!, 'base64url').toString('latin1')).not.toContain(secret)
    expect(one).not.toBe(two)
    expect(one.startsWith('v1.a.')).toBe(true)
  })

  it('refuses a value moved to another record or field', () => {
    const ring = new KeyRing([key('a')])
    const sealed = ring.seal('k', 'registration:1:key')
    expect(() => ring.open(sealed, 'registration:2:key')).toThrow(EnvelopeError)
    expect(() => ring.open(sealed, 'registration:1:refresh_token')).toThrow(/failed authentication/)
  })

  it('refuses a tampered ciphertext', () => {
    const ring = new KeyRing([key('a')])
    const sealed = ring.seal('value', 'x')
    const [v, id, payload] = sealed.split('.')
    const bytes = Buffer.from(payload!, 'base64url')
    bytes[bytes.length - 1]! ^= 1
    expect(() => ring.open(`${v}.${id}.${bytes.toString('base64url')}`, 'x')).toThrow(/failed authentication/)
    expect(() => ring.open('v1.a', 'x')).toThrow(/malformed/)
    expect(() => ring.open('v2.a.AAAA', 'x')).toThrow(/malformed/)
    expect(() => ring.open('v1.a.AAAA', 'x')).toThrow(/truncated/)
  })

  it('seals with the newest key and opens with any key of the ring', () => {
    const old = key('old')
    const newer = key('new')
    const before = new KeyRing([old])
    const after = new KeyRing([newer, old])
    const sealedBefore = before.seal('v', 'aad')
    expect(after.open(sealedBefore, 'aad')).toBe('v')
    const sealedAfter = after.seal('v', 'aad')
    expect(KeyRing.keyIdOf(sealedAfter)).toBe('new')
    expect(() => before.open(sealedAfter, 'aad')).toThrow(/unknown key "new"/)
  })

  it('rejects bad rings', () => {
    expect(() => new KeyRing([])).toThrow(/empty/)
    expect(() => new KeyRing([{ id: 'a', key: randomBytes(16) }])).toThrow(/32 bytes/)
    expect(() => new KeyRing([key('a'), key('a')])).toThrow(/twice/)
    expect(() => new KeyRing([key('bad id')])).toThrow(/key id/)
  })
})

describe('parseMasterKeys', () => {
  it('parses id:base64 entries, newest first', () => {
    const a = randomBytes(32)
    const b = randomBytes(32)
    const keys = parseMasterKeys(`k2:${a.toString('base64')}, k1:${b.toString('base64')}`)
    expect(keys.map((k) => k.id)).toEqual(['k2', 'k1'])
    expect(keys[0]!.key.equals(a)).toBe(true)
  })

  it('names the bad entry', () => {
    expect(() => parseMasterKeys('nokey')).toThrow(/id:base64key/)
    expect(() => parseMasterKeys(`k1:${randomBytes(16).toString('base64')}`)).toThrow(
      /k1" decodes to 16 bytes/,
    )
    expect(() => parseMasterKeys(`k1:${randomBytes(32).toString('base64url')}-`)).toThrow(/standard base64/)
  })
})
