// Notifications without Redis: the SSRF guard (also at connect time), the retry schedule, the
// plain-language reasons, and the memory store's outbox (a handled subject dropped after the grace),
// fan-out idempotence and leases.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import { consentReason } from '../../src/services/consent-reasons.js'
import {
  checkHost,
  isPrivateAddress,
  RefusedAddressError,
} from '../../src/services/webhooks/address-guard.js'
import { retryDelayMs } from '../../src/services/webhooks/dispatcher.js'
import { postOnce } from '../../src/services/webhooks/http-post.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { newKeyRing, sampleRegistration, sampleSecrets } from '../support/store-contract.js'

describe('address guard', () => {
  it('refuses loopback, private, link-local, shared, mapped and reserved addresses; allows public ones', () => {
    for (const address of [
      '127.0.0.1',
      '10.0.0.8',
      '172.20.1.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      'not-an-address',
    ])
      expect([address, isPrivateAddress(address)]).toEqual([address, true])
    for (const address of ['8.8.8.8', '20.190.160.1', '2606:4700::1111', '::ffff:8.8.8.8'])
      expect([address, isPrivateAddress(address)]).toEqual([address, false])
  })

  // Only global unicast passes: every row is [address, refused?].
  it.each([
    // IPv4 special-purpose ranges
    ['127.0.0.1', true],
    ['10.1.2.3', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['192.168.0.1', true],
    ['169.254.169.254', true],
    ['0.0.0.0', true],
    ['0.1.2.3', true],
    ['100.64.0.1', true],
    ['192.0.0.1', true],
    ['192.0.2.1', true],
    ['198.18.0.1', true],
    ['198.51.100.1', true],
    ['203.0.113.1', true],
    ['224.0.0.1', true],
    ['240.0.0.1', true],
    ['255.255.255.255', true],
    // IPv6 outside global unicast, and forms embedding or reaching an IPv4 address
    ['::1', true],
    ['::', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['::ffff:192.168.1.1', true],
    ['::127.0.0.1', true],
    ['::7f00:1', true],
    ['::8.8.8.8', true],
    ['::ffff:0:7f00:1', true],
    ['::ffff:0:808:808', true],
    ['64:ff9b::7f00:1', true],
    ['64:ff9b::808:808', true],
    ['64:ff9b:1::7f00:1', true],
    ['2002:7f00:1::', true],
    ['2002:808:808::1', true],
    ['2001::1', true],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', true],
    ['2001:db8::1', true],
    ['3fff::1', true],
    ['fec0::1', true],
    ['100::1', true],
    ['fc00::1', true],
    ['fdff:ffff::1', true],
    ['fe80::1', true],
    ['febf::1', true],
    ['fe80::1%eth0', true],
    ['2606:4700::1111%eth0', true],
    ['ff02::1', true],
    ['ff0e::1', true],
    ['1::1', true],
    ['4000::1', true],
    ['not-an-address', true],
    ['127.1', true],
    // global unicast
    ['93.184.216.34', false],
    ['8.8.8.8', false],
    ['1.1.1.1', false],
    ['2606:4700::1111', false],
    ['2a00:1450:4001:80b::200e', false],
    ['::ffff:93.184.216.34', false],
    ['::ffff:5db8:d822', false],
  ])('%s: refused %s', (address, refused) => {
    expect(isPrivateAddress(address)).toBe(refused)
  })

  it('checkHost refuses a bracketed IPv6 literal that reaches loopback, with the usual message', async () => {
    for (const host of ['[::127.0.0.1]', '[::7f00:1]', '[64:ff9b::7f00:1]', '[::1]']) {
      const refused = checkHost(host, false)
      await expect(refused).rejects.toBeInstanceOf(RefusedAddressError)
      await expect(refused).rejects.toThrow(
        /^\[[0-9a-f:.]+\] resolves to a private or loopback address \([0-9a-f:.]+\); set WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true to allow it$/,
      )
    }
    await expect(checkHost('[::127.0.0.1]', true)).resolves.toBeUndefined()
    await expect(checkHost('[2606:4700::1111]', false)).resolves.toBeUndefined()
    await expect(checkHost('[::ffff:93.184.216.34]', false)).resolves.toBeUndefined()
  })

  it('delivery refuses an IPv4-compatible IPv6 literal before connecting', async () => {
    const options = { timeoutMs: 2000, maxResponseBytes: 1024, allowPrivateAddresses: false }
    const posted = await postOnce('http://[::127.0.0.1]:9/', {}, '{}', options)
    expect(posted).toEqual({ ok: false, error: 'refused: ::7f00:1 is a private or loopback address' })
  })

  it('checks the address the connection resolves to (a name resolving to loopback is refused)', async () => {
    let hits = 0
    const server = createServer((_req, res) => {
      hits++
      res.end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    const port = (server.address() as AddressInfo).port
    const options = { timeoutMs: 2000, maxResponseBytes: 1024, allowPrivateAddresses: false }
    try {
      const byName = await postOnce(`http://localhost:${port}/`, {}, '{}', options)
      expect(byName.ok).toBe(false)
      expect(byName.error).toMatch(/^refused: .*private or loopback/)
      const byLiteral = await postOnce(`http://127.0.0.1:${port}/`, {}, '{}', options)
      expect(byLiteral.error).toMatch(/^refused: /)
      expect(hits).toBe(0)
      const allowed = await postOnce(`http://127.0.0.1:${port}/`, {}, '{}', {
        ...options,
        allowPrivateAddresses: true,
      })
      expect(allowed).toEqual({ ok: true, statusCode: 200 })
      expect(hits).toBe(1)
    } finally {
      server.close()
    }
  })
})

describe('retry schedule', () => {
  it('doubles from the base up to the cap, jitter keeping half to all of each delay', () => {
    expect(retryDelayMs(1, 1000, 60_000, () => 0)).toBe(500)
    expect(retryDelayMs(1, 1000, 60_000, () => 1)).toBe(1000)
    expect(retryDelayMs(4, 1000, 60_000, () => 1)).toBe(8000)
    expect(retryDelayMs(30, 1000, 60_000, () => 1)).toBe(60_000)
    expect(retryDelayMs(30, 1000, 60_000, () => 0)).toBe(30_000)
  })
})

describe('consent reasons', () => {
  it('one family per code group, the code named in the text; other codes named too', () => {
    expect(consentReason('AADSTS700082').family).toBe('inactivity')
    expect(consentReason('AADSTS70043').family).toBe('sign_in_frequency')
    expect(consentReason('AADSTS70044').family).toBe('sign_in_frequency')
    expect(consentReason('AADSTS50173').family).toBe('credentials_changed')
    expect(consentReason('AADSTS50132').family).toBe('credentials_changed')
    expect(consentReason('AADSTS65001').family).toBe('consent_removed')
    expect(consentReason('AADSTS700016').family).toBe('consent_removed')
    const other = consentReason('AADSTS12345')
    expect(other.family).toBe('other')
    expect(other.reason).toContain('AADSTS12345')
  })
})

describe('memory store: outbox and deliveries', () => {
  it('writes an entry with each creation and status change, not with other updates', async () => {
    const store = createMemoryStore({ keyRing: newKeyRing() })
    const registration = sampleRegistration()
    await store.registrations.create(registration, sampleSecrets())
    await store.registrations.update(registration.id, 1, {}, { key: sampleSecrets().key })
    await store.registrations.update(registration.id, 2, {
      status: 'needs_consent',
      statusDetail: { code: 'AADSTS700082', at: new Date().toISOString() },
    })
    const entries = await store.webhooks.readOutbox(registration.id)
    // The outbox is in time order to the millisecond; two writes in the same one may come either way.
    expect(entries.map((e) => e.kind).sort()).toEqual(['registration.created', 'registration.needs_consent'])
    expect(entries[0]!.at <= entries[1]!.at).toBe(true)
    expect(JSON.stringify(entries)).not.toMatch(/"key"|refreshToken/)
    const [claimed] = await store.webhooks.claimSubjects(10, 1000)
    expect(claimed?.item).toBe(registration.id)
    expect(await store.webhooks.claimSubjects(10, 1000)).toEqual([])
    await store.webhooks.finishSubject(
      registration.id,
      claimed?.lease as string,
      entries.map((e) => e.id),
      0,
    )
    expect(await store.webhooks.readOutbox(registration.id)).toEqual([])
    await store.close()
  })

  it('a handled subject is claimed twice (its event, then once after the grace) and never again', async () => {
    // The dispatcher polling every second for 10 minutes, as its fan-out claims, reads and finishes.
    let now = Date.parse('2026-01-01T00:00:00.000Z')
    const store = createMemoryStore({ keyRing: newKeyRing(), clock: () => now })
    const registration = sampleRegistration({ kind: 'admin' })
    await store.registrations.create(registration, sampleSecrets(false))
    const claimedAt: number[] = []
    for (let second = 1; second <= 600; second++) {
      now += 1_000
      for (const { item, lease } of await store.webhooks.claimSubjects(100, 15_000)) {
        const entries = await store.webhooks.readOutbox(item)
        await store.webhooks.finishSubject(
          item,
          lease,
          entries.map((e) => e.id),
          30_000,
        )
        if (item === registration.id) claimedAt.push(second)
      }
    }
    expect(claimedAt).toEqual([1, 30])
    await store.close()
  })

  it('a delivery is created once per message and endpoint, and leased to one caller', async () => {
    const store = createMemoryStore({ keyRing: newKeyRing() })
    const now = Date.now()
    const delivery = {
      messageId: '0b8e5d0c-3c38-4f0e-9d0b-5f1c1a2b3c4d',
      endpointId: 'ep_000000000000000000000001',
      type: 'registration.created',
      body: '{}',
      status: 'pending' as const,
      attempts: 0,
      createdAt: new Date(now).toISOString(),
      attemptTimes: [],
    }
    expect(await store.webhooks.enqueue(delivery)).toBe(true)
    expect(await store.webhooks.enqueue(delivery)).toBe(false)
    const first = await store.webhooks.claimDue(now, 10, 5000)
    expect(first).toHaveLength(1)
    expect(await store.webhooks.claimDue(now, 10, 5000)).toEqual([])
    expect(
      await store.webhooks.finishAttempt(delivery.messageId, delivery.endpointId, 'not-the-lease', {
        ok: true,
        at: new Date(now).toISOString(),
      }),
    ).toBe(false)
    expect(
      await store.webhooks.finishAttempt(delivery.messageId, delivery.endpointId, first[0]?.lease as string, {
        ok: false,
        at: new Date(now).toISOString(),
        statusCode: 500,
        retryAt: now + 1000,
      }),
    ).toBe(true)
    expect(await store.webhooks.claimDue(now + 500, 10, 5000)).toEqual([])
    expect(await store.webhooks.claimDue(now + 1000, 10, 5000)).toHaveLength(1)
    expect(await store.webhooks.countPending()).toBe(1)
    await store.close()
  })
})
