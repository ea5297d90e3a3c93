// The operator API against real Redis and the emulator: authentication of every endpoint, listing,
// pagination under concurrent inserts, revocation (one registration, a tenant), audit trail.
import { randomUUID } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import { CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID } from '../../emulator/demo-data.js'
import { sha256Hex } from '../../src/crypto/sha256.js'
import { createAdminRegistration } from '../../src/services/registrations.js'
import type { AuditRecord, Registration } from '../../src/store/types.js'
import {
  bearer,
  consoleSignIn,
  freshAdminRegistration,
  obtainToken,
  operatorToken,
} from '../support/admin-helpers.js'
import { type ConsentValues, consentViaEmulator } from '../support/broker.js'
import { PLAIN_UNICODE, REFUSED_IN_JSON } from '../support/one-line-text.js'
import { useBrokerOnRedis } from '../support/use-broker.js'

const ALICE = operatorToken('alice')
const BOB = operatorToken('bob')

const { broker } = useBrokerOnRedis({
  env: { OPERATOR_TOKENS: `alice:${ALICE}`, OPERATOR_TOKEN_HASHES: `bob:${sha256Hex(BOB)}` },
})
let contosoMail: ConsentValues
let fabrikamMail: ConsentValues
let contosoListener: ConsentValues

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = Record<string, any>

let calls = 0
async function api(
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  options: { token?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; body: Json; headers: Record<string, unknown> }> {
  calls += 1
  const response = await broker.app.inject({
    method,
    url,
    // Each call from its own address: these tests send many refused tokens on purpose, and refused
    // tokens are throttled per address (attack-operator.test.ts tests that).
    remoteAddress: `10.${(calls >> 16) & 255}.${(calls >> 8) & 255}.${calls & 255}`,
    headers: {
      ...(options.token === undefined ? {} : bearer(options.token)),
      ...options.headers,
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(options.body === undefined ? {} : { payload: JSON.stringify(options.body) }),
  })
  return { status: response.statusCode, body: response.json() as Json, headers: response.headers }
}

async function auditSince(cursor: string | undefined): Promise<AuditRecord[]> {
  const out: AuditRecord[] = []
  let next = cursor
  for (;;) {
    const page = await api(
      'GET',
      `/admin/api/audit?limit=500${next === undefined ? '' : `&cursor=${next}`}`,
      {
        token: ALICE,
      },
    )
    expect(page.status).toBe(200)
    out.push(...(page.body.items as AuditRecord[]))
    if (page.body.nextCursor === undefined) return out
    next = page.body.nextCursor as string
  }
}

async function lastAuditId(): Promise<string | undefined> {
  const all = await auditSince(undefined)
  return all.at(-1)?.id
}

beforeAll(async () => {
  contosoMail = await consentViaEmulator(broker.app, {
    slug: 'ms-graph-mail',
    username: 'admin@contoso.example',
  })
  fabrikamMail = await consentViaEmulator(broker.app, {
    slug: 'ms-graph-mail',
    username: 'admin@fabrikam.example',
  })
  contosoListener = await consentViaEmulator(broker.app, {
    slug: 'ms-graph-mail-listener',
    username: 'user@contoso.example',
  })
})

describe('authentication of every operator endpoint', () => {
  const endpoints = (
    id: string,
  ): Array<{ method: 'GET' | 'POST' | 'PATCH'; url: string; body?: unknown }> => [
    { method: 'GET', url: '/admin/api/tenants' },
    { method: 'GET', url: '/admin/api/registrations' },
    { method: 'GET', url: `/admin/api/registrations/${id}` },
    { method: 'POST', url: `/admin/api/registrations/${id}/revoke`, body: { reason: 'attacker' } },
    { method: 'POST', url: `/admin/api/tenants/${CONTOSO_TENANT_ID}/revoke`, body: { reason: 'attacker' } },
    { method: 'PATCH', url: `/admin/api/tenants/${CONTOSO_TENANT_ID}`, body: { label: 'attacker' } },
    { method: 'GET', url: '/admin/api/audit' },
    { method: 'POST', url: '/admin/api/keys/rotate' },
    { method: 'GET', url: '/admin/api/keys/rotation' },
    { method: 'GET', url: '/admin/api/upgrade' },
    { method: 'POST', url: '/admin/api/upgrade/finish' },
  ]

  it('answers 401 unauthorized, revealing nothing, without a token or with a wrong one', async () => {
    const { jar } = await consoleSignIn(broker.app, ALICE)
    const signedSession = jar.get('cb_admin') ?? ''
    // `<session id>.<signature>` (@fastify/cookie's signed value).
    expect(signedSession).toMatch(/^[^.]+\.[^.]+$/)
    const sessionId = signedSession.slice(0, signedSession.lastIndexOf('.'))
    const credentials: Array<[string, Record<string, string>]> = [
      ['no header', {}],
      ['empty bearer', { authorization: 'Bearer ' }],
      ['wrong token', bearer(operatorToken('alice'))],
      ['token with a suffix', bearer(`${ALICE}x`)],
      ['the hash of a token', bearer(sha256Hex(ALICE))],
      ['basic auth', { authorization: `Basic ${Buffer.from(`alice:${ALICE}`).toString('base64')}` }],
      ['token without scheme', { authorization: ALICE }],
      ['a registration Key', bearer(contosoMail.key)],
      ['a registration Token', bearer(contosoMail.token)],
      ['a console session cookie value', bearer(signedSession)],
      ['a console session id', bearer(sessionId)],
      ['a console session cookie', { cookie: `cb_admin=${signedSession}` }],
    ]
    const messages = new Set<string>()
    for (const endpoint of endpoints(contosoMail.registrationId)) {
      for (const [label, headers] of credentials) {
        const response = await api(endpoint.method, endpoint.url, { headers, body: endpoint.body })
        expect(response.status, `${endpoint.method} ${endpoint.url} with ${label}`).toBe(401)
        expect(response.body.error.code).toBe('unauthorized')
        expect(response.headers['www-authenticate']).toMatch(/^Bearer /)
        expect(Object.keys(response.body.error).sort()).toEqual(['code', 'message'])
        messages.add(response.body.error.message)
      }
    }
    expect(messages.size).toBe(1)
    // Nothing happened: the registration and the tenant are untouched, no rotation started.
    const meta = await broker.store.registrations.getMeta(contosoMail.registrationId)
    expect(meta?.status).toBe('active')
    expect((await api('GET', '/admin/api/keys/rotation', { token: ALICE })).body.rotation.state).toBe('idle')
    expect((await auditSince(undefined)).some((e) => e.type === 'store.upgrade_finished')).toBe(false)
  })

  it('answers 401 before validating the request, so a malformed request reveals nothing either', async () => {
    const response = await api('POST', '/admin/api/registrations/%20bad/revoke', { body: { nonsense: 1 } })
    expect(response.status).toBe(401)
  })

  it('accepts each configured operator, by token or by hash', async () => {
    for (const token of [ALICE, BOB]) {
      const response = await api('GET', '/admin/api/tenants', { token })
      expect(response.status).toBe(200)
      expect(response.headers['cache-control']).toBe('no-store')
    }
  })
})

describe('tenants and registrations', () => {
  it('lists tenants with apps, counts by status and last consent, and no last token', async () => {
    const issued = await obtainToken(broker.app, contosoMail, 'ms-graph-mail')
    expect(issued.status).toBe(200)
    const response = await api('GET', '/admin/api/tenants', { token: ALICE })
    expect(response.status).toBe(200)
    const tenants = response.body.tenants as Json[]
    const contoso = tenants.find((t) => t.tenantId === CONTOSO_TENANT_ID)!
    const fabrikam = tenants.find((t) => t.tenantId === FABRIKAM_TENANT_ID)!
    expect(contoso.apps).toEqual(expect.arrayContaining(['ms-graph-mail', 'ms-graph-mail-listener']))
    expect(contoso.registrations.active).toBeGreaterThanOrEqual(2)
    expect(contoso.registrations.total).toBe(
      contoso.registrations.active + contoso.registrations.needs_consent + contoso.registrations.revoked,
    )
    expect(Date.parse(contoso.lastConsentAt)).toBeGreaterThan(0)
    expect(contoso.lastIssuedAt).toBeUndefined()
    expect(fabrikam.apps).toEqual(['ms-graph-mail'])

    const filtered = await api('GET', '/admin/api/tenants?app=ms-graph-mail-listener', { token: ALICE })
    expect((filtered.body.tenants as Json[]).map((t) => t.tenantId)).toEqual([CONTOSO_TENANT_ID])
  })

  it('pages tenants by tenant id with a cursor, and refuses a malformed one', async () => {
    const all = await api('GET', '/admin/api/tenants?limit=500', { token: ALICE })
    const ids = (all.body.tenants as Json[]).map((t) => t.tenantId as string)
    expect(ids).toEqual([...ids].sort())
    expect(ids).toEqual(expect.arrayContaining([CONTOSO_TENANT_ID, FABRIKAM_TENANT_ID]))
    expect(all.body.nextCursor).toBeUndefined()
    const paged: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await api(
        'GET',
        `/admin/api/tenants?limit=1${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
        { token: ALICE },
      )
      expect(page.status).toBe(200)
      expect((page.body.tenants as Json[]).length).toBeLessThanOrEqual(1)
      paged.push(...(page.body.tenants as Json[]).map((t) => t.tenantId as string))
      cursor = page.body.nextCursor as string | undefined
      pages++
    } while (cursor !== undefined && pages < 50)
    expect(paged).toEqual(ids)
    expect(pages).toBe(ids.length)
    const bad = await api('GET', '/admin/api/tenants?cursor=%21%21', { token: ALICE })
    expect(bad.status).toBe(400)
    expect(bad.body.error.code).toBe('invalid_request')
    const tooLarge = await api('GET', '/admin/api/tenants?limit=501', { token: ALICE })
    expect(tooLarge.status).toBe(400)
  })

  it('filters registrations by tenant, app and status, and shows one registration without secrets', async () => {
    const byTenant = await api('GET', `/admin/api/registrations?tenant=${FABRIKAM_TENANT_ID}`, {
      token: ALICE,
    })
    expect(byTenant.status).toBe(200)
    expect((byTenant.body.items as Json[]).every((r) => r.tenantId === FABRIKAM_TENANT_ID)).toBe(true)
    expect((byTenant.body.items as Json[]).map((r) => r.id)).toContain(fabrikamMail.registrationId)

    const byApp = await api('GET', '/admin/api/registrations?app=ms-graph-mail-listener&status=active', {
      token: ALICE,
    })
    const listener = (byApp.body.items as Json[]).find((r) => r.id === contosoListener.registrationId)!
    expect(listener).toMatchObject({ kind: 'delegated', userName: 'user@contoso.example', status: 'active' })

    const one = await api('GET', `/admin/api/registrations/${contosoListener.registrationId}`, {
      token: ALICE,
    })
    expect(one.status).toBe(200)
    expect(one.body.registration).toMatchObject({
      id: contosoListener.registrationId,
      app: 'ms-graph-mail-listener',
    })
    const text = JSON.stringify(one.body)
    expect(text).not.toContain(contosoListener.key)
    expect(one.body.registration).not.toHaveProperty('key')
    expect(one.body.registration).not.toHaveProperty('refreshToken')
    expect(JSON.stringify(byApp.body)).not.toContain(contosoListener.key)

    const missing = await api('GET', `/admin/api/registrations/${randomUUID()}`, { token: ALICE })
    expect(missing.status).toBe(404)
    expect(missing.body.error.code).toBe('not_found')
    // the longest id the registration id pattern allows reaches the route (not a 414 from the router)
    const longest = await api('GET', `/admin/api/registrations/a${'b'.repeat(127)}`, { token: ALICE })
    expect(longest.status).toBe(404)
    expect(longest.body.error.code).toBe('not_found')
    const tooLong = await api('GET', `/admin/api/registrations/a${'b'.repeat(128)}`, { token: ALICE })
    expect(tooLong.status).toBe(400)
  })

  it('rejects malformed filters and cursors with a message naming the field', async () => {
    const badStatus = await api('GET', '/admin/api/registrations?status=deleted', { token: ALICE })
    expect(badStatus.status).toBe(400)
    expect(badStatus.body.error.message).toContain('status')
    const badLimit = await api('GET', '/admin/api/registrations?limit=501', { token: ALICE })
    expect(badLimit.status).toBe(400)
    expect(badLimit.body.error.message).toBe('querystring/limit must be <= 500')
    const badCursor = await api('GET', '/admin/api/registrations?cursor=not-a-cursor', { token: ALICE })
    expect(badCursor.status).toBe(400)
    expect(badCursor.body.error.message).toContain('cursor')
    const badAuditCursor = await api('GET', '/admin/api/audit?cursor=abc', { token: ALICE })
    expect(badAuditCursor.status).toBe(400)
    expect(badAuditCursor.body.error.message).toContain('cursor')
  })

  it('pages through every registration exactly once while others are being inserted', async () => {
    const app = 'ms-graph-user'
    const base = Date.now()
    const make = async (createdAt: number) =>
      (
        await createAdminRegistration(broker.store, {
          app,
          cloud: 'global',
          tenantId: randomUUID(),
          now: new Date(createdAt).toISOString(),
        })
      ).registration
    const initial: Registration[] = []
    for (let i = 0; i < 45; i++) initial.push(await make(base + i))

    const seen: string[] = []
    let inserted = 0
    let cursor: string | undefined
    let pages = 0
    do {
      // Each page races inserts that sort before everything listed so far (an offset-based cursor
      // would then repeat items), among the ones still to come, and after all of them.
      const [page] = await Promise.all([
        api(
          'GET',
          `/admin/api/registrations?app=${app}&limit=7${cursor === undefined ? '' : `&cursor=${cursor}`}`,
          {
            token: ALICE,
          },
        ),
        make(base - 86_400_000 - pages).then(() => inserted++),
        make(base + 20 + pages).then(() => inserted++),
        make(base + 3_600_000 + pages).then(() => inserted++),
      ])
      expect(page.status).toBe(200)
      seen.push(...(page.body.items as Json[]).map((r) => r.id as string))
      cursor = page.body.nextCursor
      pages++
    } while (cursor !== undefined && pages < 200)

    expect(inserted).toBeGreaterThanOrEqual(3 * 7)
    expect(new Set(seen).size).toBe(seen.length)
    for (const registration of initial) expect(seen).toContain(registration.id)
  })
})

describe('who consented and tenant labels', () => {
  it('shows who consented (admin consent included) and the default label, the consenting domain', async () => {
    const admin = await api('GET', `/admin/api/registrations/${contosoMail.registrationId}`, { token: ALICE })
    expect(admin.body.registration).toMatchObject({
      kind: 'admin',
      consentedBy: { upn: 'admin@contoso.example', name: 'Contoso Admin' },
      tenantLabel: 'contoso.example',
    })
    const delegated = await api(
      'GET',
      `/admin/api/registrations?tenant=${CONTOSO_TENANT_ID}&app=ms-graph-mail-listener`,
      {
        token: ALICE,
      },
    )
    expect(delegated.body.items[0]).toMatchObject({
      consentedBy: { upn: 'user@contoso.example', name: 'Contoso User' },
      tenantLabel: 'contoso.example',
    })
    // one page holds every tenant of this file (earlier tests add dozens with random ids, which may
    // sort before Fabrikam's): the label is looked for, not where the page happens to end
    const tenants = (await api('GET', '/admin/api/tenants?limit=500', { token: ALICE })).body
      .tenants as Json[]
    expect(tenants.find((t) => t.tenantId === FABRIKAM_TENANT_ID)?.label).toBe('fabrikam.example')
    // a registration written before consents recorded who (no userName, no label) still lists
    const old = await createAdminRegistration(broker.store, {
      app: 'ms-graph-mail',
      cloud: 'global',
      tenantId: randomUUID(),
      now: new Date().toISOString(),
    })
    const oldOne = await api('GET', `/admin/api/registrations/${old.registration.id}`, { token: ALICE })
    expect(oldOne.status).toBe(200)
    expect(oldOne.body.registration).not.toHaveProperty('consentedBy')
    expect(oldOne.body.registration).not.toHaveProperty('tenantLabel')
  })

  it("sets a tenant's label (trimmed, audited); later consents keep it", async () => {
    const before = await lastAuditId()
    const set = await api('PATCH', `/admin/api/tenants/${FABRIKAM_TENANT_ID.toUpperCase()}`, {
      token: ALICE,
      body: { label: '  Fabrikam (EU)  ' },
    })
    expect(set.status).toBe(200)
    expect(set.body).toEqual({
      tenantId: FABRIKAM_TENANT_ID,
      label: 'Fabrikam (EU)',
      previous: 'fabrikam.example',
    })
    const events = (await auditSince(before)).filter((e) => e.type === 'tenant.label_changed')
    expect(events).toEqual([
      expect.objectContaining({
        actor: 'operator:alice',
        tenantId: FABRIKAM_TENANT_ID,
        detail: { label: 'Fabrikam (EU)', previous: 'fabrikam.example' },
      }),
    ])
    await consentViaEmulator(broker.app, { slug: 'ms-graph-mail', username: 'admin@fabrikam.example' })
    const tenants = (await api('GET', '/admin/api/tenants?limit=500', { token: BOB })).body.tenants as Json[]
    expect(tenants.find((t) => t.tenantId === FABRIKAM_TENANT_ID)?.label).toBe('Fabrikam (EU)')
    const regs = await api('GET', `/admin/api/registrations?tenant=${FABRIKAM_TENANT_ID}`, { token: BOB })
    expect((regs.body.items as Json[]).every((r) => r.tenantLabel === 'Fabrikam (EU)')).toBe(true)
  })

  it('refuses a bad label or an unknown tenant, naming what is wrong, and changes nothing', async () => {
    const url = `/admin/api/tenants/${CONTOSO_TENANT_ID}`
    for (const body of [{}, { label: '' }, { label: '   ' }, { label: 'a\nb' }, { label: 'x'.repeat(101) }]) {
      const response = await api('PATCH', url, { token: ALICE, body })
      expect(response.status, JSON.stringify(body)).toBe(400)
      expect(response.body.error.code).toBe('invalid_request')
      expect(response.body.error.message).toMatch(/label|extra|additional/)
    }
    const unknown = await api('PATCH', `/admin/api/tenants/${randomUUID()}`, {
      token: ALICE,
      body: { label: 'Nobody' },
    })
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.code).toBe('not_found')
    const notGuid = await api('PATCH', '/admin/api/tenants/contoso', {
      token: ALICE,
      body: { label: 'Nobody' },
    })
    expect(notGuid.status).toBe(400)
    const tenants = (await api('GET', '/admin/api/tenants?limit=500', { token: ALICE })).body
      .tenants as Json[]
    expect(tenants.find((t) => t.tenantId === CONTOSO_TENANT_ID)?.label).toBe('contoso.example')
  })

  it("counts a label's length after trimming it", async () => {
    const { tenantId } = await freshAdminRegistration(broker.store)
    const url = `/admin/api/tenants/${tenantId}`
    const padded = await api('PATCH', url, { token: ALICE, body: { label: ` ${'a'.repeat(100)} ` } })
    expect(padded.status).toBe(200)
    expect(padded.body.label).toBe('a'.repeat(100))
    const long = await api('PATCH', url, { token: ALICE, body: { label: ` ${'b'.repeat(101)} ` } })
    expect(long.status).toBe(400)
    expect(long.body.error.code).toBe('invalid_request')
    expect(long.body.error.message).toContain('label must be 1 to 100 characters')
    const tooMuchPadding = await api('PATCH', url, { token: ALICE, body: { label: `${' '.repeat(1000)}c` } })
    expect(tooMuchPadding.status).toBe(400)
    expect((await broker.store.tenantLabels.get([tenantId])).get(tenantId)).toBe('a'.repeat(100))
  })

  it('refuses a label with any control, separator or bidi character; takes plain text in any script', async () => {
    const { tenantId } = await freshAdminRegistration(broker.store)
    const url = `/admin/api/tenants/${tenantId}`
    for (const [name, character] of REFUSED_IN_JSON) {
      for (const label of [`Con${character}toso`, `Contoso${character}`]) {
        const response = await api('PATCH', url, { token: ALICE, body: { label } })
        expect(response.status, name).toBe(400)
        expect(response.body.error.code, name).toBe('invalid_request')
        expect(response.body.error.message, name).toContain('label')
      }
    }
    expect(await broker.store.tenantLabels.get([tenantId])).toEqual(new Map())
    const plain = await api('PATCH', url, { token: ALICE, body: { label: PLAIN_UNICODE } })
    expect(plain.status).toBe(200)
    expect((await broker.store.tenantLabels.get([tenantId])).get(tenantId)).toBe(PLAIN_UNICODE)
  })
})

describe('revocation', () => {
  it('revokes a registration once, records who and why, and obtain-token answers revoked', async () => {
    const values = await consentViaEmulator(broker.app, {
      slug: 'ms-graph-user',
      username: 'admin@fabrikam.example',
    })
    expect((await obtainToken(broker.app, values, 'ms-graph-user')).status).toBe(200)
    const before = await lastAuditId()

    const first = await api('POST', `/admin/api/registrations/${values.registrationId}/revoke`, {
      token: BOB,
      body: { reason: 'customer offboarded (ticket 42)' },
    })
    expect(first.status).toBe(200)
    expect(first.body.alreadyRevoked).toBe(false)
    expect(first.body.registration).toMatchObject({
      id: values.registrationId,
      status: 'revoked',
      statusDetail: { code: 'operator_revoked', by: 'bob', reason: 'customer offboarded (ticket 42)' },
    })
    const revokedAt = first.body.registration.statusDetail.at as string

    const again = await api('POST', `/admin/api/registrations/${values.registrationId}/revoke`, {
      token: ALICE,
      body: { reason: 'second attempt' },
    })
    expect(again.status).toBe(200)
    expect(again.body.alreadyRevoked).toBe(true)
    expect(again.body.registration.statusDetail).toEqual(first.body.registration.statusDetail)

    const denied = await obtainToken(broker.app, values, 'ms-graph-user')
    expect(denied.status).toBe(401)
    expect(denied.body.error?.code).toBe('revoked')
    expect(denied.body.error?.message).toContain(revokedAt)
    expect(denied.body.error?.message).toContain('customer offboarded (ticket 42)')
    expect(denied.body.error?.message).toContain(`${broker.config.publicUrl}/ms-graph-user`)

    const events = (await auditSince(before)).filter((e) => e.registrationId === values.registrationId)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({
      type: 'registration.revoked',
      actor: 'operator:bob',
      tenantId: FABRIKAM_TENANT_ID,
      app: 'ms-graph-user',
      detail: { reason: 'customer offboarded (ticket 42)', code: 'operator_revoked' },
    })
  })

  it('deletes the refresh token and the cached access tokens of a delegated registration', async () => {
    const values = await consentViaEmulator(broker.app, {
      slug: 'ms-graph-mail-listener',
      username: 'user@fabrikam.example',
    })
    expect((await obtainToken(broker.app, values, 'ms-graph-mail-listener')).status).toBe(200)
    const scope = 'https://graph.microsoft.com/.default'
    expect(await broker.store.tokens.get(`reg:${values.registrationId}`, scope)).not.toBeNull()
    expect((await broker.store.registrations.get(values.registrationId))?.secrets.refreshToken).toBeTruthy()

    const response = await api('POST', `/admin/api/registrations/${values.registrationId}/revoke`, {
      token: ALICE,
      body: { reason: 'user left' },
    })
    expect(response.status).toBe(200)
    const stored = await broker.store.registrations.get(values.registrationId)
    expect(stored?.secrets.refreshToken).toBeUndefined()
    expect(await broker.store.tokens.get(`reg:${values.registrationId}`, scope)).toBeNull()
  })

  it('revokes a whole tenant (optionally one app), deleting the shared app-only tokens', async () => {
    const tenantMail = await consentViaEmulator(broker.app, {
      slug: 'ms-defender-atp',
      username: 'admin@contoso.example',
    })
    expect((await obtainToken(broker.app, tenantMail, 'ms-defender-atp')).status).toBe(200)
    const group = `tenant:ms-defender-atp:global:${CONTOSO_TENANT_ID}`
    const defaultScope = 'https://api.securitycenter.microsoft.com/.default'
    expect(await broker.store.tokens.get(group, defaultScope)).not.toBeNull()

    const one = await api('POST', `/admin/api/tenants/${CONTOSO_TENANT_ID}/revoke`, {
      token: ALICE,
      body: { reason: 'contract ended', app: 'ms-defender-atp' },
    })
    expect(one.status).toBe(200)
    expect(one.body.app).toBe('ms-defender-atp')
    expect((one.body.revoked as Json[]).map((r) => r.id)).toEqual([tenantMail.registrationId])
    expect(await broker.store.tokens.get(group, defaultScope)).toBeNull()
    // Other apps of the tenant are untouched.
    expect((await broker.store.registrations.getMeta(contosoMail.registrationId))?.status).toBe('active')

    const all = await api('POST', `/admin/api/tenants/${CONTOSO_TENANT_ID.toUpperCase()}/revoke`, {
      token: ALICE,
      body: { reason: 'contract ended' },
    })
    expect(all.status).toBe(200)
    expect(all.body.tenantId).toBe(CONTOSO_TENANT_ID)
    const ids = (all.body.revoked as Json[]).map((r) => r.id)
    expect(ids).toEqual(expect.arrayContaining([contosoMail.registrationId, contosoListener.registrationId]))
    expect(all.body.alreadyRevoked).toBeGreaterThanOrEqual(1)
    for (const values of [contosoMail, contosoListener]) {
      const meta = await broker.store.registrations.getMeta(values.registrationId)
      expect(meta?.statusDetail).toMatchObject({
        code: 'operator_revoked',
        by: 'alice',
        reason: 'contract ended',
      })
    }
    const denied = await obtainToken(broker.app, contosoMail, 'ms-graph-mail')
    expect(denied.body.error?.code).toBe('revoked')

    const repeat = await api('POST', `/admin/api/tenants/${CONTOSO_TENANT_ID}/revoke`, {
      token: ALICE,
      body: { reason: 'again' },
    })
    expect(repeat.status).toBe(200)
    expect(repeat.body.revoked).toEqual([])

    const events = await auditSince(undefined)
    expect(events.some((e) => e.type === 'tenant.revoked' && e.detail?.reason === 'contract ended')).toBe(
      true,
    )

    const unknown = await api('POST', `/admin/api/tenants/${randomUUID()}/revoke`, {
      token: ALICE,
      body: { reason: 'x' },
    })
    expect(unknown.status).toBe(404)
  })

  it('refuses a revocation without a reason, naming the field', async () => {
    const invalid = [
      {},
      { reason: '' },
      { reason: '   ' },
      { reason: 'x'.repeat(501) },
      { reason: 'two\nlines' },
      { reason: '\u001b[2Jterminal escape' },
    ]
    for (const body of invalid) {
      const response = await api('POST', `/admin/api/registrations/${fabrikamMail.registrationId}/revoke`, {
        token: ALICE,
        body,
      })
      expect(response.status).toBe(400)
      expect(response.body.error.message).toContain('reason')
    }
    expect((await broker.store.registrations.getMeta(fabrikamMail.registrationId))?.status).toBe('active')
  })

  it('refuses a reason with any control, separator or bidi character; takes plain text in any script', async () => {
    const { tenantId, registration } = await freshAdminRegistration(broker.store)
    const one = `/admin/api/registrations/${registration.id}/revoke`
    const tenant = `/admin/api/tenants/${tenantId}/revoke`
    const reasons = [
      'line1\u2028line2\u0085line3',
      ...REFUSED_IN_JSON.map(([, character]) => `customer${character}offboarded`),
    ]
    for (const reason of reasons) {
      for (const url of [one, tenant]) {
        const response = await api('POST', url, { token: ALICE, body: { reason } })
        expect(response.status, `${url} ${JSON.stringify(reason)}`).toBe(400)
        expect(response.body.error.code).toBe('invalid_request')
        expect(response.body.error.message).toContain('reason')
      }
    }
    expect((await broker.store.registrations.getMeta(registration.id))?.status).toBe('active')
    const revoked = await api('POST', one, { token: ALICE, body: { reason: PLAIN_UNICODE } })
    expect(revoked.status).toBe(200)
    expect(revoked.body.registration.statusDetail.reason).toBe(PLAIN_UNICODE)
    const all = await api('POST', tenant, { token: ALICE, body: { reason: PLAIN_UNICODE } })
    expect(all.status).toBe(200)
  })

  it('a new consent after a revocation creates a new, working registration', async () => {
    const fresh = await consentViaEmulator(broker.app, {
      slug: 'ms-graph-mail',
      username: 'admin@contoso.example',
    })
    expect(fresh.registrationId).not.toBe(contosoMail.registrationId)
    expect((await obtainToken(broker.app, fresh, 'ms-graph-mail')).status).toBe(200)
    expect((await obtainToken(broker.app, contosoMail, 'ms-graph-mail')).body.error?.code).toBe('revoked')
  })
})

describe('audit trail', () => {
  it('records consents and operator sign-ins, and pages with a cursor', async () => {
    const events = await auditSince(undefined)
    expect(events.some((e) => e.type === 'consent.completed')).toBe(true)
    expect(events.some((e) => e.type === 'operator.signed_in' && e.actor === 'operator:alice')).toBe(true)
    const first = await api('GET', '/admin/api/audit?limit=2', { token: ALICE })
    expect(first.body.items).toHaveLength(2)
    const second = await api('GET', `/admin/api/audit?limit=2&cursor=${first.body.nextCursor}`, {
      token: ALICE,
    })
    expect(second.body.items[0].id).toBe(events[2]!.id)

    // `since`: from the first event recorded at or after a time (stream ids carry that time).
    const fourth = events[3]!
    const idMs = (event: AuditRecord) => Number(event.id.split('-')[0])
    const sinceIso = new Date(idMs(fourth)).toISOString()
    const since = await api('GET', `/admin/api/audit?limit=500&since=${encodeURIComponent(sinceIso)}`, {
      token: ALICE,
    })
    expect(since.status).toBe(200)
    const expected = events.filter((e) => idMs(e) >= idMs(fourth)).map((e) => e.id)
    expect((since.body.items as AuditRecord[]).map((e) => e.id)).toEqual(expected)
    expect(expected).toContain(fourth.id)
    expect(expected.length).toBeLessThan(events.length)
    const future = await api('GET', '/admin/api/audit?since=2999-01-01T00:00:00Z', { token: ALICE })
    expect(future.body.items).toEqual([])
    const both = await api('GET', `/admin/api/audit?since=${encodeURIComponent(sinceIso)}&cursor=1-0`, {
      token: ALICE,
    })
    expect(both.status).toBe(400)
    const bad = await api('GET', '/admin/api/audit?since=yesterday', { token: ALICE })
    expect(bad.status).toBe(400)
    expect(bad.body.error.message).toContain('since')
  })

  it('reads newest first with order=desc, paging back with the cursor', async () => {
    const events = await auditSince(undefined)
    const newest = await api('GET', '/admin/api/audit?order=desc&limit=2', { token: ALICE })
    expect(newest.status).toBe(200)
    const latest = (await auditSince(undefined)).map((e) => e.id)
    // (the request above was not audited: reads are not events)
    expect(latest).toEqual(events.map((e) => e.id))
    expect((newest.body.items as AuditRecord[]).map((e) => e.id)).toEqual(latest.slice(-2).reverse())
    const back = await api('GET', `/admin/api/audit?order=desc&limit=2&cursor=${newest.body.nextCursor}`, {
      token: ALICE,
    })
    expect((back.body.items as AuditRecord[]).map((e) => e.id)).toEqual(latest.slice(-4, -2).reverse())
    const mixed = await api('GET', '/admin/api/audit?order=desc&since=2020-01-01T00:00:00Z', { token: ALICE })
    expect(mixed.status).toBe(400)
    expect(mixed.body.error.message).toContain('order=desc')
    const wrong = await api('GET', '/admin/api/audit?order=newest', { token: ALICE })
    expect(wrong.status).toBe(400)
  })

  it('refuses a cursor past a stream id’s range (400); past either end of the trail, an empty page', async () => {
    const MAX = '18446744073709551615'
    for (const query of [
      'cursor=99999999999999999999-1',
      'cursor=99999999999999999999-1&order=desc',
      `cursor=1-${MAX}0`,
    ]) {
      const refused = await api('GET', `/admin/api/audit?${query}`, { token: ALICE })
      expect(refused.status, query).toBe(400)
      expect(refused.body.error.code, query).toBe('invalid_request')
      expect(refused.body.error.message, query).toContain('audit cursor is out of range')
    }
    for (const query of [`cursor=${MAX}-${MAX}`, `cursor=${MAX}-${MAX}&order=asc`, 'cursor=0-0&order=desc']) {
      const empty = await api('GET', `/admin/api/audit?${query}`, { token: ALICE })
      expect(empty.status, query).toBe(200)
      expect(empty.body, query).toEqual({ items: [] })
    }
    const all = await auditSince(undefined)
    const whole = await api('GET', `/admin/api/audit?cursor=${MAX}-${MAX}&order=desc&limit=500`, {
      token: ALICE,
    })
    expect((whole.body.items as AuditRecord[]).map((e) => e.id)).toEqual(
      all
        .map((e) => e.id)
        .reverse()
        .slice(0, 500),
    )
  })

  it('refuses a since that is no real instant (a leap second, 31 February) as a since, not a cursor', async () => {
    for (const since of ['2016-12-31T23:59:60Z', '2021-02-31T00:00:00Z']) {
      const refused = await api('GET', `/admin/api/audit?since=${encodeURIComponent(since)}`, {
        token: ALICE,
      })
      expect(refused.status, since).toBe(400)
      expect(refused.body.error.code, since).toBe('invalid_request')
      expect(refused.body.error.message, since).toContain('since')
      expect(refused.body.error.message, since).not.toContain('cursor')
    }
    // An age (the CLI's --since takes one) is not a time here: the message says what is, with an example.
    const age = await api('GET', '/admin/api/audit?since=1h', { token: ALICE })
    expect(age.body.error.message).toBe(
      'querystring/since must be an ISO 8601 date and time with its offset, e.g. 2026-12-01T09:30:00Z',
    )
  })
})

describe('store upgrade', () => {
  it('shows the layout state, and finishes (idempotent, audited) on request', async () => {
    // a store this release created is contracted from the start
    const before = await api('GET', '/admin/api/upgrade', { token: ALICE })
    expect(before.status).toBe(200)
    expect(before.body).toEqual({ upgrade: { state: 'contracted' } })

    const started = await api('POST', '/admin/api/upgrade/finish', { token: ALICE })
    expect(started.status).toBe(202)
    expect(started.body.started).toBe(true)
    expect(['finishing', 'contracted']).toContain(started.body.upgrade.state)
    let state = started.body.upgrade.state as string
    for (let polls = 0; state === 'finishing'; polls++) {
      if (polls > 200) throw new Error('the finish does not end')
      await new Promise((resolve) => setTimeout(resolve, 25))
      state = (await api('GET', '/admin/api/upgrade', { token: ALICE })).body.upgrade.state
    }
    expect(state).toBe('contracted')
    const events = (await auditSince(undefined)).filter((e) => e.type === 'store.upgrade_finished')
    expect(events.map((e) => [e.actor, e.detail?.phase])).toEqual([
      ['operator:alice', 'started'],
      ['operator:alice', 'completed'],
    ])
    expect(events[1]!.detail).toMatchObject({ registrations: 0, pruned: 0 })
    // the listings still answer
    expect((await api('GET', '/admin/api/registrations', { token: ALICE })).status).toBe(200)
  })
})

describe('JSON bodies validated as sent', () => {
  it('refuses wrong-typed fields instead of converting them, and changes nothing', async () => {
    const revoke = `/admin/api/registrations/${fabrikamMail.registrationId}/revoke`
    for (const reason of [true, 12345, ['customer left'], null]) {
      const response = await api('POST', revoke, { token: ALICE, body: { reason } })
      expect(response.status, JSON.stringify(reason)).toBe(400)
      expect(response.body.error.code).toBe('invalid_request')
      expect(response.body.error.message).toMatch(/reason.*must be string/)
    }
    expect((await broker.store.registrations.getMeta(fabrikamMail.registrationId))?.status).toBe('active')

    const tenant = `/admin/api/tenants/${FABRIKAM_TENANT_ID}`
    const label = await api('PATCH', tenant, { token: ALICE, body: { label: 42 } })
    expect(label.status).toBe(400)
    expect(label.body.error.message).toMatch(/label.*must be string/)
    const oneApp = await api('POST', `${tenant}/revoke`, {
      token: ALICE,
      body: { reason: 'app as a list', app: ['ms-graph-mail'] },
    })
    expect(oneApp.status).toBe(400)
    expect(oneApp.body.error.message).toMatch(/app.*must be string/)
    expect((await broker.store.registrations.getMeta(fabrikamMail.registrationId))?.status).toBe('active')
    const tenants = (await api('GET', '/admin/api/tenants?limit=500', { token: ALICE })).body
      .tenants as Json[]
    expect(tenants.find((t) => t.tenantId === FABRIKAM_TENANT_ID)?.label).not.toBe('42')

    // A refused pattern is said in words, not as its regular expression.
    const twoLines = await api('POST', revoke, { token: ALICE, body: { reason: 'two\nlines' } })
    expect(twoLines.body.error.message).toBe(
      'body/reason must be one line of text, not blank, without control characters, line or paragraph separators, bidi controls or lone surrogates',
    )
    const notGuid = await api('GET', '/admin/api/registrations?tenant=contoso', { token: ALICE })
    expect(notGuid.body.error.message).toBe(
      'querystring/tenant must be a GUID (8-4-4-4-12 hexadecimal digits)',
    )

    // Query strings are text: a number there is still read as one.
    const page = await api('GET', '/admin/api/tenants?limit=1', { token: ALICE })
    expect(page.status).toBe(200)
    expect(page.body.tenants).toHaveLength(1)
  })

  it('refuses a field or parameter it does not know, naming it, so a misspelt one never widens a call', async () => {
    // `ap` for `app`: dropped, it would revoke the tenant's registrations of every app.
    const misspelt = await api('POST', `/admin/api/tenants/${FABRIKAM_TENANT_ID}/revoke`, {
      token: ALICE,
      body: { reason: 'one app only', ap: 'ms-defender-atp' },
    })
    expect(misspelt.status).toBe(400)
    expect(misspelt.body.error).toMatchObject({
      code: 'invalid_request',
      message: 'body has an unknown property "ap" (did you mean "app"?)',
    })
    expect((await broker.store.registrations.getMeta(fabrikamMail.registrationId))?.status).toBe('active')

    // `stauts` for `status`: dropped, it would list every status.
    const listing = await api('GET', '/admin/api/registrations?stauts=revoked', { token: ALICE })
    expect(listing.status).toBe(400)
    expect(listing.body.error.message).toBe(
      'querystring has an unknown property "stauts" (did you mean "status"?)',
    )
    const audit = await api('GET', '/admin/api/audit?limt=5', { token: ALICE })
    expect(audit.body.error.message).toBe(
      'querystring has an unknown property "limt" (did you mean "limit"?)',
    )
    const webhook = await api('POST', '/admin/api/webhooks', {
      token: ALICE,
      body: { url: 'https://hooks.example/x', event: ['registration.revoked'] },
    })
    expect(webhook.status).toBe(400)
    expect(webhook.body.error.message).toBe('body has an unknown property "event" (did you mean "events"?)')

    // Any other name (the request chose it, and the message is logged) is not repeated: the
    // message lists the names taken instead.
    for (const name of ['zz_unknown', 'x y\u202e', 'a'.repeat(64)]) {
      const odd = await api('GET', `/admin/api/tenants?${encodeURIComponent(name)}=1`, { token: ALICE })
      expect(odd.status).toBe(400)
      expect(odd.body.error.message).toBe('querystring has an unknown property (it takes app, cursor, limit)')
    }
    // A value outside a list is answered with the list; a body not sent, as missing.
    const status = await api('GET', '/admin/api/registrations?status=activ', { token: ALICE })
    expect(status.body.error.message).toBe('querystring/status must be one of active, needs_consent, revoked')
    const bodiless = await api('POST', `/admin/api/registrations/${fabrikamMail.registrationId}/revoke`, {
      token: ALICE,
    })
    expect(bodiless.status).toBe(400)
    expect(bodiless.body.error.message).toBe(
      'body is missing: send a JSON object, with Content-Type: application/json',
    )
    const none = await api('GET', `/admin/api/registrations/${fabrikamMail.registrationId}?full=1`, {
      token: ALICE,
    })
    expect(none.body.error.message).toBe('querystring takes no properties')
  })

  it('refuses a body sent to an endpoint that takes none (an empty object aside), and does nothing', async () => {
    const before = (await api('GET', '/admin/api/keys/rotation', { token: ALICE })).body
    const rotate = await api('POST', '/admin/api/keys/rotate', { token: ALICE, body: { dryRun: true } })
    expect(rotate.status).toBe(400)
    expect(rotate.body.error).toMatchObject({
      code: 'invalid_request',
      message: 'this endpoint takes no request body (send none, or {})',
    })
    const finish = await api('POST', '/admin/api/upgrade/finish', { token: ALICE, body: [1] })
    expect(finish.status).toBe(400)
    const endpoint = `/admin/api/webhooks/ep_${'0'.repeat(24)}`
    const remove = await api('DELETE', endpoint, { token: ALICE, body: { force: true } })
    expect(remove.status).toBe(400)
    // The empty object reaches the endpoint (here: no such webhook endpoint).
    expect((await api('DELETE', endpoint, { token: ALICE, body: {} })).status).toBe(404)
    // Nothing was started: the rotation's state is as it was.
    expect((await api('GET', '/admin/api/keys/rotation', { token: ALICE })).body).toEqual(before)
  })
})
