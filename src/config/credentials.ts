// An app registration's credentials as the apps file names them, read and checked: client secrets
// (from a variable or a file, with an optional expiry the operator copies from the portal),
// certificates (PEM certificate + private key, the key checked against the certificate) and
// federated token files (only the path: the platform rotates the file, so it is read on each use).
// Every problem is named; no secret or key material ever appears in one.
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto'
import type { CloudName } from '../clouds.js'

/** Signing algorithms Entra accepts for a client assertion; PS256 is the one it recommends. */
export const ASSERTION_ALGORITHMS = ['PS256', 'RS256'] as const
export type AssertionAlgorithm = (typeof ASSERTION_ALGORITHMS)[number]

interface CredentialBase {
  /** Stable, non-secret name: metric label, shared failure marker, console row. */
  readonly name: string
  /** Epoch ms after which Microsoft refuses it; undefined when unknown (a secret without expiresAt). */
  readonly expiresAt: number | undefined
}

export interface SecretCredential extends CredentialBase {
  readonly kind: 'secret'
  readonly secret: string
}

export interface CertificateCredential extends CredentialBase {
  readonly kind: 'certificate'
  readonly privateKey: KeyObject
  readonly algorithm: AssertionAlgorithm
  /** SHA-256 of the DER certificate, base64url: the assertion's `x5t#S256` header. */
  readonly x5tS256: string
  /** SHA-1 thumbprint in hex, upper case: what the Azure portal shows. */
  readonly thumbprint: string
  readonly notBefore: number
  readonly subject: string
}

export interface FederatedCredential extends CredentialBase {
  readonly kind: 'federated'
  /** The file the platform projects the assertion into (read on each use, never cached). */
  readonly tokenFile: string
}

export type AppCredential = SecretCredential | CertificateCredential | FederatedCredential
export type CredentialKind = AppCredential['kind']

/** One `credentials` entry as the apps file writes it (already shape-checked by the schema). */
export interface RawCredential {
  clientSecretEnv?: string
  clientSecretFile?: string
  expiresAt?: string
  certificateFile?: string
  privateKeyFile?: string
  privateKeyPassphraseEnv?: string
  algorithm?: AssertionAlgorithm
  federatedTokenFile?: string
}

/** JSON schema of one `credentials` entry (the kind is decided, and mixtures refused, in code). */
export const credentialSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    clientSecretEnv: { type: 'string', pattern: '^[A-Z_][A-Z0-9_]*$' },
    clientSecretFile: { type: 'string', minLength: 1 },
    expiresAt: { type: 'string', minLength: 10 },
    certificateFile: { type: 'string', minLength: 1 },
    privateKeyFile: { type: 'string', minLength: 1 },
    privateKeyPassphraseEnv: { type: 'string', pattern: '^[A-Z_][A-Z0-9_]*$' },
    algorithm: { enum: [...ASSERTION_ALGORITHMS] },
    federatedTokenFile: { type: 'string', minLength: 1 },
  },
} as const

const KIND_FIELDS = {
  secret: ['clientSecretEnv', 'clientSecretFile', 'expiresAt'],
  certificate: ['certificateFile', 'privateKeyFile', 'privateKeyPassphraseEnv', 'algorithm'],
  federated: ['federatedTokenFile'],
} as const

function kindOf(raw: RawCredential): CredentialKind | 'mixed' | 'none' {
  const kinds = (Object.keys(KIND_FIELDS) as CredentialKind[]).filter((kind) =>
    KIND_FIELDS[kind].some((field) => raw[field] !== undefined),
  )
  if (kinds.length > 1) return 'mixed'
  return kinds[0] ?? 'none'
}

export interface CredentialContext {
  readonly slug: string
  readonly cloud: CloudName
  /** The environment (types.ts's Env, restated: types.ts imports this file). */
  readonly env: Readonly<Record<string, string | undefined>>
  readonly readFile: (path: string) => string
  /** Prefix of every problem, e.g. `APPS_FILE: /apps/0 (mail)`. */
  readonly where: string
  readonly problems: string[]
  /** The one-secret shorthand: problems name the cloud only, as they always have. */
  readonly shorthand?: boolean
}

/**
 * Reads one app registration's credentials, newest first: certificates by `notBefore` (latest
 * first) within the places certificates take in the list, everything else in list order.
 */
export function readCredentials(raws: readonly RawCredential[], context: CredentialContext): AppCredential[] {
  const { where, problems, cloud } = context
  const read: AppCredential[] = []
  const names = new Set<string>()
  for (const [index, raw] of raws.entries()) {
    const at = context.shorthand
      ? `${where}: cloud ${cloud}`
      : `${where}: cloud ${cloud}: credentials/${index}`
    const credential = readCredential(raw, at, context)
    if (credential === undefined) continue
    if (names.has(credential.name)) {
      problems.push(`${at}: ${credential.name} is listed twice`)
      continue
    }
    names.add(credential.name)
    read.push(credential)
  }
  return newestFirst(read)
}

function newestFirst(credentials: AppCredential[]): AppCredential[] {
  const certificates = credentials
    .filter((c): c is CertificateCredential => c.kind === 'certificate')
    .sort((a, b) => b.notBefore - a.notBefore)
  let next = 0
  return credentials.map((c) => (c.kind === 'certificate' ? certificates[next++]! : c))
}

function readCredential(
  raw: RawCredential,
  at: string,
  context: CredentialContext,
): AppCredential | undefined {
  const kind = kindOf(raw)
  const { problems } = context
  if (kind === 'mixed') {
    problems.push(
      `${at}: mixes kinds; give a secret (clientSecretEnv or clientSecretFile), a certificate (certificateFile and privateKeyFile) or a federatedTokenFile`,
    )
    return undefined
  }
  if (kind === 'none') {
    problems.push(`${at}: names no credential`)
    return undefined
  }
  if (kind === 'secret') return readSecret(raw, at, context)
  if (kind === 'certificate') return readCertificate(raw, at, context)
  const tokenFile = raw.federatedTokenFile!
  try {
    // Read now only to name a missing file at start-up; each token request reads it afresh.
    if (context.readFile(tokenFile).trim() === '')
      problems.push(`${at}: federatedTokenFile ${tokenFile} is empty`)
  } catch {
    problems.push(`${at}: cannot read federatedTokenFile ${tokenFile}`)
  }
  return { kind: 'federated', name: `federated:${tokenFile}`, tokenFile, expiresAt: undefined }
}

function readSecret(
  raw: RawCredential,
  at: string,
  context: CredentialContext,
): SecretCredential | undefined {
  const { problems, env, readFile, slug, cloud } = context
  let expiresAt: number | undefined
  if (raw.expiresAt !== undefined) {
    expiresAt = Date.parse(raw.expiresAt)
    if (!Number.isFinite(expiresAt) || !/^\d{4}-\d{2}-\d{2}/.test(raw.expiresAt)) {
      problems.push(
        `${at}: expiresAt "${raw.expiresAt}" is not an ISO 8601 date (e.g. 2027-05-31 or 2027-05-31T12:00:00Z)`,
      )
      return undefined
    }
  }
  if (raw.clientSecretEnv !== undefined && raw.clientSecretFile !== undefined) {
    problems.push(`${at}: give clientSecretEnv or clientSecretFile, not both`)
    return undefined
  }
  if (raw.clientSecretEnv !== undefined) {
    const secret = env[raw.clientSecretEnv]?.trim() || undefined
    if (secret === undefined) {
      problems.push(`${raw.clientSecretEnv}: unset, but ${slug} (${cloud}) takes its client secret from it`)
      return undefined
    }
    return { kind: 'secret', name: `secret:${raw.clientSecretEnv}`, secret, expiresAt }
  }
  if (raw.clientSecretFile === undefined) {
    problems.push(`${at}: expiresAt belongs to a secret; set clientSecretEnv or clientSecretFile`)
    return undefined
  }
  let secret: string | undefined
  try {
    secret = readFile(raw.clientSecretFile).trim() || undefined
    if (secret === undefined) problems.push(`${at}: clientSecretFile is empty`)
  } catch {
    problems.push(`${at}: cannot read clientSecretFile ${raw.clientSecretFile}`)
  }
  if (secret === undefined) return undefined
  return { kind: 'secret', name: `secret:${raw.clientSecretFile}`, secret, expiresAt }
}

function readCertificate(
  raw: RawCredential,
  at: string,
  context: CredentialContext,
): CertificateCredential | undefined {
  const { problems, env, readFile } = context
  if (raw.certificateFile === undefined || raw.privateKeyFile === undefined) {
    problems.push(`${at}: a certificate needs both certificateFile and privateKeyFile`)
    return undefined
  }
  let certificate: X509Certificate | undefined
  try {
    certificate = new X509Certificate(readFile(raw.certificateFile))
  } catch (error) {
    const cause =
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'cannot read it' : 'not a PEM certificate'
    problems.push(`${at}: certificateFile ${raw.certificateFile}: ${cause}`)
  }
  let passphrase: string | undefined
  if (raw.privateKeyPassphraseEnv !== undefined) {
    passphrase = env[raw.privateKeyPassphraseEnv]
    if (passphrase === undefined || passphrase === '') {
      problems.push(`${raw.privateKeyPassphraseEnv}: unset, but ${raw.privateKeyFile} is encrypted with it`)
      return undefined
    }
  }
  let privateKey: KeyObject | undefined
  let keyText: string | undefined
  try {
    keyText = readFile(raw.privateKeyFile)
  } catch {
    problems.push(`${at}: cannot read privateKeyFile ${raw.privateKeyFile}`)
  }
  if (keyText !== undefined) {
    try {
      privateKey = createPrivateKey({
        key: keyText,
        format: 'pem',
        ...(passphrase === undefined ? {} : { passphrase }),
      })
    } catch {
      // The library's message can quote key material; say only what is wrong.
      problems.push(
        `${at}: privateKeyFile ${raw.privateKeyFile}: not a PEM private key${passphrase === undefined ? ' (encrypted? set privateKeyPassphraseEnv)' : ' or wrong passphrase'}`,
      )
    }
  }
  if (certificate === undefined || privateKey === undefined) return undefined
  if (privateKey.asymmetricKeyType !== 'rsa') {
    problems.push(
      `${at}: the private key must be RSA (Entra signs and checks client assertions with RSA keys)`,
    )
    return undefined
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    problems.push(
      `${at}: privateKeyFile ${raw.privateKeyFile} is not the key of certificateFile ${raw.certificateFile}`,
    )
    return undefined
  }
  const thumbprint = certificate.fingerprint.replaceAll(':', '').toUpperCase()
  return {
    kind: 'certificate',
    name: `certificate:${thumbprint}`,
    privateKey,
    algorithm: raw.algorithm ?? 'PS256',
    x5tS256: Buffer.from(certificate.fingerprint256.replaceAll(':', ''), 'hex').toString('base64url'),
    thumbprint,
    notBefore: Date.parse(certificate.validFrom),
    expiresAt: Date.parse(certificate.validTo),
    subject: certificate.subject.replaceAll('\n', ', '),
  }
}

/** The files a registration's credentials are read from (watched for changes). */
export function credentialFiles(raws: readonly RawCredential[]): string[] {
  return raws.flatMap((raw) =>
    [raw.clientSecretFile, raw.certificateFile, raw.privateKeyFile, raw.federatedTokenFile].filter(
      (f): f is string => f !== undefined,
    ),
  )
}
