// The apps' own credentials end to end, against the emulator validating them as Entra does:
// certificate-only and federated-only apps through both consent kinds and obtain-token (the
// emulator counts no secret), a wrong or expired credential first (the next one is used, the
// failure is counted, shown and warned about once), and rotation under load across three
// instances on one Redis (certificate → certificate, secret → certificate) with zero failed
// requests, reloading the apps file as SIGHUP does; plus a reload by a change on disk and an
// invalid apps file that keeps the running credentials.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import {
  type AppsFileCredential,
  addEmulatorCredential,
  FederationIssuer,
  removeEmulatorCredential,
  selfSignedCertificate,
  type TestCertificate,
  writeAppsFileWithCredentials,
} from '../../emulator/dev-credentials.js'
import type { Env } from '../../src/config.js'
import { bearer, obtainToken, operatorToken } from '../support/admin-helpers.js'
import { type ConsentValues, consentViaEmulator, type RunningBroker, startBroker } from '../support/broker.js'
import { DEMO_APPS_FILE } from '../support/config.js'
import { useEmulator } from '../support/emulator.js'
import { memoryLogger } from '../support/log-capture.js'

const MAIL = {
  slug: 'ms-graph-mail',
  clientId: '0b1e6a52-7c3d-4f8e-9a10-000000000001',
  secret: 'demo-secret-ms-graph-mail',
}
const LISTENER = {
  slug: 'ms-graph-mail-listener',
  clientId: '0b1e6a52-7c3d-4f8e-9a10-000000000004',
  secret: 'demo-secret-ms-graph-mail-listener',
}
const USER_APP = {
  slug: 'ms-graph-user',
  clientId: '0b1e6a52-7c3d-4f8e-9a10-000000000002',
  secret: 'demo-secret-ms-graph-user',
}
const ADMIN = 'admin@contoso.example'
const USER = 'user@contoso.example'
const OPERATOR = operatorToken('ops')

const emulator = useEmulator({ resetEach: true })
let directory: string
const brokers: RunningBroker[] = []

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'app-credentials-'))
})
afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})
afterAll(() => {
  rmSync(directory, { recursive: true, force: true })
})

/** Writes a certificate and its key into the test's directory; returns the apps file entry. */
function certificateFiles(certificate: TestCertificate, name: string): AppsFileCredential {
  const certificateFile = join(directory, `${name}.crt`)
  const privateKeyFile = join(directory, `${name}.key`)
  writeFileSync(certificateFile, certificate.certificatePem)
  writeFileSync(privateKeyFile, certificate.privateKeyPem, { mode: 0o600 })
  return { certificateFile, privateKeyFile }
}

/** An apps file (the demo's) where the given apps use the given credentials in the global cloud. */
function appsFile(name: string, credentials: Record<string, AppsFileCredential[]>): string {
  const target = join(directory, `${name}.json`)
  writeAppsFileWithCredentials(DEMO_APPS_FILE, target, (slug, cloud) =>
    cloud === 'global' ? credentials[slug] : undefined,
  )
  return target
}

async function broker(
  env: Env,
  options: { logs?: string[]; keyPrefix?: string } = {},
): Promise<RunningBroker> {
  const running = await startBroker({
    authorityUrl: emulator.url,
    redisUrl: inject('redisUrl'),
    env: { OPERATOR_TOKENS: `ops:${OPERATOR}`, ...env },
    ...(options.logs === undefined ? {} : { logger: memoryLogger('info', options.logs).logger }),
    ...(options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix }),
  })
  brokers.push(running)
  return running
}

interface Stats {
  token_requests: Record<string, number>
  client_auth: { client_secret: number; private_key_jwt: number; federated: number }
}

async function stats(): Promise<Stats> {
  return (await (await fetch(`${emulator.url}/_emulator/stats`)).json()) as Stats
}

async function expectToken(running: RunningBroker, values: ConsentValues, slug: string): Promise<void> {
  const answer = await obtainToken(running.app, values, slug)
  expect(answer.status, answer.raw).toBe(200)
  expect(answer.body.access_token).toMatch(/^eyJ/)
}

async function credentialsApi(running: RunningBroker) {
  const response = await running.app.inject({
    method: 'GET',
    url: '/admin/api/credentials',
    headers: bearer(OPERATOR),
  })
  expect(response.statusCode, response.body).toBe(200)
  return (response.json() as { credentials: Array<Record<string, unknown>> }).credentials
}

describe('apps without a client secret', () => {
  it('runs both consent kinds and obtain-token with certificates only: the emulator sees no secret', async () => {
    const certificate = selfSignedCertificate({ commonName: 'cert-only' })
    for (const app of [MAIL, LISTENER]) {
      expect(await removeEmulatorCredential(emulator.url, app.clientId, { secret: app.secret })).toBe(true)
      await addEmulatorCredential(emulator.url, app.clientId, { certificate: certificate.certificatePem })
    }
    const files = certificateFiles(certificate, 'cert-only')
    const running = await broker({
      APPS_FILE: appsFile('cert-only', { [MAIL.slug]: [files], [LISTENER.slug]: [files] }),
    })

    const admin = await consentViaEmulator(running.app, { slug: MAIL.slug, username: ADMIN })
    await expectToken(running, admin, MAIL.slug)
    const delegated = await consentViaEmulator(running.app, { slug: LISTENER.slug, username: USER })
    await expectToken(running, delegated, LISTENER.slug)

    const after = await stats()
    expect(after.client_auth.client_secret).toBe(0)
    expect(after.client_auth.federated).toBe(0)
    // Code redemptions (2), the admin-consent proof and obtain-token's client credentials, the
    // delegated refresh: every one signed with the certificate.
    expect(after.client_auth.private_key_jwt).toBeGreaterThanOrEqual(4)
    expect(after.client_auth.private_key_jwt).toBe(
      Object.values(after.token_requests).reduce((sum, n) => sum + n, 0),
    )
    const listed = await credentialsApi(running)
    const mail = listed.find((c) => c.app === MAIL.slug && c.cloud === 'global')
    expect(mail).toMatchObject({
      kind: 'certificate',
      thumbprint: certificate.thumbprint,
      position: 1,
      expiresAt: certificate.notAfter.toISOString(),
      expiringSoon: false,
    })
    expect(typeof mail?.lastSuccessAt).toBe('string')
    expect(mail?.failing).toBeUndefined()
  })

  it('runs both consent kinds and obtain-token with a federated token file only', async () => {
    const issuer = new FederationIssuer()
    const tokenFile = join(directory, 'federated-token')
    writeFileSync(tokenFile, await issuer.token(3600))
    const credential = await issuer.credential('broker-pod')
    for (const app of [MAIL, LISTENER]) {
      await removeEmulatorCredential(emulator.url, app.clientId, { secret: app.secret })
      await addEmulatorCredential(emulator.url, app.clientId, { federated: credential })
    }
    const federated = [{ federatedTokenFile: tokenFile }]
    const running = await broker({
      APPS_FILE: appsFile('federated-only', { [MAIL.slug]: federated, [LISTENER.slug]: federated }),
    })
    const admin = await consentViaEmulator(running.app, { slug: MAIL.slug, username: ADMIN })
    await expectToken(running, admin, MAIL.slug)
    const delegated = await consentViaEmulator(running.app, { slug: LISTENER.slug, username: USER })
    // The platform rotates the file; the next request reads the new token (a token of another
    // subject is refused, so this also shows the file is read on each use, not cached).
    writeFileSync(tokenFile, await issuer.token(3600, 'system:serviceaccount:elsewhere:other'))
    const refused = await obtainToken(running.app, delegated, LISTENER.slug)
    expect(refused.status).not.toBe(200)
    writeFileSync(tokenFile, await issuer.token(3600))
    await expectToken(running, delegated, LISTENER.slug)

    const after = await stats()
    expect(after.client_auth.client_secret).toBe(0)
    expect(after.client_auth.private_key_jwt).toBe(0)
    expect(after.client_auth.federated).toBeGreaterThanOrEqual(4)
  })
})

describe('a refused credential first in the list', () => {
  it('uses the next one, counts the refusal, shows it and warns once per credential', async () => {
    const certificate = selfSignedCertificate({ commonName: 'after-the-wrong-secret' })
    await addEmulatorCredential(emulator.url, MAIL.clientId, { certificate: certificate.certificatePem })
    // ms-graph-user: its real secret, registered as expired (AADSTS7000222), then the certificate.
    await removeEmulatorCredential(emulator.url, USER_APP.clientId, { secret: USER_APP.secret })
    await addEmulatorCredential(emulator.url, USER_APP.clientId, {
      secret: USER_APP.secret,
      expiresAt: '2020-01-01T00:00:00Z',
    })
    await addEmulatorCredential(emulator.url, USER_APP.clientId, { certificate: certificate.certificatePem })
    const files = certificateFiles(certificate, 'after-the-wrong-secret')
    const logs: string[] = []
    const running = await broker(
      {
        APPS_FILE: appsFile('refused-first', {
          [MAIL.slug]: [{ clientSecretEnv: 'WRONG_MAIL_SECRET' }, files],
          [USER_APP.slug]: [{ clientSecretEnv: 'USER_SECRET', expiresAt: '2020-01-01' }, files],
        }),
        WRONG_MAIL_SECRET: 'not-the-secret-of-this-app',
        USER_SECRET: USER_APP.secret,
      },
      { logs },
    )
    for (const app of [MAIL, USER_APP]) {
      const values = await consentViaEmulator(running.app, { slug: app.slug, username: ADMIN })
      for (let i = 0; i < 5; i++) await expectToken(running, values, app.slug)
    }
    // Refused once each: afterwards every request tries the certificate first.
    const metrics = (await running.app.inject({ method: 'GET', url: '/metrics', headers: bearer(OPERATOR) }))
      .body
    expect(metrics).toContain(
      'consent_broker_app_credential_failures_total{app="ms-graph-mail",cloud="global",credential="secret:WRONG_MAIL_SECRET",code="AADSTS7000215"} 1',
    )
    expect(metrics).toContain(
      'consent_broker_app_credential_failures_total{app="ms-graph-user",cloud="global",credential="secret:USER_SECRET",code="AADSTS7000222"} 1',
    )
    const warnings = logs.filter((line) => line.includes('app credential refused by Microsoft'))
    expect(warnings).toHaveLength(2)
    expect(warnings.filter((line) => line.includes('secret:WRONG_MAIL_SECRET'))).toHaveLength(1)
    expect(warnings.filter((line) => line.includes('secret:USER_SECRET'))).toHaveLength(1)
    for (const line of logs) {
      expect(line).not.toContain('not-the-secret-of-this-app')
      expect(line).not.toContain(USER_APP.secret)
    }

    const listed = await credentialsApi(running)
    expect(listed.find((c) => c.credential === 'secret:WRONG_MAIL_SECRET')).toMatchObject({
      app: MAIL.slug,
      position: 1,
      failing: 'AADSTS7000215',
    })
    expect(listed.find((c) => c.app === USER_APP.slug && c.kind === 'secret')).toMatchObject({
      failing: 'AADSTS7000222',
      expiringSoon: true,
      expiresAt: '2020-01-01T00:00:00.000Z',
    })
    expect(metrics).toMatch(
      /consent_broker_app_credential_expiry_seconds\{app="ms-graph-user",cloud="global",credential="secret:USER_SECRET"\} -\d+/,
    )
  })
})

/** Obtain-token requests on every broker, in a loop, until stopped; counts answers by status. */
function loadOn(runningBrokers: RunningBroker[], values: ConsentValues, slug: string) {
  const counts = { ok: 0, failed: [] as string[] }
  let stopping = false
  const workers = runningBrokers.map(async (running) => {
    while (!stopping) {
      const answer = await obtainToken(running.app, values, slug)
      if (answer.status === 200) counts.ok += 1
      else counts.failed.push(answer.raw)
    }
  })
  return {
    counts,
    async stop() {
      stopping = true
      await Promise.all(workers)
      return counts
    },
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Three instances on one Redis (same prefix, keys and cookie secret), every access token short-lived. */
async function threeInstances(appsFilePath: string): Promise<RunningBroker[]> {
  const shared = {
    APPS_FILE: appsFilePath,
    MASTER_KEYS: `k1:${randomBytes(32).toString('base64')}`,
    COOKIE_SECRET: randomBytes(32).toString('hex'),
    TOKEN_REFRESH_MARGIN_SECONDS: '0',
    // The load is one registration asking as fast as it can: not what this test is about.
    RATE_LIMIT_PER_REGISTRATION: '1000000',
    RATE_LIMIT_PER_IP: '1000000',
  }
  const keyPrefix = `test:${randomBytes(6).toString('hex')}:`
  const running = []
  for (let i = 0; i < 3; i++) running.push(await broker(shared, { keyPrefix }))
  // One-second tokens: the load makes an upstream client-credentials call every second or so.
  const lifetime = await fetch(`${emulator.url}/_emulator/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ accessTokenLifetimeSec: 1 }),
  })
  expect(lifetime.status).toBe(200)
  return running
}

/** Rewrites the apps file in place and reloads every instance, as SIGHUP does. */
function rewriteAndReload(running: RunningBroker[], path: string, credentials: AppsFileCredential[]): void {
  writeAppsFileWithCredentials(DEMO_APPS_FILE, path, (slug, cloud) =>
    slug === MAIL.slug && cloud === 'global' ? credentials : undefined,
  )
  for (const instance of running)
    expect(instance.appsReload?.reload('SIGHUP')).toMatchObject({ applied: true })
}

describe('rotation under load across three instances', () => {
  it('certificate → certificate: add the new one, remove the old at Entra, then from the apps file', async () => {
    const old = selfSignedCertificate({ commonName: 'old', notBefore: new Date(Date.now() - 86_400_000) })
    const next = selfSignedCertificate({ commonName: 'new' })
    await removeEmulatorCredential(emulator.url, MAIL.clientId, { secret: MAIL.secret })
    await addEmulatorCredential(emulator.url, MAIL.clientId, { certificate: old.certificatePem })
    const oldFiles = certificateFiles(old, 'rotation-old')
    const path = appsFile('rotation-cert', { [MAIL.slug]: [oldFiles] })
    const running = await threeInstances(path)
    const values = await consentViaEmulator(running[0]!.app, { slug: MAIL.slug, username: ADMIN })
    const load = loadOn(running, values, MAIL.slug)

    await pause(1500)
    await addEmulatorCredential(emulator.url, MAIL.clientId, { certificate: next.certificatePem })
    // Listed after the old one: the newer certificate (by notBefore) is still tried first.
    rewriteAndReload(running, path, [oldFiles, certificateFiles(next, 'rotation-new')])
    await pause(1500)
    expect(await removeEmulatorCredential(emulator.url, MAIL.clientId, { thumbprint: old.thumbprint })).toBe(
      true,
    )
    await pause(1500)
    rewriteAndReload(running, path, [certificateFiles(next, 'rotation-new')])
    await pause(1500)
    const counts = await load.stop()

    expect(counts.failed).toEqual([])
    expect(counts.ok).toBeGreaterThan(30)
    const listed = await credentialsApi(running[2]!)
    const mail = listed.filter((c) => c.app === MAIL.slug && c.cloud === 'global')
    expect(mail).toHaveLength(1)
    expect(mail[0]).toMatchObject({ thumbprint: next.thumbprint })
    expect(typeof mail[0]?.lastSuccessAt).toBe('string')
    expect((await stats()).client_auth.client_secret).toBe(0)
  })

  it('secret → certificate: add the certificate, remove the secret at Entra, then from the apps file', async () => {
    const certificate = selfSignedCertificate({ commonName: 'migration' })
    const path = appsFile('rotation-secret', {
      [MAIL.slug]: [{ clientSecretEnv: 'MS_GRAPH_MAIL_CLIENT_SECRET' }],
    })
    const running = await threeInstances(path)
    const values = await consentViaEmulator(running[0]!.app, { slug: MAIL.slug, username: ADMIN })
    const load = loadOn(running, values, MAIL.slug)

    await pause(1500)
    await addEmulatorCredential(emulator.url, MAIL.clientId, { certificate: certificate.certificatePem })
    const files = certificateFiles(certificate, 'migration')
    rewriteAndReload(running, path, [files, { clientSecretEnv: 'MS_GRAPH_MAIL_CLIENT_SECRET' }])
    await pause(1500)
    const secretUsesBefore = (await stats()).client_auth.client_secret
    expect(await removeEmulatorCredential(emulator.url, MAIL.clientId, { secret: MAIL.secret })).toBe(true)
    await pause(1500)
    rewriteAndReload(running, path, [files])
    await pause(1500)
    const counts = await load.stop()

    expect(counts.failed).toEqual([])
    expect(counts.ok).toBeGreaterThan(30)
    const after = await stats()
    // The certificate took over at the first reload: no secret was presented after that.
    expect(after.client_auth.client_secret).toBe(secretUsesBefore)
    expect(after.client_auth.private_key_jwt).toBeGreaterThan(0)
  })
})

describe('reloading the apps file', () => {
  it('applies a change on disk without a restart, and keeps the running credentials when the new file is invalid', async () => {
    const certificate = selfSignedCertificate({ commonName: 'watched' })
    await addEmulatorCredential(emulator.url, MAIL.clientId, { certificate: certificate.certificatePem })
    const logs: string[] = []
    const path = appsFile('watched', { [MAIL.slug]: [{ clientSecretEnv: 'MS_GRAPH_MAIL_CLIENT_SECRET' }] })
    const running = await broker({ APPS_FILE: path }, { logs })
    running.appsReload?.start()
    const credentials = running.app.services.credentials
    expect(credentials.list(MAIL.slug, 'global').map((c) => c.kind)).toEqual(['secret'])

    writeAppsFileWithCredentials(DEMO_APPS_FILE, path, (slug, cloud) =>
      slug === MAIL.slug && cloud === 'global' ? [certificateFiles(certificate, 'watched')] : undefined,
    )
    const deadline = Date.now() + 10_000
    while (credentials.list(MAIL.slug, 'global')[0]?.kind !== 'certificate' && Date.now() < deadline)
      await pause(50)
    expect(credentials.list(MAIL.slug, 'global').map((c) => c.name)).toEqual([
      `certificate:${certificate.thumbprint}`,
    ])
    const values = await consentViaEmulator(running.app, { slug: MAIL.slug, username: ADMIN })
    await expectToken(running, values, MAIL.slug)

    // Two problems at once: a missing key file and an unset variable; both named, nothing applied.
    writeAppsFileWithCredentials(DEMO_APPS_FILE, path, (slug, cloud) =>
      slug === MAIL.slug && cloud === 'global'
        ? [
            {
              certificateFile: join(directory, 'watched.crt'),
              privateKeyFile: join(directory, 'missing.key'),
            },
            { clientSecretEnv: 'NOT_SET_ANYWHERE' },
          ]
        : undefined,
    )
    const outcome = running.appsReload?.reload('SIGHUP')
    expect(outcome?.applied).toBe(false)
    const problems = outcome?.applied === false ? outcome.problems : []
    expect(problems.some((p) => p.includes('cannot read privateKeyFile') && p.includes('missing.key'))).toBe(
      true,
    )
    expect(problems.some((p) => p.startsWith('NOT_SET_ANYWHERE: unset'))).toBe(true)
    expect(credentials.list(MAIL.slug, 'global').map((c) => c.kind)).toEqual(['certificate'])
    expect(logs.filter((line) => line.includes('apps file reload refused')).length).toBeGreaterThanOrEqual(2)
    await expectToken(running, values, MAIL.slug)
  })
})
