// The emulator's single-tenant app registrations and device code flow, as Entra behaves: public
// client flows, the device-code grant's polling errors, and the refusals a customer's own app meets.
import { decodeJwt } from 'jose'
import { describe, expect, it } from 'vitest'
import {
  CONTOSO_ADMIN,
  CONTOSO_TENANT_ID,
  CONTOSO_USER,
  FABRIKAM_TENANT_ID,
} from '../../emulator/demo-data.js'
import { useEmulator } from '../support/emulator.js'
import { approveDeviceCode, completeAtEmulator } from '../support/emulator-driver.js'

type Json = Record<string, unknown>

const emu = useEmulator({ resetEach: true })
const GRAPH = 'https://graph.microsoft.com'
const REDIRECT = 'http://127.0.0.1:8765/callback'
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'

async function registerApp(
  body: Json,
  tid = CONTOSO_TENANT_ID,
): Promise<{ clientId: string; clientSecret?: string }> {
  const res = await fetch(`${emu.url}/_emulator/tenants/${tid}/apps`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  expect(res.status).toBe(201)
  return (await res.json()) as { clientId: string; clientSecret?: string }
}

async function form(path: string, fields: Record<string, string>): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${emu.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  })
  return { status: res.status, body: (await res.json()) as Json }
}

const errorCodes = (body: Json) => body.error_codes as number[]

describe('app registrations made at run time', () => {
  it('answers a client id and secret for a confidential app, only a client id for a public client', async () => {
    const confidential = await registerApp({ redirectUris: [REDIRECT], allowPublicClient: false })
    expect(confidential.clientId).toMatch(/^[0-9a-f-]{36}$/)
    expect(typeof confidential.clientSecret).toBe('string')
    const publicApp = await registerApp({ redirectUris: [], allowPublicClient: true })
    expect(publicApp).toEqual({ clientId: publicApp.clientId })
    const bad = await fetch(`${emu.url}/_emulator/tenants/${CONTOSO_TENANT_ID}/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirectUris: ['not a url'] }),
    })
    expect(bad.status).toBe(400)
  })

  it('lives in its own tenant only: 700016 in another tenant, 50194 at /organizations', async () => {
    const app = await registerApp({ redirectUris: [REDIRECT], allowPublicClient: false })
    const credentials = {
      grant_type: 'client_credentials',
      client_id: app.clientId,
      client_secret: app.clientSecret!,
      scope: `${GRAPH}/.default`,
    }
    const other = await form(`/${FABRIKAM_TENANT_ID}/oauth2/v2.0/token`, credentials)
    expect(other.status).toBe(400)
    expect(errorCodes(other.body)).toEqual([700016])
    const authorize = new URL(`${emu.url}/organizations/oauth2/v2.0/authorize`)
    authorize.search = new URLSearchParams({
      client_id: app.clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'openid',
    }).toString()
    const page = await fetch(authorize)
    expect(page.status).toBe(400)
    expect(await page.text()).toContain('AADSTS50194')
  })

  it('checks the redirect URI (50011), the secret (7000215) and configured permissions (65001; app-only tokens without roles)', async () => {
    const app = await registerApp({
      redirectUris: [REDIRECT],
      allowPublicClient: false,
      permissions: [{ resource: GRAPH, delegated: ['User.Read'] }],
    })
    const authorize = (redirect: string, scope: string) => {
      const url = new URL(`${emu.url}/${CONTOSO_TENANT_ID}/oauth2/v2.0/authorize`)
      url.search = new URLSearchParams({
        client_id: app.clientId,
        redirect_uri: redirect,
        response_type: 'code',
        scope,
      }).toString()
      return url.toString()
    }
    const mismatch = await fetch(authorize('https://broker.example/callback', 'openid'))
    expect(await mismatch.text()).toContain('AADSTS50011')
    const wrongSecret = await form(`/${CONTOSO_TENANT_ID}/oauth2/v2.0/token`, {
      grant_type: 'client_credentials',
      client_id: app.clientId,
      client_secret: 'wrong',
      scope: `${GRAPH}/.default`,
    })
    expect(errorCodes(wrongSecret.body)).toEqual([7000215])
    const back = await completeAtEmulator(authorize(REDIRECT, `openid offline_access ${GRAPH}/Mail.Read`), {
      username: CONTOSO_USER.username,
    })
    expect(back.searchParams.get('error')).toBe('consent_required')
    expect(back.searchParams.get('error_description')).toContain('AADSTS65001')
    // Like Entra: in its own tenant the app gets an app-only token, with no roles when it has no
    // application permission configured (and consented).
    await fetch(`${emu.url}/_emulator/tenants/${CONTOSO_TENANT_ID}/admin-consent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ clientId: app.clientId }),
    })
    const appOnly = await form(`/${CONTOSO_TENANT_ID}/oauth2/v2.0/token`, {
      grant_type: 'client_credentials',
      client_id: app.clientId,
      client_secret: app.clientSecret!,
      scope: `${GRAPH}/.default`,
    })
    expect(appOnly.status).toBe(200)
    expect(decodeJwt(appOnly.body.access_token as string).roles).toBeUndefined()
  })
})

describe('device code flow', () => {
  async function start(clientId: string, scope = `openid profile offline_access ${GRAPH}/Mail.ReadWrite`) {
    const res = await form(`/${CONTOSO_TENANT_ID}/oauth2/v2.0/devicecode`, { client_id: clientId, scope })
    expect(res.status).toBe(200)
    return res.body as {
      device_code: string
      user_code: string
      verification_uri: string
      interval: number
      expires_in: number
    }
  }
  const poll = (clientId: string, deviceCode: string) =>
    form(`/${CONTOSO_TENANT_ID}/oauth2/v2.0/token`, {
      grant_type: DEVICE_GRANT,
      client_id: clientId,
      device_code: deviceCode,
    })
  const advance = (advanceSec: number) =>
    fetch(`${emu.url}/_emulator/clock`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ advanceSec }),
    })

  it('is pending, then slow_down when polled too fast, then the user’s tokens once', async () => {
    const app = await registerApp({ redirectUris: [], allowPublicClient: true })
    const started = await start(app.clientId)
    expect(started.interval).toBe(5)
    expect(started.expires_in).toBe(900)
    expect(started.user_code).toMatch(/^[A-Z]{9}$/)
    expect((await poll(app.clientId, started.device_code)).body.error).toBe('authorization_pending')
    expect((await poll(app.clientId, started.device_code)).body.error).toBe('slow_down')
    const approved = await approveDeviceCode(started.verification_uri, started.user_code.toLowerCase(), {
      username: CONTOSO_USER.username,
    })
    expect(approved.status).toBe(200)
    expect(approved.text).toContain('You may now close this window')
    await advance(6)
    const tokens = await poll(app.clientId, started.device_code)
    expect(tokens.status).toBe(200)
    expect(typeof tokens.body.refresh_token).toBe('string')
    const claims = decodeJwt(tokens.body.access_token as string)
    expect(claims.tid).toBe(CONTOSO_TENANT_ID)
    expect(claims.appid).toBe(app.clientId)
    expect(claims.scp).toBe('Mail.ReadWrite')
    await advance(6)
    expect((await poll(app.clientId, started.device_code)).body.error).toBe('invalid_grant')
    // A public client refreshes without a secret.
    const refreshed = await form(`/${CONTOSO_TENANT_ID}/oauth2/v2.0/token`, {
      grant_type: 'refresh_token',
      client_id: app.clientId,
      refresh_token: tokens.body.refresh_token as string,
      scope: `${GRAPH}/.default offline_access`,
    })
    expect(refreshed.status).toBe(200)
  })

  it('answers authorization_declined, expired_token, bad_verification_code and, without public client flows, 7000218', async () => {
    const app = await registerApp({ redirectUris: [], allowPublicClient: true })
    const declined = await start(app.clientId)
    const denied = await approveDeviceCode(declined.verification_uri, declined.user_code, {
      username: CONTOSO_ADMIN.username,
      decision: 'deny',
    })
    expect(denied.text).toContain('AADSTS65004')
    expect((await poll(app.clientId, declined.device_code)).body.error).toBe('authorization_declined')

    const expiring = await start(app.clientId)
    await advance(901)
    expect((await poll(app.clientId, expiring.device_code)).body.error).toBe('expired_token')
    const late = await approveDeviceCode(expiring.verification_uri, expiring.user_code, {
      username: CONTOSO_USER.username,
    })
    expect(late.status).toBe(400)
    expect(late.text).toContain("That code didn't work")

    expect((await poll(app.clientId, 'DAQABAAEAAAD.nope')).body.error).toBe('bad_verification_code')

    const confidential = await registerApp({ redirectUris: [REDIRECT], allowPublicClient: false })
    const noPublic = await start(confidential.clientId)
    const refused = await poll(confidential.clientId, noPublic.device_code)
    expect(refused.status).toBe(401)
    expect(refused.body.error).toBe('invalid_client')
    expect(errorCodes(refused.body)).toEqual([7000218])
  })
})
