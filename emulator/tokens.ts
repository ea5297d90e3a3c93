// Token endpoint: client authentication (a secret, or none for a public client) and the
// authorization_code, refresh_token, client_credentials and device_code grants, minting RS256 ID
// and access tokens.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto'
import { singleTenantRefusal, unconfiguredPermissions } from './apps.js'
import { JWT_BEARER } from './client-credentials.js'
import type { EmulatorClient, EmulatorUser } from './demo-data.js'
import { EntraError, missingParameterText } from './errors.js'
import { signJwt } from './keys.js'
import { resourceExists } from './resources.js'
import {
  applicationPermissions,
  defaultResourceOf,
  delegatedPermissions,
  parseScopes,
  resourceKey,
  resourcesOf,
  scopesForResource,
  splitScopeParam,
} from './scopes.js'
import type { EmulatorState, ResolvedTenant } from './state.js'
import { ID_TOKEN_LIFETIME_SEC, REFRESH_TOKEN_INACTIVITY_MS, tenantLabel } from './state.js'

export type TokenBody = Readonly<Record<string, string | undefined>>

export interface TokenRequest {
  readonly state: EmulatorState
  readonly tenant: ResolvedTenant
  readonly body: TokenBody
  readonly authorization: string | undefined
}

const sha256 = (value: string): Buffer => createHash('sha256').update(value).digest()

/** Pairwise `sub`: stable per user and client, different across clients. */
export function pairwiseSubject(oid: string, clientId: string): string {
  return sha256(`sub|${oid}|${clientId.toLowerCase()}`).toString('base64url').slice(0, 43)
}

/** Object id of the client's service principal in a tenant (exists once the tenant consented). */
export function servicePrincipalId(tid: string, clientId: string): string {
  const hex = sha256(`sp|${tid}|${clientId.toLowerCase()}`).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

function missing(name: string): EntraError {
  return new EntraError('invalid_request', 900144, 400, missingParameterText(name))
}

export function appNotFound(tenant: ResolvedTenant, clientId: string): EntraError {
  return new EntraError(
    'unauthorized_client',
    700016,
    400,
    `Application with identifier '${clientId}' was not found in the directory '${tenantLabel(tenant)}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
  )
}

/** AADSTS500011: no such API in the client's cloud (e.g. a Graph scope of another national cloud). */
function requireResource(tenant: ResolvedTenant, client: EmulatorClient, resource: string): void {
  if (resourceExists(client.cloud ?? 'global', resource)) return
  throw new EntraError(
    'invalid_resource',
    500011,
    400,
    `The resource principal named ${resource} was not found in the tenant named ${tenantLabel(tenant)}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
  )
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/** The client id a request names (body or Basic header), for fault matching and statistics. */
export function requestedClientId(body: TokenBody, authorization: string | undefined): string | undefined {
  return decodeBasic(authorization)?.clientId ?? body.client_id
}

function decodeBasic(authorization: string | undefined): { clientId: string; secret: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(authorization ?? '')
  if (!match) return undefined
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '))
    } catch {
      return s
    }
  }
  return { clientId: decode(decoded.slice(0, colon)), secret: decode(decoded.slice(colon + 1)) }
}

async function authenticateClient(req: TokenRequest): Promise<EmulatorClient> {
  const { state, tenant, body } = req
  const basic = decodeBasic(req.authorization)
  if (basic && body.client_id && body.client_id.toLowerCase() !== basic.clientId.toLowerCase()) {
    throw new EntraError(
      'invalid_request',
      90100,
      400,
      'Invalid request. The client_id in the body does not match the client of the Authorization header.',
    )
  }
  const clientId = basic?.clientId ?? body.client_id
  if (!clientId) throw missing('client_id')
  const client = state.findClient(clientId)
  if (!client) throw appNotFound(tenant, clientId)
  const refusal = singleTenantRefusal(tenant, client)
  if (refusal) {
    throw refusal.code === 700016
      ? appNotFound(tenant, client.clientId)
      : new EntraError('invalid_request', refusal.code, 400, refusal.text)
  }
  const secret = basic?.secret ?? body.client_secret
  if (body.client_assertion !== undefined) {
    if (secret) {
      throw new EntraError(
        'invalid_request',
        90100,
        400,
        'Invalid request: send a client secret or a client assertion, not both.',
      )
    }
    if (body.client_assertion_type !== JWT_BEARER) {
      throw new EntraError('invalid_request', 50027, 400, `client_assertion_type must be '${JWT_BEARER}'.`)
    }
    await state.credentials.verifyAssertion(client, body.client_assertion, tokenEndpointOf(req), state.now())
    return client
  }
  if (!secret) {
    // A public client ("Allow public client flows") redeems user grants without a secret.
    if (client.allowPublicClient && body.grant_type !== 'client_credentials') return client
    throw new EntraError('invalid_client', 7000218, 401)
  }
  state.credentials.verifySecret(client, secret, state.now())
  return client
}

/** The URL this request was sent to, which a client assertion's `aud` must name. */
function tokenEndpointOf(req: TokenRequest): string {
  return `${req.state.baseUrl}/${req.tenant.segment}/oauth2/v2.0/token`
}

export async function handleTokenRequest(req: TokenRequest): Promise<Record<string, unknown>> {
  const grantType = req.body.grant_type
  if (!grantType) throw missing('grant_type')
  const client = await authenticateClient(req)
  switch (grantType) {
    case 'authorization_code':
      return authorizationCodeGrant(req, client)
    case 'refresh_token':
      return refreshTokenGrant(req, client)
    case 'client_credentials':
      return clientCredentialsGrant(req, client)
    case DEVICE_CODE_GRANT:
      return deviceCodeGrant(req, client)
    default:
      throw new EntraError(
        'unsupported_grant_type',
        70003,
        400,
        `The app requested an unsupported grant type '${grantType}'.`,
      )
  }
}

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'

/** RFC 8628 polling: pending, slow_down, declined, expired, then the user's tokens once. */
async function deviceCodeGrant(req: TokenRequest, client: EmulatorClient) {
  const { state, tenant, body } = req
  const deviceCode = body.device_code ?? body.code
  if (!deviceCode) throw missing('device_code')
  const rec = state.deviceCodes.get(deviceCode)
  if (!rec || rec.clientId.toLowerCase() !== client.clientId.toLowerCase()) {
    throw new EntraError(
      'bad_verification_code',
      70000,
      400,
      'The provided value for the input parameter device_code is not valid.',
    )
  }
  if (rec.tenant.segment !== tenant.segment) throw new EntraError('invalid_grant', 700005)
  const now = state.now()
  if (rec.status === 'redeemed') throw new EntraError('invalid_grant', 54005)
  if (now >= rec.expiresAt) {
    throw new EntraError('expired_token', 70020, 400, 'The provided device code has expired.')
  }
  if (rec.status === 'declined') {
    throw new EntraError(
      'authorization_declined',
      70019,
      400,
      'The end user denied the authorization request.',
    )
  }
  if (rec.status === 'refused' && rec.refusal !== undefined) {
    throw new EntraError(rec.refusal.error, rec.refusal.code, 400, rec.refusal.text)
  }
  const last = rec.lastPollAt
  rec.lastPollAt = now
  if (rec.status === 'pending') {
    if (last !== undefined && now - last < rec.intervalSec * 1000) {
      throw new EntraError('slow_down', 70016, 400, 'The client is polling too fast: wait the interval.')
    }
    throw new EntraError(
      'authorization_pending',
      70016,
      400,
      'OAuth 2.0 device flow error. Authorization is pending. Continue polling.',
    )
  }
  const user = rec.oid === undefined ? undefined : state.findUserByOid(rec.oid)
  if (!user) throw new EntraError('invalid_grant', 50173)
  rec.status = 'redeemed'
  return delegatedTokens(state, client, user, rec.scopes, {
    tenant,
    nonce: undefined,
    refresh: rec.scopes.some((s) => s.toLowerCase() === 'offline_access'),
    grantScopes: rec.scopes,
    explicitScope: false,
  })
}

/** AADSTS65001: a customer's app asked for permissions it has no consent (configuration) for. */
export function notConsented(client: EmulatorClient, what: readonly string[]): EntraError {
  return new EntraError(
    'invalid_grant',
    65001,
    400,
    `The user or administrator has not consented to use the application with ID '${client.clientId}' named '${client.name}' for ${what.join(' ')}. Add the permissions to the app registration and grant consent.`,
  )
}

function pkceMatches(verifier: string | undefined, challenge: string): boolean {
  if (!verifier || !/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) return false
  return safeEqual(sha256(verifier).toString('base64url'), challenge)
}

/** A code or refresh token is redeemed only by the client it was issued to. */
function requireIssuedTo(rec: { clientId: string }, client: EmulatorClient, what: 'code' | 'refresh token') {
  if (rec.clientId.toLowerCase() !== client.clientId.toLowerCase()) {
    throw new EntraError(
      'invalid_grant',
      70000,
      400,
      `Provided grant is invalid or malformed. The ${what} was issued to a different client.`,
    )
  }
}

async function authorizationCodeGrant(req: TokenRequest, client: EmulatorClient) {
  const { state, tenant, body } = req
  if (!body.code) throw missing('code')
  const rec = state.codes.get(body.code)
  if (!rec) throw new EntraError('invalid_grant', 9002313)
  requireIssuedTo(rec, client, 'code')
  if (rec.redeemed) throw new EntraError('invalid_grant', 54005)
  if (state.now() > rec.expiresAt) {
    throw new EntraError(
      'invalid_grant',
      70008,
      400,
      'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
    )
  }
  if (rec.pathSegment !== tenant.segment) throw new EntraError('invalid_grant', 700005)
  if (body.redirect_uri !== rec.redirectUri) {
    throw new EntraError(
      'invalid_grant',
      500112,
      400,
      `The reply address '${body.redirect_uri ?? ''}' does not match the reply address '${rec.redirectUri}' provided when requesting Authorization code.`,
    )
  }
  if (rec.codeChallenge !== undefined && !pkceMatches(body.code_verifier, rec.codeChallenge)) {
    throw new EntraError('invalid_grant', 501481)
  }
  const user = state.findUserByOid(rec.oid)
  if (!user) throw new EntraError('invalid_grant', 70000)
  rec.redeemed = true
  const requested = body.scope ? splitScopeParam(body.scope) : rec.scopes
  return delegatedTokens(state, client, user, requested, {
    tenant,
    nonce: rec.nonce,
    refresh: rec.scopes.some((s) => s.toLowerCase() === 'offline_access'),
    grantScopes: rec.scopes,
    explicitScope: body.scope !== undefined,
  })
}

async function refreshTokenGrant(req: TokenRequest, client: EmulatorClient) {
  const { state, tenant, body } = req
  if (!body.refresh_token) throw missing('refresh_token')
  const rec = state.refreshTokens.get(body.refresh_token)
  if (!rec) throw new EntraError('invalid_grant', 9002313)
  requireIssuedTo(rec, client, 'refresh token')
  if (rec.revoked) throw new EntraError('invalid_grant', 50173)
  if (rec.expiredBy !== undefined)
    throw new EntraError(rec.expiredBy.error, rec.expiredBy.code, 400, rec.expiredBy.text)
  if (state.now() - rec.issuedAt > REFRESH_TOKEN_INACTIVITY_MS) {
    throw new EntraError(
      'invalid_grant',
      700082,
      400,
      `The refresh token has expired due to inactivity. The token was issued on ${new Date(rec.issuedAt).toISOString()} and was inactive for 90.00:00:00.`,
    )
  }
  if (tenant.kind === 'keyword' ? tenant.keyword === 'consumers' : tenant.tenant.tid !== rec.tid) {
    throw new EntraError(
      'invalid_grant',
      700005,
      400,
      'Provided refresh token is intended to use against other tenant, thus rejected.',
    )
  }
  const user = state.findUserByOid(rec.oid)
  if (!user) throw new EntraError('invalid_grant', 50173)
  const requested = body.scope ? splitScopeParam(body.scope) : rec.scopes
  return delegatedTokens(state, client, user, requested, {
    tenant,
    nonce: undefined,
    refresh: true,
    grantScopes: rec.scopes,
    explicitScope: body.scope !== undefined,
  })
}

async function clientCredentialsGrant(req: TokenRequest, client: EmulatorClient) {
  const { state, tenant, body } = req
  if (tenant.kind !== 'tenant') {
    throw new EntraError(
      'invalid_request',
      50059,
      400,
      `No tenant-identifying information found in either the request or implied by any provided credentials. The client credentials grant needs a tenant-specific endpoint, not '/${tenant.segment}'.`,
    )
  }
  if (!body.scope) throw missing('scope')
  const scopes = splitScopeParam(body.scope)
  const parsed = parseScopes(scopes, client)
  const only = parsed[0]
  if (parsed.length !== 1 || !only) {
    throw new EntraError(
      'invalid_scope',
      70011,
      400,
      `The provided value for the input parameter 'scope' is not valid. The scope ${body.scope} is not valid: request one resource's /.default at a time.`,
    )
  }
  if (only.resource === null || only.permission !== '.default' || !only.raw.includes('/')) {
    throw new EntraError(
      'invalid_scope',
      1002012,
      400,
      `The provided value for scope ${only.raw} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
    )
  }
  const tid = tenant.tenant.tid
  // A single-tenant app has a service principal in its own tenant from the start (no roles until
  // an administrator consents); elsewhere an app exists only once the tenant consented.
  if (client.homeTenant !== tid && !state.hasAdminConsent(tid, client.clientId))
    throw appNotFound(tenant, client.clientId)
  const resource = only.resource
  requireResource(tenant, client, resource)
  const roles = grantedRoles(client, resource, state.adminConsentScopes(tid, client.clientId))
  const now = Math.floor(state.now() / 1000)
  const lifetime = state.accessTokenLifetimeSec
  const spId = servicePrincipalId(tid, client.clientId)
  const accessToken = await signJwt(state.keys[0]!, {
    aud: resource,
    iss: state.issuer(tid),
    iat: now,
    nbf: now,
    exp: now + lifetime,
    tid,
    oid: spId,
    sub: spId,
    appid: client.clientId,
    azp: client.clientId,
    appidacr: '1',
    azpacr: '1',
    idtyp: 'app',
    ...(roles.length > 0 ? { roles } : {}),
    ver: '2.0',
    jti: randomUUID(),
    uti: randomUUID(),
  })
  return { token_type: 'Bearer', expires_in: lifetime, ext_expires_in: lifetime, access_token: accessToken }
}

/**
 * Application permissions (roles) admin consent granted on `resource`: a `.default` consent grants
 * every statically configured permission of the app, across resources, as Entra does; explicit
 * scopes grant only the configured application permissions they name.
 */
function grantedRoles(client: EmulatorClient, resource: string, consented: ReadonlySet<string>): string[] {
  const parsed = parseScopes([...consented], client)
  const configured = applicationPermissions(client, resource)
  if (parsed.some((p) => p.permission.toLowerCase() === '.default')) return configured
  return configured.filter((role) =>
    parsed.some(
      (p) =>
        p.resource !== null &&
        resourceKey(p.resource) === resourceKey(resource) &&
        p.permission.toLowerCase() === role.toLowerCase(),
    ),
  )
}

interface DelegatedOptions {
  readonly tenant: ResolvedTenant
  readonly nonce: string | undefined
  readonly refresh: boolean
  readonly grantScopes: readonly string[]
  /** The token request named `scope` itself (then it must name one resource at most). */
  readonly explicitScope: boolean
}

async function delegatedTokens(
  state: EmulatorState,
  client: EmulatorClient,
  user: EmulatorUser,
  requested: readonly string[],
  options: DelegatedOptions,
): Promise<Record<string, unknown>> {
  const parsed = parseScopes(requested, client)
  const unconfigured = unconfiguredPermissions(client, parsed)
  if (unconfigured.length > 0) throw notConsented(client, unconfigured)
  const resources = resourcesOf(parsed)
  if (options.explicitScope && resources.length > 1) {
    throw new EntraError(
      'invalid_scope',
      28000,
      400,
      `Provided value for the input parameter scope is not valid because it contains more than one resource. Scope ${requested.join(' ')} is not valid.`,
    )
  }
  // Entra issues an access token for one resource: the first requested, or Graph for OIDC-only.
  const resource = resources[0] ?? defaultResourceOf(client)
  requireResource(options.tenant, client, resource)
  const oidc = parsed.filter((s) => s.resource === null).map((s) => s.permission)
  const hasResourceScope = resources.length > 0
  const permissions = hasResourceScope
    ? delegatedPermissions(client, resource, parsed)
    : [...oidc.filter((s) => s !== 'offline_access'), 'User.Read']
  // The scopes named for the resource as requested, or each permission when `.default` was asked.
  const forResource = scopesForResource(parsed, resource)
  const responseScopes = !hasResourceScope
    ? [`${resource}/User.Read`]
    : forResource.some((s) => s.permission.toLowerCase() === '.default')
      ? permissions.map((p) => `${resource}/${p}`)
      : forResource.map((s) => s.raw)
  const wantsIdToken = oidc.includes('openid')

  const now = Math.floor(state.now() / 1000)
  const lifetime = state.accessTokenLifetimeSec
  const key = state.keys[0]!
  const wids = user.roles.length > 0 ? { wids: [...user.roles] } : {}
  const accessToken = await signJwt(key, {
    aud: resource,
    iss: state.issuer(user.tid),
    iat: now,
    nbf: now,
    exp: now + lifetime,
    tid: user.tid,
    oid: user.oid,
    sub: pairwiseSubject(user.oid, resource),
    name: user.displayName,
    preferred_username: user.username,
    upn: user.username,
    appid: client.clientId,
    azp: client.clientId,
    appidacr: '1',
    azpacr: '1',
    idtyp: 'user',
    scp: permissions.join(' '),
    ...wids,
    ver: '2.0',
    jti: randomUUID(),
    uti: randomUUID(),
  })

  const response: Record<string, unknown> = {
    token_type: 'Bearer',
    scope: [...responseScopes, ...oidc.filter((s) => s !== 'offline_access' || options.refresh)].join(' '),
    expires_in: lifetime,
    ext_expires_in: lifetime,
    access_token: accessToken,
  }
  if (options.refresh) {
    response.refresh_token = state.issueRefreshToken({
      clientId: client.clientId,
      tid: user.tid,
      oid: user.oid,
      scopes: options.grantScopes,
    })
  }
  if (wantsIdToken) {
    response.id_token = await signJwt(key, {
      aud: client.clientId,
      iss: state.issuer(user.tid),
      iat: now,
      nbf: now,
      exp: now + ID_TOKEN_LIFETIME_SEC,
      sub: pairwiseSubject(user.oid, client.clientId),
      tid: user.tid,
      oid: user.oid,
      preferred_username: user.username,
      name: user.displayName,
      ...(oidc.includes('email') ? { email: user.username } : {}),
      ...(options.nonce !== undefined ? { nonce: options.nonce } : {}),
      ...wids,
      ver: '2.0',
      uti: randomUUID(),
    })
  }
  return response
}
