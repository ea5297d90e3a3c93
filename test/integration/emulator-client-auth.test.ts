// The emulator authenticates clients as Entra does: certificate-signed client assertions (signature,
// x5t#S256 or x5t, aud = the token endpoint, iss = sub = client id, exp/nbf, jti once), federated
// tokens (issuer, subject, audience, the issuer's JWKS), secrets (wrong, expired), each refusal
// with its AADSTS code; credentials added and removed through the hook; client_auth counted.
import { createPrivateKey, randomUUID, X509Certificate } from 'node:crypto'
import { SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { CONTOSO_TENANT_ID } from '../../emulator/demo-data.js'
import {
  addEmulatorCredential,
  FederationIssuer,
  removeEmulatorCredential,
  selfSignedCertificate,
} from '../../emulator/dev-credentials.js'
import { useEmulator } from '../support/emulator.js'

const MAIL = '0b1e6a52-7c3d-4f8e-9a10-000000000001'
const emulator = useEmulator({ resetEach: true })
const endpoint = () => `${emulator.url}/${CONTOSO_TENANT_ID}/oauth2/v2.0/token`
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

async function adminConsent(): Promise<void> {
  const response = await fetch(`${emulator.url}/_emulator/tenants/${CONTOSO_TENANT_ID}/admin-consent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ clientId: MAIL }),
  })
  expect(response.status, await response.text()).toBe(200)
}

async function clientCredentials(auth: Record<string, string>) {
  const response = await fetch(endpoint(), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      client_id: MAIL,
      grant_type: 'client_credentials',
      scope: 'https://graph.microsoft.com/.default',
      ...auth,
    }),
  })
  return {
    status: response.status,
    body: (await response.json()) as { error?: string; error_codes?: number[]; access_token?: string },
  }
}

type Claims = { aud?: string; iss?: string; sub?: string; jti?: string; nbf?: number; exp?: number }

async function assertion(pem: string, header: Record<string, string>, claims: Claims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  const payload = {
    aud: endpoint(),
    iss: MAIL,
    sub: MAIL,
    jti: randomUUID(),
    nbf: now,
    iat: now,
    exp: now + 300,
    ...claims,
  }
  return new SignJWT(payload).setProtectedHeader({ alg: 'PS256', ...header }).sign(createPrivateKey(pem))
}

const x5tS256 = (certificate: ReturnType<typeof selfSignedCertificate>) =>
  Buffer.from(
    new X509Certificate(certificate.certificatePem).fingerprint256.replaceAll(':', ''),
    'hex',
  ).toString('base64url')

async function stats() {
  return (
    (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as { client_auth: Record<string, number> }
  ).client_auth
}

describe('client assertions', () => {
  it('accepts a registered certificate and refuses what Entra refuses, with its AADSTS code', async () => {
    await adminConsent()
    const cert = selfSignedCertificate()
    const other = selfSignedCertificate()
    await addEmulatorCredential(emulator.url, MAIL, { certificate: cert.certificatePem })
    const header = { 'x5t#S256': x5tS256(cert) }

    const ok = await assertion(cert.privateKeyPem, header)
    const accepted = await clientCredentials({ client_assertion_type: JWT_BEARER, client_assertion: ok })
    expect(accepted.status).toBe(200)
    expect(accepted.body.access_token).toBeTruthy()
    // The same assertion again: its jti was used.
    const replayed = await clientCredentials({ client_assertion_type: JWT_BEARER, client_assertion: ok })
    expect(replayed).toMatchObject({ status: 401, body: { error: 'invalid_client', error_codes: [700023] } })

    const cases: Array<[string, Promise<string>, number]> = [
      ['unregistered certificate', assertion(other.privateKeyPem, { 'x5t#S256': x5tS256(other) }), 700027],
      ['signed by another key', assertion(other.privateKeyPem, header), 700027],
      [
        'aud = the issuer, not the token endpoint',
        assertion(cert.privateKeyPem, header, { aud: `${emulator.url}/${CONTOSO_TENANT_ID}/v2.0` }),
        700023,
      ],
      ['sub is not the client', assertion(cert.privateKeyPem, header, { sub: 'someone-else' }), 700023],
      [
        'expired',
        assertion(cert.privateKeyPem, header, {
          exp: Math.floor(Date.now() / 1000) - 3600,
          nbf: Math.floor(Date.now() / 1000) - 4000,
        }),
        700024,
      ],
      [
        'not yet valid',
        assertion(cert.privateKeyPem, header, {
          nbf: Math.floor(Date.now() / 1000) + 3600,
          exp: Math.floor(Date.now() / 1000) + 4000,
        }),
        700024,
      ],
    ]
    for (const [what, pending, code] of cases) {
      const refused = await clientCredentials({
        client_assertion_type: JWT_BEARER,
        client_assertion: await pending,
      })
      expect(refused, what).toMatchObject({
        status: 401,
        body: { error: 'invalid_client', error_codes: [code] },
      })
    }
    // RS256 with the SHA-1 thumbprint (x5t), the older scheme.
    const rs256 = await new SignJWT({ aud: endpoint(), iss: MAIL, sub: MAIL, jti: randomUUID() })
      .setProtectedHeader({ alg: 'RS256', x5t: Buffer.from(cert.thumbprint, 'hex').toString('base64url') })
      .setIssuedAt()
      .setNotBefore('0s')
      .setExpirationTime('5m')
      .sign(createPrivateKey(cert.privateKeyPem))
    expect(
      (await clientCredentials({ client_assertion_type: JWT_BEARER, client_assertion: rs256 })).status,
    ).toBe(200)

    // Removed through the hook: refused from then on.
    expect(await removeEmulatorCredential(emulator.url, MAIL, { thumbprint: cert.thumbprint })).toBe(true)
    const removed = await clientCredentials({
      client_assertion_type: JWT_BEARER,
      client_assertion: await assertion(cert.privateKeyPem, header),
    })
    expect(removed.body.error_codes).toEqual([700027])
    expect(await stats()).toMatchObject({ private_key_jwt: 2, client_secret: 0, federated: 0 })
  })

  it('accepts a federated token matching issuer, subject and audience, verified with the issuer keys', async () => {
    await adminConsent()
    const issuer = new FederationIssuer()
    await addEmulatorCredential(emulator.url, MAIL, { federated: await issuer.credential('pod') })
    const accepted = await clientCredentials({
      client_assertion_type: JWT_BEARER,
      client_assertion: await issuer.token(),
    })
    expect(accepted.status).toBe(200)
    const wrongSubject = await clientCredentials({
      client_assertion_type: JWT_BEARER,
      client_assertion: await issuer.token(3600, 'system:serviceaccount:other:other'),
    })
    expect(wrongSubject.body).toMatchObject({ error: 'invalid_client', error_codes: [70021] })
    const impostor = new FederationIssuer({ issuer: issuer.issuer, subject: issuer.subject })
    const forged = await clientCredentials({
      client_assertion_type: JWT_BEARER,
      client_assertion: await impostor.token(),
    })
    expect(forged.body).toMatchObject({ error: 'invalid_client', error_codes: [70021] })
    expect(await stats()).toMatchObject({ federated: 1, private_key_jwt: 0, client_secret: 0 })
  })

  it('refuses an expired secret with AADSTS7000222 and a wrong one with 7000215', async () => {
    await adminConsent()
    await addEmulatorCredential(emulator.url, MAIL, {
      secret: 'old-secret',
      expiresAt: '2020-01-01T00:00:00Z',
    })
    expect((await clientCredentials({ client_secret: 'old-secret' })).body.error_codes).toEqual([7000222])
    expect((await clientCredentials({ client_secret: 'never-added' })).body.error_codes).toEqual([7000215])
    expect((await clientCredentials({ client_secret: 'demo-secret-ms-graph-mail' })).status).toBe(200)
    expect(await stats()).toMatchObject({ client_secret: 1 })
  })
})
