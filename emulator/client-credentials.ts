// The credentials of each emulated app registration, and client authentication at the token
// endpoint the way Entra does it: client secrets (with an optional expiry), certificates (public
// keys registered on the app; client assertions checked for signature, `x5t#S256` or `x5t`, `aud` =
// the token endpoint, `iss` = `sub` = client id, `exp`/`nbf`, `jti` not replayed) and federated
// identity credentials (a trusted issuer with its JWKS, a subject and an audience). Credentials are
// added and removed at run time through `/_emulator/clients/:clientId/credentials` (rotation tests,
// demo brokers registering their own certificate or issuer).
import { createHash, type KeyObject, timingSafeEqual, X509Certificate } from 'node:crypto'
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  jwtVerify,
} from 'jose'
import type { EmulatorClient } from './demo-data.js'
import { EntraError } from './errors.js'

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
export const FEDERATION_AUDIENCE = 'api://AzureADTokenExchange'
/** Seconds of clock skew Entra tolerates on an assertion's exp and nbf. */
const CLOCK_TOLERANCE_SECONDS = 300

export type ClientAuthMethod = 'client_secret' | 'private_key_jwt' | 'federated'

interface RegisteredSecret {
  readonly value: string
  readonly expiresAt: number | undefined
}

interface RegisteredCertificate {
  /** SHA-256 thumbprint, base64url (`x5t#S256`). */
  readonly x5tS256: string
  /** SHA-1 thumbprint, base64url (`x5t`). */
  readonly x5t: string
  readonly publicKey: KeyObject
  readonly notAfter: number
}

export interface FederatedIdentityCredential {
  readonly name: string
  readonly issuer: string
  readonly subject: string
  readonly audiences: readonly string[]
  readonly jwks: JSONWebKeySet
}

interface ClientCredentialSet {
  secrets: RegisteredSecret[]
  certificates: RegisteredCertificate[]
  federated: FederatedIdentityCredential[]
}

/** What `POST /_emulator/clients/:clientId/credentials` adds (exactly one field). */
export interface CredentialChange {
  secret?: string
  /** ISO date after which the secret is refused (AADSTS7000222). */
  expiresAt?: string
  /** PEM certificate (public part only). */
  certificate?: string
  federated?: { name: string; issuer: string; subject: string; audiences?: string[]; jwks: JSONWebKeySet }
}

/** What `POST …/credentials/remove` removes: a secret value, a certificate thumbprint or a federated name. */
export interface CredentialRemoval {
  secret?: string
  /** `x5t#S256` (base64url) or the SHA-1 thumbprint in hex. */
  thumbprint?: string
  federated?: string
}

const b64 = (hex: string) => Buffer.from(hex.replaceAll(':', ''), 'hex').toString('base64url')

function safeEqual(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest()
  const y = createHash('sha256').update(b).digest()
  return timingSafeEqual(x, y) && a.length === b.length
}

const invalidClient = (code: number, text: string) => new EntraError('invalid_client', code, 401, text)

/** Every client's credentials, and the jti values already presented (replay). */
export class ClientCredentialRegistry {
  readonly #sets = new Map<string, ClientCredentialSet>()
  readonly #seenJti = new Map<string, number>()
  readonly counts: Record<ClientAuthMethod, number> = { client_secret: 0, private_key_jwt: 0, federated: 0 }

  constructor(private readonly clients: () => Iterable<EmulatorClient>) {
    this.reset()
  }

  /** Back to each demo client's one secret. */
  reset(): void {
    this.#sets.clear()
    this.#seenJti.clear()
    for (const method of Object.keys(this.counts) as ClientAuthMethod[]) this.counts[method] = 0
    for (const client of this.clients()) this.#sets.set(client.clientId.toLowerCase(), this.#initial(client))
  }

  #set(clientId: string): ClientCredentialSet {
    const known = this.#sets.get(clientId.toLowerCase())
    if (known !== undefined) return known
    // A client registered at run time (POST /_emulator/tenants/:tid/apps): its secret, if any.
    const client = [...this.clients()].find((c) => c.clientId.toLowerCase() === clientId.toLowerCase())
    if (client === undefined) throw new RangeError(`no client ${clientId}`)
    const set = this.#initial(client)
    this.#sets.set(client.clientId.toLowerCase(), set)
    return set
  }

  #initial(client: EmulatorClient): ClientCredentialSet {
    // A public client registered without a secret holds none ('' is never a secret).
    const secrets = client.clientSecret === '' ? [] : [{ value: client.clientSecret, expiresAt: undefined }]
    return { secrets, certificates: [], federated: [] }
  }

  /** Adds a credential; throws RangeError (unknown client) or TypeError (unusable credential). */
  add(clientId: string, change: CredentialChange): { added: string } {
    const set = this.#set(clientId)
    const given = [change.secret, change.certificate, change.federated].filter((v) => v !== undefined)
    if (given.length !== 1) throw new TypeError('give exactly one of secret, certificate, federated')
    if (change.secret !== undefined) {
      const expiresAt = change.expiresAt === undefined ? undefined : Date.parse(change.expiresAt)
      if (expiresAt !== undefined && !Number.isFinite(expiresAt))
        throw new TypeError('expiresAt is not a date')
      set.secrets = [
        ...set.secrets.filter((s) => s.value !== change.secret),
        { value: change.secret, expiresAt },
      ]
      return { added: 'secret' }
    }
    if (change.certificate !== undefined) {
      let certificate: X509Certificate
      try {
        certificate = new X509Certificate(change.certificate)
      } catch {
        throw new TypeError('certificate is not a PEM certificate')
      }
      const registered: RegisteredCertificate = {
        x5tS256: b64(certificate.fingerprint256),
        x5t: b64(certificate.fingerprint),
        publicKey: certificate.publicKey,
        notAfter: Date.parse(certificate.validTo),
      }
      set.certificates = [...set.certificates.filter((c) => c.x5tS256 !== registered.x5tS256), registered]
      return { added: registered.x5tS256 }
    }
    const federated = change.federated!
    if (!Array.isArray(federated.jwks?.keys)) throw new TypeError('federated.jwks must be a JWKS')
    set.federated = [
      ...set.federated.filter((f) => f.name !== federated.name),
      { ...federated, audiences: federated.audiences ?? [FEDERATION_AUDIENCE] },
    ]
    return { added: federated.name }
  }

  /** Removes a credential; true when there was one. */
  remove(clientId: string, removal: CredentialRemoval): boolean {
    const set = this.#set(clientId)
    const before = set.secrets.length + set.certificates.length + set.federated.length
    if (removal.secret !== undefined) set.secrets = set.secrets.filter((s) => s.value !== removal.secret)
    if (removal.thumbprint !== undefined) {
      const wanted = /^[0-9a-f:]+$/i.test(removal.thumbprint) ? b64(removal.thumbprint) : removal.thumbprint
      set.certificates = set.certificates.filter((c) => c.x5tS256 !== wanted && c.x5t !== wanted)
    }
    if (removal.federated !== undefined)
      set.federated = set.federated.filter((f) => f.name !== removal.federated)
    return set.secrets.length + set.certificates.length + set.federated.length < before
  }

  /** What a client holds, without secret values. */
  describe(clientId: string) {
    const set = this.#set(clientId)
    return {
      secrets: set.secrets.map((s) => ({
        hint: `${s.value.slice(0, 3)}…`,
        expires_at: s.expiresAt === undefined ? null : new Date(s.expiresAt).toISOString(),
      })),
      certificates: set.certificates.map((c) => ({
        x5t_s256: c.x5tS256,
        x5t: c.x5t,
        not_after: new Date(c.notAfter).toISOString(),
      })),
      federated: set.federated.map((f) => ({
        name: f.name,
        issuer: f.issuer,
        subject: f.subject,
        audiences: f.audiences,
      })),
    }
  }

  /** Checks a client secret (AADSTS7000215 wrong, 7000222 expired). */
  verifySecret(client: EmulatorClient, secret: string, now: number): void {
    const match = this.#set(client.clientId).secrets.find((s) => safeEqual(secret, s.value))
    if (match === undefined) {
      throw invalidClient(
        7000215,
        `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${client.clientId}'.`,
      )
    }
    if (match.expiresAt !== undefined && match.expiresAt <= now) {
      throw invalidClient(
        7000222,
        `The provided client secret keys for app '${client.clientId}' are expired. Visit the Azure portal to create new keys for your app.`,
      )
    }
    this.counts.client_secret += 1
  }

  /**
   * Checks a client assertion presented to `tokenEndpoint`: the app's own certificate-signed
   * assertion (iss = client id) or a federated token (iss = a trusted external issuer).
   */
  async verifyAssertion(
    client: EmulatorClient,
    assertion: string,
    tokenEndpoint: string,
    now: number,
  ): Promise<void> {
    let claims: ReturnType<typeof decodeJwt>
    let header: ReturnType<typeof decodeProtectedHeader>
    try {
      header = decodeProtectedHeader(assertion)
      claims = decodeJwt(assertion)
    } catch {
      throw new EntraError('invalid_request', 50027, 400, 'JWT token is invalid or malformed.')
    }
    const set = this.#set(client.clientId)
    if (claims.iss !== undefined && claims.iss.toLowerCase() !== client.clientId.toLowerCase()) {
      return this.#verifyFederated(set, assertion, claims, now)
    }
    if (claims.sub?.toLowerCase() !== client.clientId.toLowerCase()) {
      throw invalidClient(
        700023,
        `Client assertion contains an invalid subject: it must be the client id '${client.clientId}'.`,
      )
    }
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
    if (
      !audiences.some((aud) => typeof aud === 'string' && aud.toLowerCase() === tokenEndpoint.toLowerCase())
    ) {
      throw invalidClient(
        700023,
        `Client assertion audience claim does not match Realm issuer: the audience must be '${tokenEndpoint}'.`,
      )
    }
    const x5tS256 = header['x5t#S256']
    const certificate = set.certificates.find((c) =>
      typeof x5tS256 === 'string'
        ? c.x5tS256 === x5tS256
        : typeof header.x5t === 'string' && c.x5t === header.x5t,
    )
    if (certificate === undefined) {
      throw invalidClient(
        700027,
        `Client assertion failed signature validation. The certificate with identifier used to sign the client assertion is not registered on application '${client.clientId}'.`,
      )
    }
    if (certificate.notAfter <= now) {
      throw invalidClient(
        700027,
        `The certificate used to sign the client assertion has expired (application '${client.clientId}').`,
      )
    }
    if (header.alg !== 'PS256' && header.alg !== 'RS256') {
      throw invalidClient(700027, 'Client assertion failed signature validation: unsupported algorithm.')
    }
    await this.#verify(assertion, certificate.publicKey, header.alg, now, 700027)
    if (typeof claims.jti !== 'string' || claims.jti === '') {
      throw invalidClient(700023, 'Client assertion contains no jti claim.')
    }
    const jtiKey = `${client.clientId.toLowerCase()}|${claims.jti}`
    for (const [key, until] of this.#seenJti) if (until < now) this.#seenJti.delete(key)
    if (this.#seenJti.has(jtiKey)) {
      throw invalidClient(
        700023,
        'Client assertion jti has already been used: each assertion is accepted once.',
      )
    }
    this.#seenJti.set(jtiKey, ((claims.exp ?? 0) + CLOCK_TOLERANCE_SECONDS) * 1000)
    this.counts.private_key_jwt += 1
  }

  async #verifyFederated(
    set: ClientCredentialSet,
    assertion: string,
    claims: ReturnType<typeof decodeJwt>,
    now: number,
  ): Promise<void> {
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
    const match = set.federated.find(
      (f) =>
        f.issuer === claims.iss && f.subject === claims.sub && f.audiences.some((a) => audiences.includes(a)),
    )
    if (match === undefined) {
      throw invalidClient(
        70021,
        `No matching federated identity record found for presented assertion. Assertion Issuer: '${claims.iss}'. Assertion Subject: '${claims.sub}'. Assertion Audience: '${audiences.join(', ')}'.`,
      )
    }
    await this.#verify(assertion, createLocalJWKSet(match.jwks), undefined, now, 70021)
    this.counts.federated += 1
  }

  async #verify(
    assertion: string,
    key: KeyObject | ReturnType<typeof createLocalJWKSet>,
    alg: string | undefined,
    now: number,
    signatureCode: number,
  ): Promise<void> {
    try {
      const options = {
        currentDate: new Date(now),
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp'],
        ...(alg === undefined ? {} : { algorithms: [alg] }),
      }
      if (typeof key === 'function') await jwtVerify(assertion, key, options)
      else await jwtVerify(assertion, key, options)
    } catch (error) {
      if (
        error instanceof errors.JWTExpired ||
        (error instanceof errors.JWTClaimValidationFailed && error.claim === 'nbf')
      ) {
        throw invalidClient(700024, 'Client assertion is not within its valid time range.')
      }
      throw invalidClient(signatureCode, 'Client assertion failed signature validation.')
    }
  }
}
