// Credentials made on the spot for the demo and the tests, as an operator would make them with
// openssl or as Azure Workload Identity projects them: a self-signed certificate with its RSA key
// (node:crypto makes the key; node-forge, a dev dependency, builds the X.509 certificate, which
// node:crypto cannot), and a federation issuer (its key, its JWKS, tokens for one subject).
// Nothing here is ever committed: keys exist for one process's lifetime or in a temporary directory.
import {
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomUUID,
  X509Certificate,
} from 'node:crypto'
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { exportJWK, type JSONWebKeySet, SignJWT } from 'jose'
import forge from 'node-forge'
import { type CredentialChange, type CredentialRemoval, FEDERATION_AUDIENCE } from './client-credentials.js'

export interface TestCertificate {
  readonly certificatePem: string
  readonly privateKeyPem: string
  /** SHA-1 thumbprint, hex upper case (the portal's "Thumbprint"). */
  readonly thumbprint: string
  readonly notBefore: Date
  readonly notAfter: Date
}

/** A self-signed RSA certificate valid from `notBefore` to `notAfter` (defaults: now, +1 year). */
export function selfSignedCertificate(
  options: { commonName?: string; notBefore?: Date; notAfter?: Date; passphrase?: string } = {},
): TestCertificate {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const notBefore = options.notBefore ?? new Date(Date.now() - 60_000)
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + 365 * 86_400_000)
  const certificate = forge.pki.createCertificate()
  certificate.publicKey = forge.pki.publicKeyFromPem(
    publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  )
  certificate.serialNumber = `01${randomBytes(8).toString('hex')}`
  certificate.validity.notBefore = notBefore
  certificate.validity.notAfter = notAfter
  const subject = [{ name: 'commonName', value: options.commonName ?? 'consent-broker-demo' }]
  certificate.setSubject(subject)
  certificate.setIssuer(subject)
  certificate.sign(
    forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    forge.md.sha256.create(),
  )
  const certificatePem = forge.pki.certificateToPem(certificate)
  const privateKeyPem = privateKey
    .export(
      options.passphrase === undefined
        ? { type: 'pkcs8', format: 'pem' }
        : { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: options.passphrase },
    )
    .toString()
  const x509 = new X509Certificate(certificatePem)
  return {
    certificatePem,
    privateKeyPem,
    thumbprint: x509.fingerprint.replaceAll(':', '').toUpperCase(),
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
  }
}

/** A token issuer an app registration can trust through a federated identity credential. */
export class FederationIssuer {
  readonly issuer: string
  readonly subject: string
  readonly #privateKey: KeyObject
  readonly #kid = randomUUID()

  constructor(options: { issuer?: string; subject?: string } = {}) {
    this.issuer = options.issuer ?? `https://federation.demo.invalid/${randomUUID()}`
    this.subject = options.subject ?? 'system:serviceaccount:consent-broker:consent-broker'
    this.#privateKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  }

  /** The issuer's public keys. */
  async jwks(): Promise<JSONWebKeySet> {
    const jwk = await exportJWK(createPublicKey(this.#privateKey))
    return { keys: [{ ...jwk, kid: this.#kid, alg: 'RS256', use: 'sig' }] }
  }

  /** The federated credential to register on an app (the emulator hook's `federated` body). */
  async credential(name: string) {
    return {
      name,
      issuer: this.issuer,
      subject: this.subject,
      audiences: [FEDERATION_AUDIENCE],
      jwks: await this.jwks(),
    }
  }

  /** A token for the subject, as the platform projects it into the pod (default 1 hour). */
  async token(lifetimeSeconds = 3600, subject = this.subject): Promise<string> {
    const now = Math.floor(Date.now() / 1000)
    return new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: this.#kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setSubject(subject)
      .setAudience(FEDERATION_AUDIENCE)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + lifetimeSeconds)
      .setJti(randomUUID())
      .sign(this.#privateKey)
  }
}

/** One `credentials` entry of an apps file (the broker's RawCredential, restated: no src/ import). */
export type AppsFileCredential = Readonly<Record<string, string | undefined>>

/**
 * Writes to `target` a copy of the apps file `source` in which every registration that `choose`
 * answers for gets that `credentials` list instead of its secret shorthand (the others are kept).
 */
export function writeAppsFileWithCredentials(
  source: string,
  target: string,
  choose: (slug: string, cloud: string, clientId: string) => AppsFileCredential[] | undefined,
): void {
  const file = JSON.parse(readFileSync(source, 'utf8')) as {
    apps: Array<{ slug: string; clouds: Record<string, Record<string, unknown> & { clientId: string }> }>
  }
  for (const app of file.apps) {
    for (const [cloud, registration] of Object.entries(app.clouds)) {
      const credentials = choose(app.slug, cloud, registration.clientId)
      if (credentials === undefined) continue
      app.clouds[cloud] = { clientId: registration.clientId, credentials }
    }
  }
  writeFileSync(`${target}.tmp`, JSON.stringify(file, null, 2))
  // Renamed into place so a watcher never reads half a file.
  renameSync(`${target}.tmp`, target)
}

/** The client ids of every registration in the apps file `source`. */
export function clientIdsOf(source: string): string[] {
  const file = JSON.parse(readFileSync(source, 'utf8')) as {
    apps: Array<{ clouds: Record<string, { clientId: string }> }>
  }
  return [...new Set(file.apps.flatMap((app) => Object.values(app.clouds).map((r) => r.clientId)))]
}

/** Adds a credential to a client of the emulator at `emulatorUrl` (its run-time hook). */
export async function addEmulatorCredential(
  emulatorUrl: string,
  clientId: string,
  change: CredentialChange,
): Promise<void> {
  const response = await fetch(`${emulatorUrl}/_emulator/clients/${clientId}/credentials`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(change),
  })
  if (!response.ok)
    throw new Error(
      `emulator refused the credential for ${clientId}: HTTP ${response.status} ${await response.text()}`,
    )
}

/** Removes a credential from a client of the emulator at `emulatorUrl`; true when it was there. */
export async function removeEmulatorCredential(
  emulatorUrl: string,
  clientId: string,
  removal: CredentialRemoval,
): Promise<boolean> {
  const response = await fetch(`${emulatorUrl}/_emulator/clients/${clientId}/credentials/remove`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(removal),
  })
  if (!response.ok) throw new Error(`emulator: HTTP ${response.status} ${await response.text()}`)
  return ((await response.json()) as { removed: boolean }).removed
}
