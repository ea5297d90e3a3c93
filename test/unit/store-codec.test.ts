// The record encoding shared by the Redis and memory stores: sealing, round trips, cursors.
import { randomBytes, randomUUID } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { EnvelopeError, KeyRing } from '../../src/crypto/envelope.js'
import { decodeAuditFields, encodeAuditFields } from '../../src/store/audit-codec.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { clampLimit, comparePositions, decodeCursor, encodeCursor } from '../../src/store/pagination.js'
import {
  decodeMeta,
  decodeStored,
  encodeNewRegistration,
  encodeUpdate,
  encodeUsage,
  uniquenessField,
} from '../../src/store/registration-hash.js'
import { registrationAad } from '../../src/store/sealing.js'
import type { Registration } from '../../src/store/types.js'
import { validateNewRegistration } from '../../src/store/validation.js'

const ring = new KeyRing([{ id: 'k1', key: randomBytes(32) }])
const at = '2026-01-01T00:00:00.000Z'

function registration(overrides: Partial<Omit<Registration, 'version'>> = {}): Omit<Registration, 'version'> {
  return {
    id: randomUUID(),
    app: 'ms-graph-mail',
    cloud: 'global',
    tenantId: randomUUID(),
    kind: 'delegated',
    userOid: randomUUID(),
    status: 'active',
    createdAt: at,
    updatedAt: at,
    consentedAt: at,
    ...overrides,
  }
}

describe('registration codec', () => {
  it('round-trips metadata and secrets, and stores secrets only sealed', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.option(fc.string({ minLength: 1 }), { nil: undefined }),
        fc.option(fc.string(), { nil: undefined }),
        (key, app, refreshToken, userName) => {
          const input = registration({ app, ...(userName === undefined ? {} : { userName }) })
          const secrets = refreshToken === undefined ? { key } : { key, refreshToken }
          const hash = encodeNewRegistration(ring, input, secrets)
          expect(hash.key).not.toBe(key)
          expect(hash.key?.startsWith('v1.k1.')).toBe(true)
          if (refreshToken !== undefined) expect(hash.refreshToken).not.toBe(refreshToken)
          expect(decodeStored(ring, hash)).toEqual({
            registration: { ...input, version: 1 },
            usage: {},
            secrets,
          })
          expect(decodeMeta(hash)).toEqual({ ...input, version: 1 })
        },
      ),
    )
  })

  it('binds each sealed secret to its record and field', () => {
    const a = registration()
    const b = registration()
    const hashA = encodeNewRegistration(ring, a, { key: 'key-a', refreshToken: 'rt-a' })
    const hashB = encodeNewRegistration(ring, b, { key: 'key-b', refreshToken: 'rt-b' })
    expect(() => decodeStored(ring, { ...hashB, refreshToken: hashA.refreshToken! })).toThrow(EnvelopeError)
    expect(() => decodeStored(ring, { ...hashB, key: hashA.key! })).toThrow(EnvelopeError)
    expect(() => decodeStored(ring, { ...hashA, refreshToken: hashA.key! })).toThrow(EnvelopeError)
    expect(registrationAad('r1', 'key')).toBe('registration:r1:key')
    expect(registrationAad('r1', 'refreshToken')).toBe('registration:r1:refresh_token')
  })

  it('encodes updates: sealed secrets, deletions, validation', () => {
    const changes = encodeUpdate(
      ring,
      'r1',
      { status: 'revoked', statusDetail: null, userName: 'bob' },
      { refreshToken: null, key: 'new-key' },
      at,
    )
    expect(changes.del.sort()).toEqual(['refreshToken', 'statusDetail'])
    expect(changes.set).toMatchObject({ status: 'revoked', userName: 'bob', updatedAt: at })
    expect(changes.set.key).not.toContain('new-key')
    expect(ring.open(changes.set.key!, 'registration:r1:key')).toBe('new-key')

    const detail = { code: 'AADSTS50173', at }
    expect(encodeUpdate(ring, 'r1', { statusDetail: detail }, undefined, at).set.statusDetail).toBe(
      JSON.stringify(detail),
    )
    expect(() => encodeUpdate(ring, 'r1', { status: 'gone' as never }, undefined, at)).toThrow(TypeError)
    expect(() => encodeUpdate(ring, 'r1', { consentedAt: 'yesterday' }, undefined, at)).toThrow(TypeError)
    expect(() => encodeUpdate(ring, 'r1', {}, { refreshToken: '' }, at)).toThrow(TypeError)
    expect(encodeUsage({ lastClient: 'O365 Mail/1.0' })).toEqual({ lastClient: 'O365 Mail/1.0' })
    expect(() => encodeUsage({ lastIssuedAt: 'soon' })).toThrow(TypeError)
  })

  it('validates new registrations', () => {
    const ok = registration()
    expect(() => validateNewRegistration(ok, { key: 'k' })).not.toThrow()
    expect(() => validateNewRegistration({ ...ok, id: '' }, { key: 'k' })).toThrow(TypeError)
    expect(() => validateNewRegistration({ ...ok, cloud: 'mars' as never }, { key: 'k' })).toThrow(/cloud/)
    expect(() => validateNewRegistration({ ...ok, userOid: undefined } as never, { key: 'k' })).toThrow(
      /userOid/,
    )
    expect(() => validateNewRegistration({ ...ok, createdAt: 'now' }, { key: 'k' })).toThrow(/createdAt/)
    expect(() => validateNewRegistration(ok, { key: '' })).toThrow(/key/)
  })

  it('derives the delegated uniqueness key case-insensitively for GUIDs and unambiguously', () => {
    const r = registration({ tenantId: 'ABC-def', userOid: 'Oid-1' })
    expect(uniquenessField(r)).toBe(uniquenessField({ ...r, tenantId: 'abc-DEF', userOid: 'oid-1' }))
    expect(uniquenessField({ ...r, app: 'a:b', tenantId: 'c' })).not.toBe(
      uniquenessField({ ...r, app: 'a', tenantId: 'b:c' }),
    )
    expect(uniquenessField({ ...r, cloud: 'usgov' })).not.toBe(uniquenessField(r))
    expect(uniquenessField({ ...r, kind: 'admin' })).toBeUndefined()
  })
})

describe('cursors and limits', () => {
  it('round-trips any position and orders like a sorted set (score, then id bytewise)', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string(), (score, id) => {
        const decoded = decodeCursor(encodeCursor({ score, id }))
        expect(decoded.id).toBe(id)
        expect(decoded.score === score).toBe(true) // -0 comes back as 0: the same sorted-set score
      }),
    )
    expect(comparePositions({ score: 1, id: 'b' }, { score: 2, id: 'a' })).toBeLessThan(0)
    expect(comparePositions({ score: 1, id: 'b' }, { score: 1, id: 'a' })).toBeGreaterThan(0)
    expect(comparePositions({ score: 1, id: 'a' }, { score: 1, id: 'a' })).toBe(0)
    // bytewise, like Redis: U+FFFF sorts before a supplementary character in UTF-8
    expect(comparePositions({ score: 1, id: '\uffff' }, { score: 1, id: '😀' })).toBeLessThan(0)
  })

  it('rejects malformed cursors as invalid arguments', () => {
    for (const bad of [
      '',
      '!!',
      Buffer.from('[1]').toString('base64url'),
      Buffer.from('["x","y"]').toString('base64url'),
    ]) {
      expect(() => decodeCursor(bad)).toThrow(expect.objectContaining({ code: 'invalid_argument' }))
    }
  })

  it('clamps page sizes', () => {
    expect(clampLimit(undefined)).toBe(50)
    expect(clampLimit(0)).toBe(1)
    expect(clampLimit(7.9)).toBe(7)
    expect(clampLimit(10_000)).toBe(500)
    expect(clampLimit(Number.NaN)).toBe(50)
  })
})

describe('audit fields', () => {
  it('round-trip as flat strings with detail as JSON', () => {
    const fields = encodeAuditFields(
      {
        type: 'tenant.revoked',
        actor: 'operator:alice',
        tenantId: 't',
        detail: { count: 3, reason: 'x', all: true },
      },
      at,
    )
    expect(fields.every((field) => typeof field === 'string')).toBe(true)
    expect(decodeAuditFields('1-0', fields)).toEqual({
      id: '1-0',
      type: 'tenant.revoked',
      actor: 'operator:alice',
      tenantId: 't',
      detail: { count: 3, reason: 'x', all: true },
      at,
    })
  })
})

describe('memory store housekeeping', () => {
  it('sweeps with an unref’d timer that close() clears', async () => {
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval')
    const clearIntervalSpy = vi.spyOn(globalThis, 'clearInterval')
    try {
      const store = createMemoryStore({ keyRing: ring, sweepIntervalMs: 5 })
      const timer = setIntervalSpy.mock.results.at(-1)?.value as NodeJS.Timeout
      expect(timer.hasRef()).toBe(false)
      await store.close()
      expect(clearIntervalSpy).toHaveBeenCalledWith(timer)
    } finally {
      setIntervalSpy.mockRestore()
      clearIntervalSpy.mockRestore()
    }
  })
})
