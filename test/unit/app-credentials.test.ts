// The apps' own credentials without the network: reading them from the apps file (every problem
// named, newest certificate first, shorthand kept), the client assertion Entra expects, the
// failover between credentials with one warning per state change, and the expiry warning and
// metric under an injected clock.
import { X509Certificate } from 'node:crypto'
import { decodeJwt, decodeProtectedHeader, importSPKI, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import { selfSignedCertificate } from '../../emulator/dev-credentials.js'
import { buildApp } from '../../src/app.js'
import type { AppCredential, CertificateCredential } from '../../src/config/credentials.js'
import { type AppConfig, loadConfig, resolveApp } from '../../src/config.js'
import { AppCredentials } from '../../src/entra/app-credentials.js'
import { clientAuthParams, JWT_BEARER } from '../../src/entra/client-assertion.js'
import { UpstreamError } from '../../src/entra/types.js'
import { createMemoryStore } from '../../src/store/memory.js'
import { memoryLogger } from '../support/log-capture.js'

const CLIENT_ID = '0b1e6a52-7c3d-4f8e-9a10-000000000001'
const DAY = 86_400_000
const OLD = selfSignedCertificate({ commonName: 'old', notBefore: new Date(Date.now() - 30 * DAY) })
const NEW = selfSignedCertificate({
  commonName: 'new',
  notBefore: new Date(Date.now() - DAY),
  notAfter: new Date(Date.now() + 20 * DAY),
})
const ENCRYPTED = selfSignedCertificate({ commonName: 'encrypted', passphrase: 'correct horse' })

const FILES: Record<string, string> = {
  '/certs/old.crt': OLD.certificatePem,
  '/certs/old.key': OLD.privateKeyPem,
  '/certs/new.crt': NEW.certificatePem,
  '/certs/new.key': NEW.privateKeyPem,
  '/certs/enc.crt': ENCRYPTED.certificatePem,
  '/certs/enc.key': ENCRYPTED.privateKeyPem,
  '/run/secrets/mail': 'file-secret\n',
  '/var/run/azure/token': 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n',
}

function env(credentials: unknown, extra: Record<string, string> = {}) {
  FILES['/etc/apps.json'] = JSON.stringify({
    apps: [
      {
        slug: 'mail',
        displayName: 'Mail',
        description: 'd',
        consent: 'admin',
        permissions: [],
        defaultScope: '{graph}/.default',
        clouds: { global: { clientId: CLIENT_ID, ...(credentials as object) } },
      },
    ],
  })
  return {
    PUBLIC_URL: 'https://broker.example',
    MASTER_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    COOKIE_SECRET: 'c'.repeat(40),
    UNSAFE_MEMORY_STORE: 'true',
    APPS_FILE: '/etc/apps.json',
    ...extra,
  }
}

const readFile = (path: string) => {
  const content = FILES[path]
  if (content === undefined) throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' })
  return content
}

function problemsOf(credentials: unknown, extra: Record<string, string> = {}): string[] {
  try {
    loadConfig(env(credentials, extra), { readFile })
    return []
  } catch (error) {
    return (error as { problems: string[] }).problems
  }
}

describe('credentials in the apps file', () => {
  it('reads every kind, newest certificate first in the places certificates take', () => {
    const config = loadConfig(
      env(
        {
          credentials: [
            { clientSecretEnv: 'MAIL_SECRET', expiresAt: '2027-05-31' },
            { certificateFile: '/certs/old.crt', privateKeyFile: '/certs/old.key' },
            { federatedTokenFile: '/var/run/azure/token' },
            { certificateFile: '/certs/new.crt', privateKeyFile: '/certs/new.key', algorithm: 'RS256' },
            {
              certificateFile: '/certs/enc.crt',
              privateKeyFile: '/certs/enc.key',
              privateKeyPassphraseEnv: 'KEY_PASS',
            },
          ],
        },
        { MAIL_SECRET: 's3cret', KEY_PASS: 'correct horse' },
      ),
      { readFile },
    )
    const credentials = config.apps[0]!.clouds.global!.credentials
    expect(credentials.map((c) => c.name)).toEqual([
      'secret:MAIL_SECRET',
      `certificate:${ENCRYPTED.thumbprint}`,
      'federated:/var/run/azure/token',
      `certificate:${NEW.thumbprint}`,
      `certificate:${OLD.thumbprint}`,
    ])
    expect(credentials[0]).toMatchObject({
      kind: 'secret',
      secret: 's3cret',
      expiresAt: Date.parse('2027-05-31'),
    })
    const newest = credentials[3] as CertificateCredential
    expect(newest.algorithm).toBe('RS256')
    expect(newest.expiresAt).toBe(NEW.notAfter.getTime())
    const fingerprint256 = new X509Certificate(NEW.certificatePem).fingerprint256.replaceAll(':', '')
    expect(newest.x5tS256).toBe(Buffer.from(fingerprint256, 'hex').toString('base64url'))
    expect((credentials[4] as CertificateCredential).algorithm).toBe('PS256')
    expect(config.appsFiles).toEqual(
      expect.arrayContaining(['/etc/apps.json', '/certs/old.key', '/certs/enc.crt', '/var/run/azure/token']),
    )
  })

  it('keeps the one-secret shorthand', () => {
    const config = loadConfig(env({ clientSecretFile: '/run/secrets/mail' }), { readFile })
    expect(config.apps[0]!.clouds.global!.credentials).toEqual([
      { kind: 'secret', name: 'secret:/run/secrets/mail', secret: 'file-secret', expiresAt: undefined },
    ])
  })

  it('names every problem at once, never a secret or key material', () => {
    const problems = problemsOf(
      {
        credentials: [
          { clientSecretEnv: 'UNSET_SECRET' },
          { certificateFile: '/certs/new.crt' },
          { certificateFile: '/certs/new.crt', privateKeyFile: '/certs/old.key' },
          { certificateFile: '/certs/enc.crt', privateKeyFile: '/certs/enc.key' },
          { certificateFile: '/certs/missing.crt', privateKeyFile: '/certs/new.key' },
          { clientSecretEnv: 'MAIL_SECRET', federatedTokenFile: '/var/run/azure/token' },
          { federatedTokenFile: '/var/run/azure/missing' },
          { clientSecretFile: '/run/secrets/mail', expiresAt: 'sometime next year' },
          { certificateFile: '/run/secrets/mail', privateKeyFile: '/certs/new.key' },
        ],
      },
      { MAIL_SECRET: 's3cret' },
    )
    const at = (i: number) => `APPS_FILE: /apps/0 (mail): cloud global: credentials/${i}:`
    expect(problems).toEqual(
      expect.arrayContaining([
        'UNSET_SECRET: unset, but mail (global) takes its client secret from it',
        `${at(1)} a certificate needs both certificateFile and privateKeyFile`,
        `${at(2)} privateKeyFile /certs/old.key is not the key of certificateFile /certs/new.crt`,
        `${at(3)} privateKeyFile /certs/enc.key: not a PEM private key (encrypted? set privateKeyPassphraseEnv)`,
        `${at(4)} certificateFile /certs/missing.crt: cannot read it`,
        expect.stringMatching(/credentials\/5: mixes kinds/),
        `${at(6)} cannot read federatedTokenFile /var/run/azure/missing`,
        expect.stringMatching(/credentials\/7: expiresAt "sometime next year" is not an ISO 8601 date/),
        `${at(8)} certificateFile /run/secrets/mail: not a PEM certificate`,
      ]),
    )
    expect(problems).toHaveLength(9)
    for (const problem of problems) {
      expect(problem).not.toContain('s3cret')
      expect(problem).not.toContain('file-secret')
      expect(problem).not.toContain('PRIVATE KEY')
    }
    expect(
      problemsOf(
        { clientSecretEnv: 'MAIL_SECRET', credentials: [{ clientSecretEnv: 'MAIL_SECRET' }] },
        { MAIL_SECRET: 'x' },
      ),
    ).toEqual([
      'APPS_FILE: /apps/0 (mail): cloud global: give credentials or the clientSecretEnv / clientSecretFile shorthand, not both',
    ])
    expect(problemsOf({ credentials: [{ unknownField: 'x' }] })[0]).toMatch(
      /^APPS_FILE: \/apps\/0\/clouds\/global\/credentials\/0 /,
    )
  })
})

function certificateCredential(): CertificateCredential {
  const config = loadConfig(
    env({ credentials: [{ certificateFile: '/certs/new.crt', privateKeyFile: '/certs/new.key' }] }),
    { readFile },
  )
  return config.apps[0]!.clouds.global!.credentials[0] as CertificateCredential
}

describe('client assertions', () => {
  it('sign with the configured key: the frozen configuration leaves the KeyObject itself unfrozen', () => {
    const credential = certificateCredential()
    // Node caches a key's type and details on the KeyObject when first asked; a frozen one throws
    // here, and on Node 22 jose asks before every signature.
    expect(credential.privateKey.asymmetricKeyType).toBe('rsa')
    expect(credential.privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048)
    expect(Object.isFrozen(credential)).toBe(true)
  })

  it('follow Entra: aud = token endpoint, iss = sub = client id, unique jti, nbf/iat now, exp in 5 minutes, x5t#S256', async () => {
    const credential = certificateCredential()
    const endpoint =
      'https://login.microsoftonline.com/7c3b1e5a-4d2f-4b8e-9a61-2f0c8d4e6b13/oauth2/v2.0/token'
    const now = Date.parse('2026-11-30T10:00:00Z')
    const first = await clientAuthParams(credential, CLIENT_ID, endpoint, now)
    const second = await clientAuthParams(credential, CLIENT_ID, endpoint, now)
    expect(first.client_id).toBe(CLIENT_ID)
    expect(first.client_assertion_type).toBe(JWT_BEARER)
    expect(first.client_secret).toBeUndefined()
    const header = decodeProtectedHeader(first.client_assertion!)
    expect(header).toEqual({ alg: 'PS256', typ: 'JWT', 'x5t#S256': credential.x5tS256 })
    const claims = decodeJwt(first.client_assertion!)
    expect(claims).toMatchObject({
      aud: endpoint,
      iss: CLIENT_ID,
      sub: CLIENT_ID,
      iat: now / 1000,
      nbf: now / 1000,
      exp: now / 1000 + 300,
    })
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/)
    expect(decodeJwt(second.client_assertion!).jti).not.toBe(claims.jti)
    // Signed by the certificate's key.
    const publicKey = await importSPKI(
      new X509Certificate(NEW.certificatePem).publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      'PS256',
    )
    await expect(
      jwtVerify(first.client_assertion!, publicKey, { currentDate: new Date(now) }),
    ).resolves.toBeTruthy()
  })

  it('present a secret as client_secret, and a federated token as read from its file on each use', async () => {
    const secret: AppCredential = { kind: 'secret', name: 'secret:S', secret: 'value', expiresAt: undefined }
    expect(await clientAuthParams(secret, CLIENT_ID, 'https://x/token', 0)).toEqual({
      client_id: CLIENT_ID,
      client_secret: 'value',
    })
    const missing: AppCredential = {
      kind: 'federated',
      name: 'federated:/nope',
      tokenFile: '/nonexistent/token',
      expiresAt: undefined,
    }
    await expect(clientAuthParams(missing, CLIENT_ID, 'https://x/token', 0)).rejects.toThrow(
      /unreadable or empty/,
    )
  })
})

function appWith(credentials: AppCredential[]): AppConfig {
  return {
    slug: 'mail',
    displayName: 'Mail',
    description: '',
    integrations: [],
    group: undefined,
    listSubscriptions: false,
    consent: 'admin',
    permissions: [],
    defaultScope: '{graph}/.default',
    consentScopes: [],
    allowedScopes: [],
    allowedResources: [],
    clouds: { global: { clientId: CLIENT_ID, credentials } },
  }
}

const secret = (name: string, expiresAt?: number): AppCredential => ({
  kind: 'secret',
  name: `secret:${name}`,
  secret: name,
  expiresAt,
})

describe('failover between credentials', () => {
  it('moves on only when the credential is refused, marks it failing for every instance, warns once per state change', async () => {
    const logs: string[] = []
    const logger = memoryLogger('info', logs).logger
    const store = createMemoryStore({
      keyRing: loadConfig(env({ clientSecretEnv: 'S' }, { S: 'x' }), { readFile }).keyRing,
    })
    const app = appWith([secret('WRONG'), secret('RIGHT')])
    const config = loadConfig(env({ clientSecretEnv: 'S' }, { S: 'x' }), { readFile })
    const resolved = resolveApp({ ...config, apps: [app] }, app, 'global')!
    // Two instances sharing one store.
    const instances = [0, 1].map(() => new AppCredentials([app], { health: store.credentialHealth, logger }))
    const failures: string[] = []
    for (const instance of instances) instance.onFailure((f) => failures.push(`${f.credential} ${f.code}`))
    const tried: string[] = []
    const request = async (params: Readonly<Record<string, string>>) => {
      tried.push(params.client_secret!)
      if (params.client_secret === 'WRONG') {
        throw new UpstreamError('oauth', 'refused', {
          error: 'invalid_client',
          errorCodes: [7000215],
          status: 401,
        })
      }
      return 'token'
    }
    await Promise.all(instances.map((i) => i.authenticate(resolved, 'https://x/token', request)))
    expect(tried.filter((s) => s === 'WRONG')).toHaveLength(2)
    for (let i = 0; i < 5; i++) await instances[i % 2]!.authenticate(resolved, 'https://x/token', request)
    // Marked: no instance tries it first any more.
    expect(tried.filter((s) => s === 'WRONG')).toHaveLength(2)
    expect(failures).toEqual(['secret:WRONG AADSTS7000215', 'secret:WRONG AADSTS7000215'])
    expect(logs.filter((line) => line.includes('app credential refused by Microsoft'))).toHaveLength(1)

    // A failure that is not the credential's (a revoked grant) is not retried with another one.
    const grantRevoked = async () => {
      throw new UpstreamError('oauth', 'revoked', { error: 'invalid_grant', errorCodes: [50173] })
    }
    await expect(instances[0]!.authenticate(resolved, 'https://x/token', grantRevoked)).rejects.toThrow(
      'revoked',
    )
    expect(failures).toHaveLength(2)

    // Every credential refused: the last refusal is thrown.
    const none = async () => {
      throw new UpstreamError('oauth', 'all refused', { error: 'invalid_client', errorCodes: [7000222] })
    }
    await expect(instances[1]!.authenticate(resolved, 'https://x/token', none)).rejects.toThrow('all refused')
    await store.close()
  })
})

describe('expiry', () => {
  it('warns at start-up within CREDENTIAL_EXPIRY_WARNING_DAYS and exports seconds left, by the injected clock', async () => {
    let now = Date.parse('2026-11-30T00:00:00Z')
    const clock = () => now
    const config = loadConfig(
      env(
        {
          credentials: [
            { clientSecretEnv: 'S', expiresAt: '2027-01-09T00:00:00Z' },
            { certificateFile: '/certs/new.crt', privateKeyFile: '/certs/new.key' },
          ],
        },
        { S: 'x', CREDENTIAL_EXPIRY_WARNING_DAYS: '45' },
      ),
      { readFile },
    )
    const logs: string[] = []
    const store = createMemoryStore({ keyRing: config.keyRing })
    const idp = {} as Parameters<typeof buildApp>[1]['idp']
    const app = await buildApp(config, { store, idp, logger: memoryLogger('info', logs).logger, clock })
    await app.ready()
    const warnings = logs.filter((line) => line.includes('expires soon'))
    // The secret expires in 40 days (inside 45); the certificate is checked against the same clock.
    const certificateDaysLeft = (NEW.notAfter.getTime() - now) / DAY
    expect(warnings).toHaveLength(certificateDaysLeft <= 45 ? 2 : 1)
    expect(warnings.some((line) => line.includes('secret:S') && line.includes('"daysLeft":40'))).toBe(true)
    const ready = await app.inject({ method: 'GET', url: '/readyz' })
    expect(ready.statusCode).toBe(200)

    const scrape = async () =>
      (await app.metrics.registry.getSingleMetric('consent_broker_app_credential_expiry_seconds')!.get())
        .values
    expect(await scrape()).toEqual(
      expect.arrayContaining([
        { value: 40 * 86_400, labels: { app: 'mail', cloud: 'global', credential: 'secret:S' } },
        {
          value: Math.round((NEW.notAfter.getTime() - now) / 1000),
          labels: { app: 'mail', cloud: 'global', credential: `certificate:${NEW.thumbprint}` },
        },
      ]),
    )
    now += 41 * DAY
    expect((await scrape()).find((v) => v.labels.credential === 'secret:S')?.value).toBe(-DAY / 1000)
    await app.close()
    await store.close()
  })
})
