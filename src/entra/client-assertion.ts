// What one credential sends to a token endpoint to authenticate the app: a client secret, a client
// assertion signed with the app's certificate, or the federated token the platform projected into a
// file. Assertions follow Entra's rules: `aud` is the token endpoint the request goes to (not the
// issuer, openid-client's default), `iss` = `sub` = the client id, a unique `jti`, `nbf`/`iat` now
// and a short `exp`; the header names the certificate by its SHA-256 thumbprint (`x5t#S256`).
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { SignJWT } from 'jose'
import type { AppCredential } from '../config/credentials.js'

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** Lifetime of a signed assertion; Entra wants minutes, and each request signs a fresh one. */
export const ASSERTION_LIFETIME_SECONDS = 300

/** The form parameters that authenticate one token request (`client_id` included). */
export type ClientAuthParams = Readonly<Record<string, string>>

/** Thrown when a credential can't even be presented (its federated token file is unreadable or empty). */
export class CredentialUnusableError extends Error {
  override readonly name = 'CredentialUnusableError'
  readonly code = 'token_file_unreadable'
}

/** The parameters `credential` authenticates `clientId` with at `tokenEndpoint`, at time `nowMs`. */
export async function clientAuthParams(
  credential: AppCredential,
  clientId: string,
  tokenEndpoint: string,
  nowMs: number,
): Promise<ClientAuthParams> {
  if (credential.kind === 'secret') return { client_id: clientId, client_secret: credential.secret }
  if (credential.kind === 'federated') {
    let assertion = ''
    try {
      // Re-read on every use: the platform replaces the file (about hourly) before it expires.
      assertion = (await readFile(credential.tokenFile, 'utf8')).trim()
    } catch {
      // fall through: reported below without the file's content
    }
    if (assertion === '')
      throw new CredentialUnusableError(`federated token file ${credential.tokenFile} is unreadable or empty`)
    return { client_id: clientId, client_assertion_type: JWT_BEARER, client_assertion: assertion }
  }
  const now = Math.floor(nowMs / 1000)
  const header: Record<string, string> = {
    alg: credential.algorithm,
    typ: 'JWT',
    'x5t#S256': credential.x5tS256,
  }
  // RS256 is the older scheme, where Entra matched certificates by their SHA-1 thumbprint (`x5t`).
  if (credential.algorithm === 'RS256')
    header.x5t = Buffer.from(credential.thumbprint, 'hex').toString('base64url')
  const assertion = await new SignJWT({})
    .setProtectedHeader(header as { alg: string })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenEndpoint)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + ASSERTION_LIFETIME_SECONDS)
    .sign(credential.privateKey)
  return { client_id: clientId, client_assertion_type: JWT_BEARER, client_assertion: assertion }
}
