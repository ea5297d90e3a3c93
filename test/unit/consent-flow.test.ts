// The consent flow service against a scripted identity provider and the memory store, with a fake
// clock and sleep: proof retries and backoff, phases, and concurrent completions.
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Config } from '../../src/config.js'
import {
  type AdminConsentRequest,
  type CodeRedemption,
  type IdentityProvider,
  type SignInRequest,
  type TokenGrant,
  UpstreamError,
  type VerifiedIdToken,
} from '../../src/entra/types.js'
import { createMetrics } from '../../src/metrics.js'
import { type ConsentFlow, createConsentFlow } from '../../src/services/consent-flow.js'
import { createServices, stopServices } from '../../src/services/create-services.js'
import { createMemoryStore } from '../../src/store/memory.js'
import type { Store } from '../../src/store/types.js'
import { testConfig } from '../support/config.js'

const TID = '7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13'
const ADMIN: VerifiedIdToken = {
  tid: TID,
  oid: '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e01',
  preferredUsername: 'admin@contoso.example',
  name: 'Admin',
  wids: ['62e90394-69f5-4237-9190-012177145e10'],
}
const USER: VerifiedIdToken = { ...ADMIN, oid: '3f6c2a1e-8b4d-4c7a-9e15-0a1b2c3d4e02', wids: [] }
const log = pino({ level: 'silent' }) as unknown as FastifyBaseLogger

/** A scripted identity provider: records requests, answers from queues. */
class ScriptedIdp implements IdentityProvider {
  startDeviceAuthorization(): never {
    throw new Error('the device code grant is not used by these tests')
  }
  pollDeviceAuthorization(): never {
    throw new Error('the device code grant is not used by these tests')
  }
  signIns: SignInRequest[] = []
  consents: AdminConsentRequest[] = []
  redemptions: CodeRedemption[] = []
  idToken: VerifiedIdToken = ADMIN
  refreshToken: string | undefined = 'rt-1'
  /** Outcomes of successive client-credentials calls; the last one repeats. */
  proofs: Array<TokenGrant | UpstreamError> = [{ accessToken: 'at', expiresIn: 3600, scope: '' }]
  proofCalls = 0

  async signInUrl(_app: unknown, request: SignInRequest): Promise<string> {
    this.signIns.push(request)
    return `https://idp.test/organizations/oauth2/v2.0/authorize?state=${request.state}`
  }
  async redeemCode(_app: unknown, redemption: CodeRedemption) {
    this.redemptions.push(redemption)
    return {
      idToken: this.idToken,
      ...(this.refreshToken === undefined ? {} : { refreshToken: this.refreshToken }),
    }
  }
  async adminConsentUrl(_app: unknown, request: AdminConsentRequest): Promise<string> {
    this.consents.push(request)
    return `https://idp.test/${request.tenantId}/v2.0/adminconsent?state=${request.state}`
  }
  async clientCredentials(): Promise<TokenGrant> {
    const outcome = this.proofs[Math.min(this.proofCalls, this.proofs.length - 1)]!
    this.proofCalls++
    if (outcome instanceof UpstreamError) throw outcome
    return outcome
  }
  async refresh(): Promise<TokenGrant> {
    throw new Error('not used')
  }
}

let config: Config
let store: Store
let idp: ScriptedIdp
let flow: ConsentFlow
let now: number
let sleeps: number[]

beforeEach(() => {
  config = testConfig({ authorityUrl: 'https://login.example.test' })
  store = createMemoryStore({ keyRing: config.keyRing })
  idp = new ScriptedIdp()
  now = Date.parse('2026-01-01T00:00:00Z')
  sleeps = []
  flow = createConsentFlow({
    config,
    store,
    idp,
    metrics: createMetrics(),
    clock: () => now,
    // Time passes only through the flow's own waits.
    sleep: async (ms) => {
      sleeps.push(ms)
      now += ms
    },
  })
})

afterEach(async () => {
  await store.close()
})

const unauthorized = () =>
  new UpstreamError('oauth', 'client credentials: AADSTS700016', {
    error: 'unauthorized_client',
    errorCodes: [700016],
    status: 400,
  })

/** Drives an admin consent up to the admin-consent callback; returns what that callback answered. */
async function adminConsent(tenant = TID) {
  const started = await flow.start('ms-graph-mail', undefined, log)
  if (started.kind !== 'redirect') throw new Error('start failed')
  const state = idp.signIns.at(-1)!.state
  const signedIn = await flow.callback(started.flowHandle, { code: 'code-1', state }, log)
  if (signedIn.kind !== 'redirect') return signedIn
  const consentState = idp.consents.at(-1)!.state
  return flow.callback(signedIn.flowHandle, { admin_consent: 'True', tenant, state: consentState }, log)
}

describe('admin consent proof', () => {
  it('retries with doubling delays within the budget, then fails as not effective', async () => {
    idp.proofs = [unauthorized()]
    const outcome = await adminConsent()
    expect(outcome.kind).toBe('failed')
    if (outcome.kind !== 'failed') return
    expect(outcome.failure.reason).toBe('consent_not_effective')
    expect(outcome.failure.status).toBe(503)
    // Budget 5000 ms (test config): 1 s, 2 s, then what is left.
    expect(sleeps).toEqual([1000, 2000, 2000])
    expect(idp.proofCalls).toBe(4)
    expect((await store.registrations.list({})).items).toEqual([])
  })

  it('waits at least what Retry-After asks when throttled', async () => {
    idp.proofs = [
      new UpstreamError('throttled', 'throttled', { status: 429, retryAfterSeconds: 3 }),
      { accessToken: 'at', expiresIn: 3600, scope: '' },
    ]
    const outcome = await adminConsent()
    expect(outcome.kind).toBe('completed')
    expect(sleeps).toEqual([3000])
  })

  it('gives up at once when the broker’s own credentials are refused', async () => {
    idp.proofs = [
      new UpstreamError('oauth', 'invalid_client', { error: 'invalid_client', errorCodes: [7000215] }),
    ]
    const outcome = await adminConsent()
    expect(outcome.kind === 'failed' && outcome.failure.reason).toBe('idp_error')
    expect(idp.proofCalls).toBe(1)
    expect(sleeps).toEqual([])
  })

  it('succeeds once the consent has propagated and creates one admin registration', async () => {
    idp.proofs = [unauthorized(), unauthorized(), { accessToken: 'at', expiresIn: 3600, scope: '' }]
    const outcome = await adminConsent()
    expect(outcome.kind).toBe('completed')
    expect(sleeps).toEqual([1000, 2000])
    const { items } = await store.registrations.list({})
    expect(items).toHaveLength(1)
    expect(items[0]).toMatchObject({ kind: 'admin', tenantId: TID, app: 'ms-graph-mail', status: 'active' })
    if (outcome.kind !== 'completed') return
    const result = await flow.takeResult(outcome.resultHandle)
    expect(result).toMatchObject({ registrationId: items[0]!.id, token: TID, kind: 'admin', reused: false })
    expect(await flow.takeResult(outcome.resultHandle)).toBeNull()
  })

  it('never proves a tenant other than the signed-in one', async () => {
    const outcome = await adminConsent('a9e4f7c2-1b3d-4e5f-8a7b-6c5d4e3f2a10')
    expect(outcome.kind === 'failed' && outcome.failure.reason).toBe('tenant_mismatch')
    expect(idp.proofCalls).toBe(0)
  })

  it('asks for the .default scope of the chosen cloud at the admin-consent step', async () => {
    const started = await flow.start('ms-graph-mail', 'usgov', log)
    expect(started.kind).toBe('redirect')
    if (started.kind !== 'redirect') return
    await flow.callback(started.flowHandle, { code: 'c', state: idp.signIns[0]!.state }, log)
    expect(idp.consents[0]).toMatchObject({
      tenantId: TID,
      scope: 'https://graph.microsoft.us/.default',
      redirectUri: 'http://127.0.0.1:3000/callback',
    })
    expect(idp.signIns[0]).toMatchObject({ scopes: ['openid', 'profile'], prompt: 'select_account' })
  })
})

describe('sign-in phase', () => {
  it('sends PKCE S256 of a verifier that stays server-side, and redeems with it', async () => {
    idp.idToken = USER
    const started = await flow.start('ms-graph-mail-listener', undefined, log)
    if (started.kind !== 'redirect') throw new Error('start failed')
    const signIn = idp.signIns[0]!
    expect(signIn.scopes).toEqual([
      'openid',
      'profile',
      'offline_access',
      'https://graph.microsoft.com/Mail.ReadWrite',
      'https://graph.microsoft.com/Mail.Send',
      'https://graph.microsoft.com/User.Read',
    ])
    expect(started.flowHandle).not.toContain(signIn.state)
    await flow.callback(started.flowHandle, { code: 'the-code', state: signIn.state }, log)
    const redemption = idp.redemptions[0]!
    expect(createHash('sha256').update(redemption.codeVerifier).digest('base64url')).toBe(
      signIn.codeChallenge,
    )
    expect(redemption).toMatchObject({ code: 'the-code', nonce: signIn.nonce, scopes: signIn.scopes })
  })

  it('a missing or malformed flow handle is session_missing; an unknown flow is expired', async () => {
    expect(await flow.callback(undefined, { code: 'c', state: 's' }, log)).toMatchObject({
      kind: 'failed',
      failure: { reason: 'session_missing', app: undefined },
    })
    expect(await flow.callback('not a handle', { code: 'c', state: 's' }, log)).toMatchObject({
      kind: 'failed',
      failure: { reason: 'session_missing' },
    })
    const unknown = await flow.callback(`ms-graph-mail.${'A'.repeat(43)}`, { code: 'c', state: 's' }, log)
    expect(unknown).toMatchObject({ kind: 'failed', failure: { reason: 'session_expired' } })
    if (unknown.kind === 'failed') expect(unknown.failure.app?.slug).toBe('ms-graph-mail')
  })
})

describe('delegated consent', () => {
  it('two concurrent completions for one user end in one registration with one Key', async () => {
    idp.idToken = USER
    const flows = await Promise.all([1, 2].map(() => flow.start('ms-graph-mail-listener', undefined, log)))
    const outcomes = await Promise.all(
      flows.map((started, i) => {
        if (started.kind !== 'redirect') throw new Error('start failed')
        return flow.callback(started.flowHandle, { code: `c${i}`, state: idp.signIns[i]!.state }, log)
      }),
    )
    const results = await Promise.all(
      outcomes.map((o) => (o.kind === 'completed' ? flow.takeResult(o.resultHandle) : null)),
    )
    expect(results.every((r) => r !== null)).toBe(true)
    expect(results[0]!.registrationId).toBe(results[1]!.registrationId)
    expect(results.map((r) => r!.reused).sort()).toEqual([false, true])
    // The one that created the registration shows its Key; the renewal shows none.
    const stored = await store.registrations.get(results[0]!.registrationId)
    expect(results.find((r) => r?.reused === false)).toMatchObject({ key: stored?.secrets.key })
    expect(results.find((r) => r?.reused === true)).not.toHaveProperty('key')
    expect((await store.registrations.list({})).items).toHaveLength(1)
  })

  /** A delegated consent as USER to its completion; the result handle. */
  async function delegatedConsent(): Promise<string> {
    idp.idToken = USER
    const started = await flow.start('ms-graph-mail-listener', undefined, log)
    if (started.kind !== 'redirect') throw new Error('start failed')
    const state = idp.signIns.at(-1)!.state
    const outcome = await flow.callback(started.flowHandle, { code: 'c', state }, log)
    if (outcome.kind !== 'completed') throw new Error(`consent ended ${outcome.kind}`)
    return outcome.resultHandle
  }

  /** The one-time result as the store keeps it (unsealed) under `prefix`, before the page takes it. */
  const storedResult = (handle: string, prefix = 'consent:result:') =>
    store.ephemeral.get(`${prefix}${createHash('sha256').update(handle).digest('hex')}`, {
      secret: true,
    })

  it('a renewal keeps no Key in its one-time result; a new registration keeps the one it made', async () => {
    const firstHandle = await delegatedConsent()
    // Under its own prefix too: the release before would show the Key without marking it shown.
    expect(await storedResult(firstHandle)).toBeNull()
    expect(await storedResult(firstHandle, 'consent:result-unshown:')).not.toBeNull()
    const first = await flow.takeResult(firstHandle)
    if (first === null || first.reused) throw new Error('the first consent must create the registration')
    const stored = await store.registrations.get(first.registrationId)
    expect(first.key).toBe(stored?.secrets.key)

    const againHandle = await delegatedConsent()
    // Under its own prefix: the release before, reading only consent:result:, finds no result
    // (and says "already shown") rather than rendering one with an empty Key to paste.
    expect(await storedResult(againHandle)).toBeNull()
    expect(await flow.hasResult(againHandle)).toBe(true)
    const raw = await storedResult(againHandle, 'consent:result-renewed:')
    expect(raw).not.toBeNull()
    expect(raw).not.toContain(first.key)
    expect(JSON.parse(raw!)).not.toHaveProperty('key')
    const again = await flow.takeResult(againHandle)
    expect(again).toMatchObject({ registrationId: first.registrationId, id: first.id, reused: true })
    expect(again).not.toHaveProperty('key')
    // The renewal changed nothing of the Key the integration holds.
    expect((await store.registrations.get(first.registrationId))?.secrets.key).toBe(first.key)
  })
})

describe('delegated consent: a Key never shown', () => {
  /** A delegated consent as USER: the callback's outcome (throws what the callback throws). */
  async function consentAsUser() {
    idp.idToken = USER
    const started = await flow.start('ms-graph-mail-listener', undefined, log)
    if (started.kind !== 'redirect') throw new Error('start failed')
    return flow.callback(started.flowHandle, { code: 'c', state: idp.signIns.at(-1)!.state }, log)
  }

  async function completedHandle(): Promise<string> {
    const outcome = await consentAsUser()
    if (outcome.kind !== 'completed') throw new Error(`consent ended ${outcome.kind}`)
    return outcome.resultHandle
  }

  /** Makes the next write of a one-time result fail, as a Redis blip would. */
  function failNextResultWrite(): void {
    const put = store.ephemeral.put.bind(store.ephemeral)
    let fail = true
    store.ephemeral.put = async (key, value, ttlMs, options) => {
      if (fail && key.startsWith('consent:result')) {
        fail = false
        throw new Error('ETIMEDOUT (a Redis blip)')
      }
      return put(key, value, ttlMs, options)
    }
  }

  const onlyRegistration = async () => {
    const { items } = await store.registrations.list({})
    expect(items).toHaveLength(1)
    return (await store.registrations.get(items[0]!.id))!
  }

  it('a result that could not be stored: the next consent issues a new Key and shows it once', async () => {
    failNextResultWrite()
    await expect(consentAsUser()).rejects.toThrow(/blip/)
    const lost = await onlyRegistration()
    expect(lost.registration.unshownKey).toBeDefined()

    const retry = await flow.takeResult(await completedHandle())
    if (retry === null || retry.reused) throw new Error('the retry must show a Key')
    const renewed = await onlyRegistration()
    expect(retry.registrationId).toBe(lost.registration.id)
    // A new Key (the one never shown is discarded), the one the registration now holds, marked shown.
    expect(retry.key).not.toBe(lost.secrets.key)
    expect(retry.key).toBe(renewed.secrets.key)
    expect(renewed.registration.unshownKey).toBeUndefined()

    // Shown once: the consent after that is a renewal again, and changes nothing of the Key.
    const third = await flow.takeResult(await completedHandle())
    expect(third).toMatchObject({ registrationId: lost.registration.id, reused: true })
    expect(third).not.toHaveProperty('key')
    expect((await onlyRegistration()).secrets.key).toBe(retry.key)
  })

  it('a result stored but never taken (the tab closed, the page failed): the next consent issues a new Key', async () => {
    const abandoned = await completedHandle()
    const first = await onlyRegistration()
    const retry = await flow.takeResult(await completedHandle())
    if (retry === null || retry.reused) throw new Error('the retry must show a Key')
    expect(retry.key).not.toBe(first.secrets.key)
    // The abandoned page, taken now, shows no Key: the one it held is no longer the registration's.
    const late = await flow.takeResult(abandoned)
    expect(late).toMatchObject({ registrationId: first.registration.id, reused: true })
    expect(late).not.toHaveProperty('key')
    expect((await onlyRegistration()).secrets.key).toBe(retry.key)
  })

  it('two tabs: the page taken first shows its Key, and the other tab then shows none', async () => {
    const [a, b] = [await completedHandle(), await completedHandle()]
    const [first, second] = [await flow.takeResult(b), await flow.takeResult(a)]
    if (first === null || first.reused) throw new Error('the later consent holds the live Key')
    expect(first.key).toBe((await onlyRegistration()).secrets.key)
    // The other tab's page says its Key was replaced (not that the integration keeps a Key it never had).
    expect(second).toMatchObject({ reused: true, keyWithdrawn: true })
    expect(second).not.toHaveProperty('key')
    // Once one page showed a Key, no consent replaces it: the next one is a plain renewal.
    const again = await flow.takeResult(await completedHandle())
    expect(again).toMatchObject({ reused: true })
    expect(again).not.toHaveProperty('keyWithdrawn')
    expect((await onlyRegistration()).secrets.key).toBe(first.key)
  })

  it('a page that fails to mark its Key shown shows nothing; the next consent issues a new Key', async () => {
    const handle = await completedHandle()
    const update = store.registrations.update.bind(store.registrations)
    store.registrations.update = async () => {
      throw new Error('ETIMEDOUT (a Redis blip)')
    }
    await expect(flow.takeResult(handle)).rejects.toThrow(/blip/)
    store.registrations.update = update
    const unshown = await onlyRegistration()
    expect(unshown.registration.unshownKey).toBeDefined()
    const retry = await flow.takeResult(await completedHandle())
    if (retry === null || retry.reused) throw new Error('the retry must show a Key')
    expect(retry.key).not.toBe(unshown.secrets.key)
  })

  it('a registration of the previous release (no marker) counts as shown: a renewal, no Key', async () => {
    const existing = await store.registrations.create(
      {
        id: '0b6c0b5e-54a4-4c1c-9a4a-8f2f3f6a1d01',
        app: 'ms-graph-mail-listener',
        cloud: 'global',
        tenantId: TID,
        kind: 'delegated',
        userOid: USER.oid,
        status: 'active',
        createdAt: '2025-12-01T00:00:00.000Z',
        updatedAt: '2025-12-01T00:00:00.000Z',
        consentedAt: '2025-12-01T00:00:00.000Z',
      },
      { key: 'bGl2ZSBrZXkgb2YgdGhlIHByZXZpb3VzIHJlbGVhc2UhIQ==', refreshToken: 'rt-old' },
    )
    if (!existing.created) throw new Error('not created')
    const again = await flow.takeResult(await completedHandle())
    expect(again).toMatchObject({ registrationId: existing.registration.id, reused: true })
    expect(again).not.toHaveProperty('key')
    expect((await onlyRegistration()).secrets.key).toBe('bGl2ZSBrZXkgb2YgdGhlIHByZXZpb3VzIHJlbGVhc2UhIQ==')
  })
})

describe('admin consent proof: graceful shutdown', () => {
  /** Microsoft has not answered yet: each attempt hangs until the broker gives up on it. */
  class HangingIdp extends ScriptedIdp {
    override async clientCredentials(
      _app?: unknown,
      _tid?: string,
      _scope?: string,
      signal?: AbortSignal,
    ): Promise<TokenGrant> {
      this.proofCalls++
      return new Promise((_, reject) =>
        signal?.addEventListener('abort', () => reject(new UpstreamError('timeout', 'aborted'))),
      )
    }
  }

  it('a stopping instance hands its running proof over; the waiting page resumes it on another instance', async () => {
    const hanging = new HangingIdp()
    const stopping = createServices({
      config,
      store,
      idp: hanging,
      metrics: createMetrics(),
      clock: () => now,
      log,
    })
    const started = await stopping.consentFlow.start('ms-graph-mail', undefined, log)
    if (started.kind !== 'redirect') throw new Error('start failed')
    const signedIn = await stopping.consentFlow.callback(
      started.flowHandle,
      { code: 'code-1', state: hanging.signIns.at(-1)!.state },
      log,
    )
    if (signedIn.kind !== 'redirect') throw new Error('sign-in failed')
    const consentState = hanging.consents.at(-1)!.state
    const proving = await stopping.consentFlow.callback(
      signedIn.flowHandle,
      { admin_consent: 'True', tenant: TID, state: consentState },
      log,
    )
    if (proving.kind !== 'proving') throw new Error(`the callback answered ${proving.kind}`)
    expect(hanging.proofCalls).toBe(1)

    // SIGTERM: the app closes and stops its services while Microsoft still hasn't answered.
    await stopServices(stopping)
    expect(await store.registrations.countByStatus()).toMatchObject({ active: 0 })
    // The stopping instance resumes nothing, even when polled.
    expect(await stopping.consentFlow.proofStatus(proving.flowHandle, log)).toEqual({ kind: 'pending' })

    // Long after the stopped run's deadline, the page's next poll lands on another instance, which
    // resumes the proof (Microsoft now answers) instead of giving up as consent_not_effective.
    now += 10 * 60_000
    expect(await flow.proofStatus(proving.flowHandle, log)).toEqual({ kind: 'pending' })
    let status = await flow.proofStatus(proving.flowHandle, log)
    for (let polls = 0; status.kind === 'pending' && polls < 100; polls++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
      status = await flow.proofStatus(proving.flowHandle, log)
    }
    if (status.kind !== 'completed') throw new Error(`the resumed proof ended ${JSON.stringify(status)}`)
    expect(idp.proofCalls).toBe(1)
    const result = await flow.takeResult(status.resultHandle)
    if (result === null || result.reused) throw new Error('the result must show a new Key')
    const { items } = await store.registrations.list({})
    expect(items).toHaveLength(1)
    expect(items[0]).toMatchObject({
      id: result.registrationId,
      tenantId: TID,
      kind: 'admin',
      status: 'active',
    })
    expect((await store.registrations.get(result.registrationId))?.secrets.key).toBe(result.key)
  })
})

// Unit companions of the end-to-end checks (test/integration/consent.test.ts): the callback's
// `state`, its one use, and the admin role, against the service alone.
describe('callback checks', () => {
  const PRIVILEGED_ROLE_ADMIN = 'e8611ab8-c189-46e8-94e1-60213ab1f814'
  const CLOUD_APP_ADMIN = '158c047a-c907-4556-b7ef-446551a6b5f7'

  async function startSignIn(slug = 'ms-graph-mail') {
    const started = await flow.start(slug, undefined, log)
    if (started.kind !== 'redirect') throw new Error('start failed')
    return { handle: started.flowHandle, state: idp.signIns.at(-1)!.state }
  }

  it('a sign-in callback whose state is wrong or missing is state_mismatch: no code is redeemed', async () => {
    const wrong = await startSignIn()
    expect(
      await flow.callback(wrong.handle, { code: 'c', state: `${wrong.state.slice(0, -1)}x` }, log),
    ).toMatchObject({ kind: 'failed', failure: { reason: 'state_mismatch', status: 403 } })
    const missing = await startSignIn()
    expect(await flow.callback(missing.handle, { code: 'c' }, log)).toMatchObject({
      kind: 'failed',
      failure: { reason: 'state_mismatch', status: 403 },
    })
    expect(idp.redemptions).toEqual([])
    expect(idp.consents).toEqual([])
  })

  it('an admin-consent callback whose state is wrong is state_mismatch: no proof, no registration', async () => {
    const { handle, state } = await startSignIn()
    const signedIn = await flow.callback(handle, { code: 'c', state }, log)
    if (signedIn.kind !== 'redirect') throw new Error('sign-in failed')
    const forged = await flow.callback(
      signedIn.flowHandle,
      { admin_consent: 'True', tenant: TID, state: state /* the sign-in's, not this step's */ },
      log,
    )
    expect(forged).toMatchObject({ kind: 'failed', failure: { reason: 'state_mismatch', status: 403 } })
    expect(idp.proofCalls).toBe(0)
    expect((await store.registrations.list({})).items).toEqual([])
  })

  it('state is decided before error: a cancelled consent with its state is cancelled', async () => {
    const { handle, state } = await startSignIn()
    const outcome = await flow.callback(
      handle,
      { error: 'access_denied', error_description: 'AADSTS65004: User declined to consent', state },
      log,
    )
    expect(outcome).toMatchObject({
      kind: 'failed',
      failure: { reason: 'cancelled', status: 400, providerMessage: 'AADSTS65004: User declined to consent' },
    })
    expect(idp.redemptions).toEqual([])
  })

  it('what the provider said is shown without controls, bidi controls or lone surrogates, bounded', async () => {
    const { handle, state } = await startSignIn()
    const outcome = await flow.callback(
      handle,
      {
        error: 'access_denied',
        error_description: `AADSTS50105: \u202eContact\u0000\u001b[31m evil\r\nTrace ID: 1\ud800${'x'.repeat(1000)}`,
        state,
      },
      log,
    )
    if (outcome.kind !== 'failed') throw new Error('expected a failure')
    const shown = outcome.failure.providerMessage ?? ''
    expect(shown.startsWith('AADSTS50105: Contact[31m evil Trace ID: 1xxx')).toBe(true)
    expect(shown).not.toMatch(/[\p{Cc}\u202e\p{Cs}]/u)
    expect(Array.from(shown)).toHaveLength(400)
  })

  it.each([
    ['markup', '<zz>'],
    ['a lone %', '%'],
    ['an emoji', '😀'],
    ['upper case', 'Access_Denied'],
    ['a space', 'access denied'],
    ['too long', `a${'_b'.repeat(40)}`],
  ])(
    'an error that is no OAuth error code (%s) is invalid_callback (400), its text not shown',
    async (_name, error) => {
      const { handle, state } = await startSignIn()
      const outcome = await flow.callback(
        handle,
        { error, error_description: 'Call +1 555 0100', state },
        log,
      )
      expect(outcome).toMatchObject({ kind: 'failed', failure: { reason: 'invalid_callback', status: 400 } })
      expect(outcome.kind === 'failed' && outcome.failure.providerMessage).toBe(undefined)
      expect(idp.redemptions).toEqual([])
    },
  )

  it.each([
    ['access_denied', 'cancelled', 400],
    ['server_error', 'idp_unavailable', 503],
    ['temporarily_unavailable', 'idp_unavailable', 503],
    ['consent_required', 'idp_error', 502],
    ['invalid_request', 'idp_error', 502],
  ])('the provider code %s keeps its answer (%s, %i)', async (error, reason, status) => {
    const { handle, state } = await startSignIn()
    const outcome = await flow.callback(handle, { error, state }, log)
    expect(outcome).toMatchObject({ kind: 'failed', failure: { reason, status, providerCode: error } })
  })

  it('an error without the flow’s state is state_mismatch: the flow goes on, the text is not shown', async () => {
    const { handle, state } = await startSignIn()
    const forged = await flow.callback(
      handle,
      { error: 'access_denied', error_description: 'Call +1 555 0100 to restore access' },
      log,
    )
    expect(forged).toMatchObject({ kind: 'failed', flowKept: true, failure: { reason: 'state_mismatch' } })
    expect(forged.kind === 'failed' && forged.failure.providerMessage).toBe(undefined)
    // The browser's own flow still completes.
    expect((await flow.callback(handle, { code: 'c', state }, log)).kind).toBe('redirect')
  })

  it('a sign-in callback replayed is refused (409): the code is redeemed once', async () => {
    const { handle, state } = await startSignIn()
    const first = await flow.callback(handle, { code: 'c', state }, log)
    expect(first.kind).toBe('redirect')
    const again = await flow.callback(handle, { code: 'c', state }, log)
    expect(again).toMatchObject({ kind: 'failed', failure: { reason: 'replayed', status: 409 } })
    expect(idp.redemptions).toHaveLength(1)
    expect(idp.consents).toHaveLength(1)
  })

  it('an admin-consent callback replayed is refused (409): one proof, one registration', async () => {
    const { handle, state } = await startSignIn()
    const signedIn = await flow.callback(handle, { code: 'c', state }, log)
    if (signedIn.kind !== 'redirect') throw new Error('sign-in failed')
    const query = { admin_consent: 'True', tenant: TID, state: idp.consents.at(-1)!.state }
    expect((await flow.callback(signedIn.flowHandle, query, log)).kind).toBe('completed')
    expect(await flow.callback(signedIn.flowHandle, query, log)).toMatchObject({
      kind: 'failed',
      failure: { reason: 'replayed', status: 409 },
    })
    expect(idp.proofCalls).toBe(1)
    expect((await store.registrations.list({})).items).toHaveLength(1)
  })

  it('a callback with a wrong state leaves the flow alone: the right state still completes it', async () => {
    const { handle, state } = await startSignIn()
    expect(await flow.callback(handle, { code: 'c', state: 'guess' }, log)).toMatchObject({
      kind: 'failed',
      flowKept: true,
      failure: { reason: 'state_mismatch' },
    })
    expect(idp.redemptions).toEqual([])
    expect((await flow.callback(handle, { code: 'c', state }, log)).kind).toBe('redirect')
    expect(idp.redemptions).toHaveLength(1)
  })

  it('a failed callback of the flow (its state matched) uses the flow up: a retry is a replay', async () => {
    const { handle, state } = await startSignIn()
    await flow.callback(handle, { error: 'access_denied', state }, log)
    expect(await flow.callback(handle, { code: 'c', state }, log)).toMatchObject({
      kind: 'failed',
      failure: { reason: 'replayed' },
    })
    expect(idp.redemptions).toEqual([])
  })

  it.each([
    ['no directory role', [] as string[]],
    ['Cloud Application Administrator (not in ADMIN_ROLE_IDS)', [CLOUD_APP_ADMIN]],
  ])(
    'admin consent signed in with %s is not_admin (403): never sent to admin consent',
    async (_label, wids) => {
      idp.idToken = { ...ADMIN, wids }
      const { handle, state } = await startSignIn()
      const outcome = await flow.callback(handle, { code: 'c', state }, log)
      expect(outcome).toMatchObject({ kind: 'failed', failure: { reason: 'not_admin', status: 403 } })
      expect(idp.consents).toEqual([])
      expect(idp.proofCalls).toBe(0)
      expect((await store.registrations.list({})).items).toEqual([])
    },
  )

  it('a configured admin role goes on to admin consent, whatever the case of its GUID', async () => {
    idp.idToken = { ...ADMIN, wids: [PRIVILEGED_ROLE_ADMIN.toUpperCase()] }
    const { handle, state } = await startSignIn()
    const outcome = await flow.callback(handle, { code: 'c', state }, log)
    expect(outcome.kind).toBe('redirect')
    expect(idp.consents).toMatchObject([{ tenantId: TID }])
  })

  it('the tenant self-service sign-in applies the same admin-role rule', async () => {
    idp.idToken = USER
    const started = await flow.start('ms-graph-mail', undefined, log, 'manage')
    if (started.kind !== 'redirect') throw new Error('start failed')
    const outcome = await flow.callback(started.flowHandle, { code: 'c', state: idp.signIns[0]!.state }, log)
    expect(outcome).toMatchObject({ kind: 'failed', failure: { reason: 'not_admin', purpose: 'manage' } })
    idp.idToken = ADMIN
    const admin = await flow.start('ms-graph-mail', undefined, log, 'manage')
    if (admin.kind !== 'redirect') throw new Error('start failed')
    expect(
      await flow.callback(admin.flowHandle, { code: 'c', state: idp.signIns[1]!.state }, log),
    ).toMatchObject({ kind: 'manage-signed-in', app: 'ms-graph-mail', user: { tid: TID, oid: ADMIN.oid } })
  })
})
