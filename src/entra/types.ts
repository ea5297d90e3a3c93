// The identity-provider boundary. Everything that talks to Entra ID (or to whatever the configured
// authority URL points at) implements this; services depend on the interface only.
import type { ResolvedApp } from '../config.js'

/** Claims of a validated ID token that the broker relies on. */
export interface VerifiedIdToken {
  /** Tenant GUID. */
  tid: string
  /** User object id (GUID), stable across apps (unlike `sub`). */
  oid: string
  preferredUsername: string
  name: string
  /** Directory role template ids (the `wids` optional claim); empty when absent. */
  wids: string[]
}

export interface TokenGrant {
  accessToken: string
  /** Seconds, as the identity provider said. */
  expiresIn: number
  scope: string
  /** Delegated grants only: the rotated refresh token. */
  refreshToken?: string
}

export type UpstreamFailureKind =
  /** The IdP answered with an OAuth error (`error` field). */
  | 'oauth'
  /** HTTP 429 / AADSTS50196. */
  | 'throttled'
  /** 5xx, connection refused/reset, unparseable answer. */
  | 'unavailable'
  /** No answer within the upstream timeout. */
  | 'timeout'

/** A failed call to the identity provider. Decide on `error`, never on `description` text. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError'
  readonly kind: UpstreamFailureKind
  /** OAuth `error`, e.g. `invalid_grant`. */
  readonly error: string | undefined
  /** AADSTS numbers from `error_codes`, for logs and metrics. */
  readonly errorCodes: readonly number[]
  readonly status: number | undefined
  readonly retryAfterSeconds: number | undefined
  readonly traceId: string | undefined

  constructor(
    kind: UpstreamFailureKind,
    message: string,
    details: {
      error?: string
      errorCodes?: readonly number[]
      status?: number
      retryAfterSeconds?: number
      traceId?: string
      cause?: unknown
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.kind = kind
    this.error = details.error
    this.errorCodes = details.errorCodes ?? []
    this.status = details.status
    this.retryAfterSeconds = details.retryAfterSeconds
    this.traceId = details.traceId
  }

  /** e.g. `AADSTS50173`, or the OAuth error, or the kind: a short label for logs and metrics. */
  get label(): string {
    const code = this.errorCodes[0]
    return code !== undefined ? `AADSTS${code}` : (this.error ?? this.kind)
  }
}

export interface SignInRequest {
  state: string
  nonce: string
  codeChallenge: string
  /** Full scope list, e.g. `openid profile offline_access https://graph.microsoft.com/Mail.Read`. */
  scopes: readonly string[]
  redirectUri: string
  prompt?: 'login' | 'consent' | 'select_account'
  loginHint?: string
}

export interface CodeRedemption {
  code: string
  codeVerifier: string
  redirectUri: string
  nonce: string
  scopes: readonly string[]
}

export interface RedeemedCode {
  idToken: VerifiedIdToken
  /** For the first resource of the redeemed scopes (Entra issues one per request). */
  accessToken?: string
  refreshToken?: string
}

export interface AdminConsentRequest {
  tenantId: string
  state: string
  scope: string
  redirectUri: string
}

/** A started device authorization (RFC 8628) at a tenant. `deviceCode` is a bearer secret. */
export interface DeviceAuthorization {
  /** What the poller sends; never shown, never logged. */
  deviceCode: string
  /** What the person types at `verificationUri`. */
  userCode: string
  verificationUri: string
  /** Seconds until the device code expires (about 15 minutes at Entra). */
  expiresIn: number
  /** Seconds to wait between polls (5 when the answer names none, per RFC 8628). */
  interval: number
}

/**
 * One poll of the device code grant: still `pending`, `slow_down` (poll 5 s less often), or
 * `granted` with the user's tokens. Every other answer (declined, expired, refused) is thrown as
 * an UpstreamError whose `error` and AADSTS codes say why.
 */
export type DevicePoll =
  | { status: 'pending' }
  | { status: 'slow_down' }
  | { status: 'granted'; tokens: RedeemedCode }

export interface IdentityProvider {
  /** Authorization-code sign-in at the `organizations` authority of the app's cloud. */
  signInUrl(app: ResolvedApp, request: SignInRequest): Promise<string>
  /** Redeems a code at the same authority path and validates the ID token (signature, iss by tid, aud, nonce, exp). */
  redeemCode(app: ResolvedApp, redemption: CodeRedemption): Promise<RedeemedCode>
  /** v2 admin-consent URL for one tenant. */
  adminConsentUrl(app: ResolvedApp, request: AdminConsentRequest): Promise<string>
  /** App-only token for a tenant (`/{tid}/oauth2/v2.0/token`). Bounded by the upstream timeout. */
  clientCredentials(
    app: ResolvedApp,
    tenantId: string,
    scope: string,
    signal?: AbortSignal,
  ): Promise<TokenGrant>
  /** Delegated token from a refresh token; returns the rotated refresh token. */
  refresh(
    app: ResolvedApp,
    tenantId: string,
    refreshToken: string,
    scope: string,
    signal?: AbortSignal,
  ): Promise<TokenGrant>
  /**
   * Starts the device code grant for a public client at its tenant (`/{tid}/oauth2/v2.0/devicecode`):
   * the client id only, no client authentication.
   */
  startDeviceAuthorization(
    app: ResolvedApp,
    tenantId: string,
    scopes: readonly string[],
  ): Promise<DeviceAuthorization>
  /**
   * One poll of the token endpoint for a device code (public client); a granted answer's ID token is
   * validated (signature, iss by tid, aud, exp; no nonce in this grant).
   */
  pollDeviceAuthorization(app: ResolvedApp, tenantId: string, deviceCode: string): Promise<DevicePoll>
}
