// ID-token validation done by us, not by openid-client: its Entra handling (the `{tenantid}`
// issuer template) only applies on login.microsoftonline.com, and we need the same checks in every
// national cloud and against the emulator.
import { type JWTPayload, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from 'jose'
import { isGuid } from '../guid.js'
import type { VerifiedIdToken } from './types.js'
import { UpstreamError } from './types.js'

/** Seconds of clock difference tolerated on `exp`/`nbf`/`iat`. */
export const ID_TOKEN_CLOCK_TOLERANCE_SECONDS = 60

/** The ID token is not one we accept (forged, for another client, replayed, expired …). */
export class IdTokenError extends Error {
  override readonly name = 'IdTokenError'
  /** Short machine-readable reason for logs and metrics, e.g. `issuer`, `nonce`, `signature`. */
  readonly reason: string
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.reason = reason
  }
}

export interface IdTokenExpectations {
  /** The app's client id (`aud`). */
  clientId: string
  /** The discovery document's issuer, e.g. `https://login.microsoftonline.com/{tenantid}/v2.0`. */
  issuerTemplate: string
  /**
   * The nonce sent with this flow's authorization request; `null` for a grant that sends none (the
   * device code grant, whose ID token comes straight from the token endpoint): no nonce is required.
   */
  nonce: string | null
  /** Defaults to now. */
  currentDate?: Date
}

/** The exact issuer an ID token of tenant `tid` must carry. */
export function expectedIssuer(issuerTemplate: string, tid: string): string {
  return issuerTemplate.replace('{tenantid}', tid)
}

function joseReason(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired'
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `claim_${error.claim}`
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature'
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm'
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'unknown_key'
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys) return 'ambiguous_key'
  return 'malformed'
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const value = payload[name]
  return typeof value === 'string' ? value : undefined
}

/**
 * Validates an ID token: RS256 signature from `keys`, `aud`, `exp`/`nbf`, `nonce`, `tid` and
 * `oid` GUIDs, and `iss` exactly equal to the issuer template with the token's own `tid`.
 * Throws IdTokenError, or the UpstreamError the key getter threw when the JWKS can't be fetched.
 */
export async function verifyIdToken(
  idToken: string,
  keys: JWTVerifyGetKey,
  expectations: IdTokenExpectations,
): Promise<VerifiedIdToken> {
  let payload: JWTPayload
  try {
    ;({ payload } = await jwtVerify(idToken, keys, {
      algorithms: ['RS256'],
      audience: expectations.clientId,
      clockTolerance: ID_TOKEN_CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['iss', 'aud', 'exp', 'tid', 'oid', ...(expectations.nonce === null ? [] : ['nonce'])],
      ...(expectations.currentDate === undefined ? {} : { currentDate: expectations.currentDate }),
    }))
  } catch (error) {
    if (error instanceof UpstreamError) throw error
    const reason = joseReason(error)
    throw new IdTokenError(reason, `id token rejected (${reason})`, { cause: error })
  }
  // Entra puts a single client id in `aud`; several audiences would make `azp` matter.
  if (Array.isArray(payload.aud) && payload.aud.length !== 1) {
    throw new IdTokenError('claim_aud', 'id token rejected (several audiences)')
  }
  const nonce = stringClaim(payload, 'nonce')
  if (expectations.nonce !== null && (nonce === undefined || nonce !== expectations.nonce)) {
    throw new IdTokenError('nonce', 'id token rejected (nonce does not match this sign-in)')
  }
  const tid = stringClaim(payload, 'tid')
  if (tid === undefined || !isGuid(tid)) {
    throw new IdTokenError('claim_tid', 'id token rejected (tid is not a tenant GUID)')
  }
  if (payload.iss !== expectedIssuer(expectations.issuerTemplate, tid)) {
    throw new IdTokenError('issuer', 'id token rejected (issuer does not match its tenant)')
  }
  const oid = stringClaim(payload, 'oid')
  if (oid === undefined || !isGuid(oid)) {
    throw new IdTokenError('claim_oid', 'id token rejected (oid is not a GUID)')
  }
  const widsClaim = payload.wids
  if (
    widsClaim !== undefined &&
    !(Array.isArray(widsClaim) && widsClaim.every((w) => typeof w === 'string'))
  ) {
    throw new IdTokenError('claim_wids', 'id token rejected (wids is not a list of role ids)')
  }
  return {
    tid: tid.toLowerCase(),
    oid: oid.toLowerCase(),
    // Entra's v2 tokens carry `preferred_username`; v1-style tokens (and some guests) only `upn`.
    preferredUsername: stringClaim(payload, 'preferred_username') ?? stringClaim(payload, 'upn') ?? '',
    name: stringClaim(payload, 'name') ?? '',
    wids: ((widsClaim as string[] | undefined) ?? []).map((w) => w.toLowerCase()),
  }
}
