// The Entra ID identity provider: discovery, authorization URLs, code redemption with our own
// ID-token validation, client credentials and refresh through openid-client against per-tenant
// metadata. Every token request authenticates through AppCredentials (app-credentials.ts: secret,
// certificate or federated assertion, with failover between an app's credentials). Speaks to
// whatever each cloud's authority URL points at; knows nothing else about it.

import * as oidc from 'openid-client'
import { abortable } from '../abortable.js'
import { BoundedCache } from '../bounded-cache.js'
import type { Config, ResolvedApp } from '../config.js'
import { isGuid } from '../guid.js'
import { AppCredentials } from './app-credentials.js'
import type { ClientAuthParams } from './client-assertion.js'
import { pollDeviceCode, requestDeviceAuthorization } from './device-code.js'
import { IdTokenError, verifyIdToken } from './id-token.js'
import { createSigningKeys } from './signing-keys.js'
import type {
  AdminConsentRequest,
  CodeRedemption,
  DeviceAuthorization,
  DevicePoll,
  IdentityProvider,
  RedeemedCode,
  SignInRequest,
  TokenGrant,
} from './types.js'
import { UpstreamError } from './types.js'
import { readErrorBody, toUpstreamError, upstreamErrorFromResponse } from './upstream-errors.js'

export interface EntraIdentityProviderOptions {
  /** Bound on every call to the identity provider; default `config.tokens.upstreamTimeoutMs`. */
  timeoutMs?: number
  /** How long discovery documents are reused; default 24 h. */
  metadataTtlMs?: number
  /** Most tenants whose discovery document is kept; default 5000. */
  maxCachedTenants?: number
  /**
   * The apps' credentials (shared with the app for the console, metrics and reloads); default: the
   * configuration's, with failing marks kept in this process and nothing logged.
   */
  credentials?: AppCredentials
}

const SILENT = { warn() {}, info() {} }

const ORGANIZATIONS = 'organizations'
const DEFAULT_EXPIRES_IN_SECONDS = 3599

type Metadata = Readonly<oidc.ServerMetadata>

function isInsecure(authority: string): boolean {
  // Config only lets http through for loopback hosts or with UNSAFE_ALLOW_HTTP.
  return new URL(authority).protocol === 'http:'
}

function requireString(metadata: Metadata, field: keyof oidc.ServerMetadata, where: string): string {
  const value = metadata[field]
  if (typeof value !== 'string' || value === '') {
    throw new UpstreamError('unavailable', `discovery of ${where}: ${String(field)} is missing`)
  }
  return value
}

const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access'])

/** The resource part of `https://host/path/Permission` (no trailing slash, lower case). */
function resourceOfScope(scope: string): string {
  return scope
    .slice(0, Math.max(scope.lastIndexOf('/'), 0))
    .replace(/\/+$/, '')
    .toLowerCase()
}

/**
 * Consent may ask for several APIs' scopes at once, but Entra's token endpoint answers for one
 * resource: redeem with the OIDC scopes and those of the first resource named (its token is the one
 * the code yields; the other consents stay recorded for later refreshes).
 */
export function redemptionScopes(scopes: readonly string[]): string[] {
  const first = scopes.find((scope) => !OIDC_SCOPES.has(scope.toLowerCase()))
  if (first === undefined) return [...scopes]
  const resource = resourceOfScope(first)
  return scopes.filter((scope) => OIDC_SCOPES.has(scope.toLowerCase()) || resourceOfScope(scope) === resource)
}

function combine(timeoutMs: number, signal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs)
  return signal === undefined ? timeout : AbortSignal.any([timeout, signal])
}

export function createEntraIdentityProvider(
  config: Config,
  options: EntraIdentityProviderOptions = {},
): IdentityProvider {
  const timeoutMs = options.timeoutMs ?? config.tokens.upstreamTimeoutMs
  const timeoutSeconds = timeoutMs / 1000
  const credentials = options.credentials ?? new AppCredentials(config.apps, { logger: SILENT })
  // Per cloud authority and tenant (`organizations` or a GUID); client-independent.
  const metadataCache = new BoundedCache<Promise<Metadata>>({
    maxEntries: options.maxCachedTenants ?? 5000,
    ttlMs: options.metadataTtlMs ?? 24 * 3_600_000,
    evict: 'least-recently-used',
  })
  // Per JWKS URI, i.e. per cloud.
  const keysFor = createSigningKeys(timeoutMs)

  async function discover(app: ResolvedApp, tenant: string): Promise<Metadata> {
    const where = `${app.authority}/${tenant}`
    // Tenant-independent metadata advertises the `{tenantid}` issuer template, which openid-client's
    // issuer check rejects outside login.microsoftonline.com; the full .well-known URL skips that
    // check (we validate ID tokens ourselves). Per-tenant documents keep openid-client's exact check.
    const url =
      tenant === ORGANIZATIONS
        ? new URL(`${app.authority}/${ORGANIZATIONS}/v2.0/.well-known/openid-configuration`)
        : new URL(`${app.authority}/${tenant}/v2.0`)
    let metadata: Metadata
    try {
      const discovered = await oidc.discovery(url, app.clientId, undefined, oidc.None(), {
        timeout: timeoutSeconds,
        ...(isInsecure(app.authority) ? { execute: [oidc.allowInsecureRequests] } : {}),
      })
      metadata = discovered.serverMetadata()
    } catch (error) {
      throw await toUpstreamError(error, `discovery of ${where}`)
    }
    requireString(metadata, 'token_endpoint', where)
    requireString(metadata, 'authorization_endpoint', where)
    const issuer = requireString(metadata, 'issuer', where)
    if (tenant === ORGANIZATIONS) {
      requireString(metadata, 'jwks_uri', where)
      if (!issuer.includes('{tenantid}')) {
        throw new UpstreamError('unavailable', `discovery of ${where}: issuer is not a {tenantid} template`)
      }
    }
    return metadata
  }

  function metadataFor(app: ResolvedApp, tenant: string, signal?: AbortSignal): Promise<Metadata> {
    const key = `${app.authority}|${tenant.toLowerCase()}`
    let pending = metadataCache.get(key)
    if (pending === undefined) {
      pending = discover(app, tenant.toLowerCase())
      metadataCache.set(key, pending)
      const settled = pending
      // A failed discovery is not cached: the next call tries again.
      settled.catch(() => metadataCache.delete(key, settled))
    }
    return abortable(pending, signal)
  }

  function configurationFor(
    app: ResolvedApp,
    metadata: Metadata,
    signal: AbortSignal | undefined,
    auth: ClientAuthParams = { client_id: app.clientId },
  ) {
    // Client authentication is ours (AppCredentials): openid-client's custom ClientAuth hook only
    // writes the parameters prepared for this one request into its body.
    const clientAuth: oidc.ClientAuth = (_as, _client, body) => {
      for (const [name, value] of Object.entries(auth)) body.set(name, value)
    }
    const configuration = new oidc.Configuration(metadata, app.clientId, undefined, clientAuth)
    if (isInsecure(app.authority)) oidc.allowInsecureRequests(configuration)
    configuration.timeout = timeoutSeconds
    if (signal !== undefined) {
      configuration[oidc.customFetch] = (url, init) =>
        fetch(url, { ...init, signal: init.signal ? AbortSignal.any([init.signal, signal]) : signal })
    }
    return configuration
  }

  /** One authorization-code redemption with one credential's parameters; throws UpstreamError. */
  async function redeemWith(
    tokenEndpoint: string,
    auth: ClientAuthParams,
    redemption: CodeRedemption,
  ): Promise<Record<string, unknown>> {
    try {
      const response = await fetch(tokenEndpoint, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({
          ...auth,
          grant_type: 'authorization_code',
          code: redemption.code,
          redirect_uri: redemption.redirectUri,
          code_verifier: redemption.codeVerifier,
          scope: redemptionScopes(redemption.scopes).join(' '),
        }),
        signal: AbortSignal.timeout(timeoutMs),
      })
      if (response.status !== 200) {
        throw upstreamErrorFromResponse(
          response.status,
          response.headers,
          await readErrorBody(response),
          'code redemption',
        )
      }
      const parsed: unknown = await response.json()
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
        throw new UpstreamError('unavailable', 'code redemption: answer is not a JSON object', {
          status: 200,
        })
      }
      return parsed as Record<string, unknown>
    } catch (error) {
      throw await toUpstreamError(error, 'code redemption')
    }
  }

  function toGrant(response: oidc.TokenEndpointResponse): TokenGrant {
    return {
      accessToken: response.access_token,
      expiresIn:
        typeof response.expires_in === 'number' && Number.isFinite(response.expires_in)
          ? response.expires_in
          : DEFAULT_EXPIRES_IN_SECONDS,
      scope: response.scope ?? '',
      ...(typeof response.refresh_token === 'string' && response.refresh_token !== ''
        ? { refreshToken: response.refresh_token }
        : {}),
    }
  }

  function requireTenantId(tenantId: string): string {
    if (!isGuid(tenantId)) throw new TypeError('tenantId must be a tenant GUID')
    return tenantId.toLowerCase()
  }

  return {
    async signInUrl(app: ResolvedApp, request: SignInRequest): Promise<string> {
      const metadata = await metadataFor(app, app.signInTenant ?? ORGANIZATIONS)
      const parameters: Record<string, string> = {
        response_type: 'code',
        response_mode: 'query',
        redirect_uri: request.redirectUri,
        scope: request.scopes.join(' '),
        state: request.state,
        nonce: request.nonce,
        code_challenge: request.codeChallenge,
        code_challenge_method: 'S256',
      }
      if (request.prompt !== undefined) parameters.prompt = request.prompt
      if (request.loginHint !== undefined) parameters.login_hint = request.loginHint
      return oidc.buildAuthorizationUrl(configurationFor(app, metadata, undefined), parameters).href
    },

    async redeemCode(app: ResolvedApp, redemption: CodeRedemption): Promise<RedeemedCode> {
      const metadata = await metadataFor(app, app.signInTenant ?? ORGANIZATIONS)
      // Hand-written on purpose: the code must be redeemed at the authority path it was issued
      // for, and the ID token validated with the `{tenantid}` template in every cloud.
      const tokenEndpoint = metadata.token_endpoint as string
      let body: Record<string, unknown>
      try {
        body = await credentials.authenticate(app, tokenEndpoint, (auth) =>
          redeemWith(tokenEndpoint, auth, redemption),
        )
      } catch (error) {
        throw await toUpstreamError(error, 'code redemption')
      }
      if (typeof body.id_token !== 'string' || body.id_token === '') {
        throw new UpstreamError('unavailable', 'code redemption: answer has no id_token', { status: 200 })
      }
      const idToken = await verifyIdToken(body.id_token, keysFor(metadata), {
        clientId: app.clientId,
        issuerTemplate: metadata.issuer,
        nonce: redemption.nonce,
      })
      return {
        idToken,
        ...(typeof body.access_token === 'string' && body.access_token !== ''
          ? { accessToken: body.access_token }
          : {}),
        ...(typeof body.refresh_token === 'string' && body.refresh_token !== ''
          ? { refreshToken: body.refresh_token }
          : {}),
      }
    },

    async adminConsentUrl(app: ResolvedApp, request: AdminConsentRequest): Promise<string> {
      const url = new URL(`${app.authority}/${requireTenantId(request.tenantId)}/v2.0/adminconsent`)
      url.searchParams.set('client_id', app.clientId)
      url.searchParams.set('redirect_uri', request.redirectUri)
      url.searchParams.set('state', request.state)
      url.searchParams.set('scope', request.scope)
      return url.href
    },

    async clientCredentials(
      app: ResolvedApp,
      tenantId: string,
      scope: string,
      signal?: AbortSignal,
    ): Promise<TokenGrant> {
      const tid = requireTenantId(tenantId)
      const bounded = combine(timeoutMs, signal)
      try {
        const metadata = await metadataFor(app, tid, bounded)
        const tokenEndpoint = requireString(metadata, 'token_endpoint', `${app.authority}/${tid}`)
        const response = await credentials.authenticate(app, tokenEndpoint, async (auth) => {
          try {
            return await oidc.clientCredentialsGrant(configurationFor(app, metadata, bounded, auth), {
              scope,
            })
          } catch (error) {
            throw await toUpstreamError(error, 'client credentials')
          }
        })
        return toGrant(response)
      } catch (error) {
        throw await toUpstreamError(error, 'client credentials')
      }
    },

    async refresh(
      app: ResolvedApp,
      tenantId: string,
      refreshToken: string,
      scope: string,
      signal?: AbortSignal,
    ): Promise<TokenGrant> {
      const tid = requireTenantId(tenantId)
      const bounded = combine(timeoutMs, signal)
      // Ask for offline_access every time so the answer always carries the rotated refresh token.
      const scopes = scope.split(/\s+/).filter(Boolean)
      if (!scopes.includes('offline_access')) scopes.push('offline_access')
      try {
        const metadata = await metadataFor(app, tid, bounded)
        const tokenEndpoint = requireString(metadata, 'token_endpoint', `${app.authority}/${tid}`)
        const response = await credentials.authenticate(app, tokenEndpoint, async (auth) => {
          try {
            return await oidc.refreshTokenGrant(
              configurationFor(app, metadata, bounded, auth),
              refreshToken,
              {
                scope: scopes.join(' '),
              },
            )
          } catch (error) {
            throw await toUpstreamError(error, 'refresh')
          }
        })
        return toGrant(response)
      } catch (error) {
        throw await toUpstreamError(error, 'refresh')
      }
    },

    async startDeviceAuthorization(
      app: ResolvedApp,
      tenantId: string,
      scopes: readonly string[],
    ): Promise<DeviceAuthorization> {
      const tid = requireTenantId(tenantId)
      const bounded = AbortSignal.timeout(timeoutMs)
      try {
        const metadata = await metadataFor(app, tid, bounded)
        // A public client: its client id alone, whatever credentials the app lists.
        const configuration = configurationFor(app, metadata, bounded, { client_id: app.clientId })
        return await requestDeviceAuthorization(configuration, scopes)
      } catch (error) {
        throw await toUpstreamError(error, 'device authorization')
      }
    },

    async pollDeviceAuthorization(
      app: ResolvedApp,
      tenantId: string,
      deviceCode: string,
    ): Promise<DevicePoll> {
      const tid = requireTenantId(tenantId)
      const bounded = AbortSignal.timeout(timeoutMs)
      try {
        const metadata = await metadataFor(app, tid, bounded)
        const configuration = configurationFor(app, metadata, bounded, { client_id: app.clientId })
        return await pollDeviceCode(configuration, deviceCode, (idToken) =>
          verifyIdToken(idToken, keysFor(metadata), {
            clientId: app.clientId,
            issuerTemplate: metadata.issuer,
            nonce: null,
          }),
        )
      } catch (error) {
        if (error instanceof IdTokenError) throw error
        throw await toUpstreamError(error, 'device code poll')
      }
    },
  }
}
