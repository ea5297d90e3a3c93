// DEMO_CREDENTIAL for `npm run demo`: which kind of credential every demo app authenticates with.
//   secret       (default) the emulator's demo client secrets, through the apps file's shorthand
//   certificate  a self-signed certificate made at start-up: its public part registered on every
//                demo client of the emulator (through the emulator's hook, so a shared emulator
//                started elsewhere works too), the broker signing client assertions with its key
//   federated    a federation issuer made at start-up, trusted by every demo client (issuer, subject,
//                audience api://AzureADTokenExchange, its JWKS), its token written to a file and
//                rewritten every 30 minutes, as Azure Workload Identity projects one
// The certificate, key and token live in a temporary directory removed when the demo stops.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  addEmulatorCredential,
  clientIdsOf,
  FederationIssuer,
  selfSignedCertificate,
  writeAppsFileWithCredentials,
} from '../emulator/dev-credentials.js'

export const DEMO_CREDENTIALS = ['secret', 'certificate', 'federated'] as const
export type DemoCredential = (typeof DEMO_CREDENTIALS)[number]

export interface DemoCredentialSetup {
  /** The apps file the broker reads (the demo's own for `secret`). */
  readonly appsFile: string
  /** Stops rewriting the token and removes the temporary directory. */
  cleanup(): void
}

export async function setUpDemoCredential(
  kind: DemoCredential,
  demoAppsFile: string,
  emulatorUrl: string,
): Promise<DemoCredentialSetup> {
  if (kind === 'secret') return { appsFile: demoAppsFile, cleanup() {} }
  const directory = mkdtempSync(join(tmpdir(), 'consent-broker-demo-'))
  const appsFile = join(directory, 'apps.json')
  const clientIds = clientIdsOf(demoAppsFile)
  let timer: NodeJS.Timeout | undefined
  if (kind === 'certificate') {
    const certificate = selfSignedCertificate({ commonName: 'consent-broker demo' })
    const certificateFile = join(directory, 'broker.crt')
    const privateKeyFile = join(directory, 'broker.key')
    writeFileSync(certificateFile, certificate.certificatePem)
    writeFileSync(privateKeyFile, certificate.privateKeyPem, { mode: 0o600 })
    for (const clientId of clientIds) {
      await addEmulatorCredential(emulatorUrl, clientId, { certificate: certificate.certificatePem })
    }
    writeAppsFileWithCredentials(demoAppsFile, appsFile, () => [{ certificateFile, privateKeyFile }])
  } else {
    const issuer = new FederationIssuer()
    const federatedTokenFile = join(directory, 'azure-identity-token')
    const writeToken = async () =>
      writeFileSync(federatedTokenFile, await issuer.token(3600), { mode: 0o600 })
    await writeToken()
    timer = setInterval(() => void writeToken(), 30 * 60_000)
    timer.unref()
    const credential = await issuer.credential(`consent-broker-demo-${issuer.issuer.slice(-8)}`)
    for (const clientId of clientIds)
      await addEmulatorCredential(emulatorUrl, clientId, { federated: credential })
    writeAppsFileWithCredentials(demoAppsFile, appsFile, () => [{ federatedTokenFile }])
  }
  return {
    appsFile,
    cleanup() {
      clearInterval(timer)
      rmSync(directory, { recursive: true, force: true })
    },
  }
}
