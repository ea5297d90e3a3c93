// Entra ID (v2) emulator: discovery, JWKS, authorize, admin consent, token, device authorization,
// sign-out, a single sign-on session cookie, single-tenant app registrations made at run time, Azure Resource Manager's subscription listings, plus `/_emulator/` test
// hooks. The broker only ever sees it as an authority (and Resource Manager) URL such as
// `http://127.0.0.1:3001`.
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import cookie from '@fastify/cookie'
import formbody from '@fastify/formbody'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import Fastify from 'fastify'
import { newSingleTenantApp, parseAppRegistration, singleTenantRefusal } from './apps.js'
import { param, redirectUriAllowed, registerAuthorizeRoutes } from './authorize.js'
import { registerCredentialHooks } from './credential-hooks.js'
import type { EmulatorClient, EmulatorTenant, EmulatorUser } from './demo-data.js'
import { DEMO_CLIENTS, DEMO_TENANTS, DEMO_USERS } from './demo-data.js'
import { EntraError, missingParameterText, tenantNotFoundText } from './errors.js'
import { escapeHtml, messagePage } from './html.js'
import { createSigningKey, publicJwks } from './keys.js'
import { registerResourceManagerRoutes } from './resource-manager.js'
import { defaultResourceOf, splitScopeParam } from './scopes.js'
import { clearSessionCookie, sessionCookie } from './session.js'
import type { ExpiryCause, Fault, ResolvedTenant } from './state.js'
import {
  CONSUMERS_TENANT_ID,
  DEFAULT_ACCESS_TOKEN_LIFETIME_SEC,
  EmulatorState,
  EXPIRY_CAUSES,
} from './state.js'
import type { TokenBody } from './tokens.js'
import { appNotFound, DEVICE_CODE_GRANT, handleTokenRequest, requestedClientId } from './tokens.js'

export type { EmulatorStats, Fault } from './state.js'
export { EmulatorState } from './state.js'

export interface EmulatorOptions {
  /** Issuer base URL, no trailing slash. `startEmulator` sets it from the bound port unless given. */
  baseUrl?: string
  /** Lifetime of access tokens (default 3600 s); `/_emulator/faults` can change it at runtime. */
  accessTokenLifetimeSec?: number
  /** Extra clients, in addition to the demo clients. */
  clients?: readonly EmulatorClient[]
  /** Extra users (their tenants must be known). */
  users?: readonly EmulatorUser[]
  /** Extra tenants. */
  tenants?: readonly EmulatorTenant[]
  /** Redirect URIs registered on every demo client, e.g. `http://broker:3000/callback`. */
  redirectUris?: readonly string[]
  /** Polling interval the device authorization endpoint announces (default 5 s, as Entra). */
  deviceCodeIntervalSec?: number
  /** Clock in milliseconds (default `Date.now`). */
  now?: () => number
  /** Fastify request logging (default off). */
  logger?: boolean
}

export interface StartEmulatorOptions extends EmulatorOptions {
  host?: string
  /** 0 (default) picks a free port. */
  port?: number
}

export interface RunningEmulator {
  /** Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash): the authority host for the broker. */
  readonly url: string
  readonly port: number
  readonly state: EmulatorState
  readonly app: FastifyInstance
  close(): Promise<void>
}

const NO_STORE = { 'cache-control': 'no-store, no-cache', pragma: 'no-cache' }

function sendEntraError(request: FastifyRequest, reply: FastifyReply, state: EmulatorState, err: EntraError) {
  const correlation = request.headers['client-request-id']
  const body = err.body(new Date(state.now()), typeof correlation === 'string' ? correlation : undefined)
  return reply
    .code(err.status)
    .headers({ ...NO_STORE, 'x-ms-request-id': body.trace_id })
    .type('application/json; charset=utf-8')
    .send(body)
}

function tenantNotFound(segment: string): EntraError {
  return new EntraError('invalid_request', 90002, 400, tenantNotFoundText(segment))
}

const FAULT_DEFAULTS: Readonly<Record<number, { error: string; code: number }>> = {
  400: { error: 'invalid_request', code: 90100 },
  401: { error: 'invalid_client', code: 7000215 },
  429: { error: 'temporarily_unavailable', code: 50196 },
  500: { error: 'server_error', code: 90033 },
  503: { error: 'temporarily_unavailable', code: 90033 },
}

function sendFault(
  request: FastifyRequest,
  reply: FastifyReply,
  state: EmulatorState,
  fault: Fault,
): FastifyReply | undefined {
  if (fault.reset) {
    reply.hijack()
    request.raw.socket.destroy()
    return undefined
  }
  const status = fault.status ?? 400
  if (fault.retryAfter !== undefined) reply.header('retry-after', String(fault.retryAfter))
  if (fault.body !== undefined) return reply.code(status).type('text/html; charset=utf-8').send(fault.body)
  const fallback = FAULT_DEFAULTS[status] ?? (status >= 500 ? FAULT_DEFAULTS[500]! : FAULT_DEFAULTS[400]!)
  const error = new EntraError(
    fault.error ?? fallback.error,
    fault.errorCode ?? fallback.code,
    status,
    fault.errorDescription,
  )
  return sendEntraError(request, reply, state, error)
}

const FAULT_KEYS = new Set([
  'count',
  'delayMs',
  'status',
  'error',
  'errorCode',
  'errorDescription',
  'retryAfter',
  'body',
  'reset',
  'grantType',
  'tenant',
  'clientId',
  'accessTokenLifetimeSec',
])

/** Validates a `POST /_emulator/faults` body. */
export function parseFaultRequest(
  input: unknown,
): { fault: Fault | undefined; accessTokenLifetimeSec: number | undefined } | { error: string } {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    return { error: 'body must be an object' }
  const body = input as Record<string, unknown>
  for (const key of Object.keys(body)) if (!FAULT_KEYS.has(key)) return { error: `unknown field ${key}` }
  const int = (name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined | string => {
    const v = body[name]
    if (v === undefined) return undefined
    return Number.isInteger(v) && (v as number) >= min && (v as number) <= max
      ? (v as number)
      : `${name} must be an integer in [${min}, ${max}]`
  }
  const str = (name: string): string | undefined | { bad: string } => {
    const v = body[name]
    if (v === undefined) return undefined
    return typeof v === 'string' && v.length > 0 ? v : { bad: `${name} must be a non-empty string` }
  }
  const ints = {
    count: int('count', 1),
    delayMs: int('delayMs', 0, 600_000),
    status: int('status', 100, 599),
    errorCode: int('errorCode', 0),
    retryAfter: int('retryAfter', 0),
    accessTokenLifetimeSec: int('accessTokenLifetimeSec', 1),
  }
  for (const v of Object.values(ints)) if (typeof v === 'string') return { error: v }
  const strs = {
    error: str('error'),
    errorDescription: str('errorDescription'),
    grantType: str('grantType'),
    tenant: str('tenant'),
    clientId: str('clientId'),
  }
  for (const v of Object.values(strs)) if (typeof v === 'object') return { error: v.bad }
  if (body.body !== undefined && typeof body.body !== 'string') return { error: 'body must be a string' }
  if (body.reset !== undefined && typeof body.reset !== 'boolean') return { error: 'reset must be a boolean' }
  const n = (v: number | string | undefined) => v as number | undefined
  const s = (v: string | { bad: string } | undefined) => v as string | undefined
  const effect =
    ints.delayMs !== undefined ||
    ints.status !== undefined ||
    strs.error !== undefined ||
    ints.errorCode !== undefined ||
    body.body !== undefined ||
    body.reset === true
  const faultFields = Object.keys(body).some((k) => k !== 'accessTokenLifetimeSec')
  if (faultFields && !effect) {
    return { error: 'a fault needs delayMs, status, error, errorCode, body or reset' }
  }
  const lifetime = n(ints.accessTokenLifetimeSec)
  if (!effect) {
    if (lifetime === undefined) return { error: 'nothing to do: give a fault or accessTokenLifetimeSec' }
    return { fault: undefined, accessTokenLifetimeSec: lifetime }
  }
  const fault: Fault = {
    count: n(ints.count) ?? 1,
    ...(ints.delayMs !== undefined ? { delayMs: n(ints.delayMs) } : {}),
    ...(ints.status !== undefined ? { status: n(ints.status) } : {}),
    ...(strs.error !== undefined ? { error: s(strs.error) } : {}),
    ...(ints.errorCode !== undefined ? { errorCode: n(ints.errorCode) } : {}),
    ...(strs.errorDescription !== undefined ? { errorDescription: s(strs.errorDescription) } : {}),
    ...(ints.retryAfter !== undefined ? { retryAfter: n(ints.retryAfter) } : {}),
    ...(body.body !== undefined ? { body: body.body as string } : {}),
    ...(body.reset === true ? { reset: true } : {}),
    ...(strs.grantType !== undefined ? { grantType: s(strs.grantType) } : {}),
    ...(strs.tenant !== undefined ? { tenant: s(strs.tenant)!.toLowerCase() } : {}),
    ...(strs.clientId !== undefined ? { clientId: s(strs.clientId) } : {}),
  }
  return { fault, accessTokenLifetimeSec: lifetime }
}

function discoveryDocument(state: EmulatorState, tenant: ResolvedTenant) {
  const base = state.baseUrl
  const segment = tenant.kind === 'tenant' ? tenant.tenant.tid : tenant.segment
  const issuer =
    tenant.kind === 'tenant'
      ? state.issuer(tenant.tenant.tid)
      : tenant.keyword === 'consumers'
        ? state.issuer(CONSUMERS_TENANT_ID)
        : `${base}/{tenantid}/v2.0`
  const oauth = `${base}/${segment}/oauth2/v2.0`
  return {
    token_endpoint: `${oauth}/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/${segment}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer,
    request_uri_parameter_supported: false,
    authorization_endpoint: `${oauth}/authorize`,
    device_authorization_endpoint: `${oauth}/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${oauth}/logout`,
    claims_supported: [
      'sub',
      'iss',
      'aud',
      'exp',
      'iat',
      'nbf',
      'nonce',
      'preferred_username',
      'name',
      'tid',
      'oid',
      'ver',
      'wids',
      'email',
    ],
    code_challenge_methods_supported: ['S256'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT],
    tenant_region_scope: tenant.kind === 'tenant' ? tenant.tenant.region : null,
    cloud_instance_name: 'entra-emulator.local',
    msgraph_host: 'graph.microsoft.com',
  }
}

function jwksIssuer(state: EmulatorState, tenant: ResolvedTenant): string {
  return tenant.kind === 'tenant' ? state.issuer(tenant.tenant.tid) : `${state.baseUrl}/{tenantid}/v2.0`
}

/** Form fields of a token request (Entra reads only `application/x-www-form-urlencoded`). */
function formFields(request: FastifyRequest): TokenBody {
  const type = request.headers['content-type'] ?? ''
  if (!type.toLowerCase().startsWith('application/x-www-form-urlencoded')) return {}
  const out: Record<string, string | undefined> = {}
  const body = request.body
  if (typeof body === 'object' && body !== null) {
    for (const key of Object.keys(body)) out[key] = param(body, key)
  }
  return out
}

function withClients(options: EmulatorOptions): EmulatorClient[] {
  const extra = options.redirectUris ?? []
  const demo = DEMO_CLIENTS.map((c) => ({ ...c, redirectUris: [...c.redirectUris, ...extra] }))
  return [...demo, ...(options.clients ?? [])]
}

/** Builds the emulator app (not listening). The keys are generated here, hence async. */
export async function buildEmulator(
  options: EmulatorOptions = {},
): Promise<{ app: FastifyInstance; state: EmulatorState }> {
  const state = new EmulatorState({
    baseUrl: options.baseUrl ?? 'http://127.0.0.1:3001',
    tenants: [...DEMO_TENANTS, ...(options.tenants ?? [])],
    users: [...DEMO_USERS, ...(options.users ?? [])],
    clients: withClients(options),
    keys: [await createSigningKey()],
    accessTokenLifetimeSec: options.accessTokenLifetimeSec ?? DEFAULT_ACCESS_TOKEN_LIFETIME_SEC,
    ...(options.deviceCodeIntervalSec === undefined
      ? {}
      : { deviceCodeIntervalSec: options.deviceCodeIntervalSec }),
    now: options.now ?? Date.now,
  })
  const app = Fastify({ logger: options.logger ?? false })
  await app.register(formbody)
  await app.register(cookie)
  // Test hooks accept an empty body with a JSON content type.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body).trim()
    if (text === '') return done(null, {})
    try {
      done(null, JSON.parse(text))
    } catch {
      const err = new Error('Body is not valid JSON') as Error & { statusCode: number }
      err.statusCode = 400
      done(err, undefined)
    }
  })
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body))

  const tenantOrError = (request: FastifyRequest, reply: FastifyReply): ResolvedTenant | undefined => {
    const segment = (request.params as { tenant: string }).tenant
    const tenant = state.resolveTenant(segment)
    if (!tenant) sendEntraError(request, reply, state, tenantNotFound(segment))
    return tenant ?? undefined
  }

  app.get('/:tenant/v2.0/.well-known/openid-configuration', async (request, reply) => {
    const tenant = tenantOrError(request, reply)
    if (!tenant) return reply
    return reply.headers({ 'access-control-allow-origin': '*' }).send(discoveryDocument(state, tenant))
  })

  app.get('/:tenant/discovery/v2.0/keys', async (request, reply) => {
    const tenant = tenantOrError(request, reply)
    if (!tenant) return reply
    return reply
      .headers({ 'access-control-allow-origin': '*' })
      .send(publicJwks(state.keys, jwksIssuer(state, tenant)))
  })

  registerAuthorizeRoutes(app, state)
  registerResourceManagerRoutes(app, state)

  app.post('/:tenant/oauth2/v2.0/token', async (request, reply) => {
    const segment = (request.params as { tenant: string }).tenant.toLowerCase()
    const body = formFields(request)
    const grantType = body.grant_type ?? 'none'
    const clientId = requestedClientId(body, request.headers.authorization)
    state.countTokenRequest(grantType, segment, clientId)
    const faults = state.takeFaults({ grantType, tenant: segment, clientId })
    if (faults.delayMs > 0) await sleep(faults.delayMs)
    if (faults.answer) return sendFault(request, reply, state, faults.answer)
    const tenant = state.resolveTenant(segment)
    if (!tenant) return sendEntraError(request, reply, state, tenantNotFound(segment))
    try {
      const result = await handleTokenRequest({
        state,
        tenant,
        body,
        authorization: request.headers.authorization,
      })
      return reply.headers(NO_STORE).type('application/json; charset=utf-8').send(result)
    } catch (err) {
      if (err instanceof EntraError) return sendEntraError(request, reply, state, err)
      throw err
    }
  })

  // Device authorization (RFC 8628): the device shows the user code and polls the token endpoint.
  app.post('/:tenant/oauth2/v2.0/devicecode', async (request, reply) => {
    const tenant = tenantOrError(request, reply)
    if (!tenant) return reply
    const body = formFields(request)
    const fail = (err: EntraError) => sendEntraError(request, reply, state, err)
    if (!body.client_id)
      return fail(new EntraError('invalid_request', 900144, 400, missingParameterText('client_id')))
    const client = state.findClient(body.client_id)
    if (!client) return fail(appNotFound(tenant, body.client_id))
    const refusal = singleTenantRefusal(tenant, client)
    if (refusal) {
      return fail(
        refusal.code === 700016
          ? appNotFound(tenant, client.clientId)
          : new EntraError('invalid_request', refusal.code, 400, refusal.text),
      )
    }
    const scopes = splitScopeParam(body.scope)
    if (scopes.length === 0)
      return fail(new EntraError('invalid_request', 900144, 400, missingParameterText('scope')))
    const record = state.issueDeviceCode({ clientId: client.clientId, tenant, scopes })
    const verificationUri = `${state.baseUrl}/devicelogin`
    return reply
      .headers(NO_STORE)
      .type('application/json; charset=utf-8')
      .send({
        user_code: record.userCode,
        device_code: record.deviceCode,
        verification_uri: verificationUri,
        expires_in: Math.round((record.expiresAt - state.now()) / 1000),
        interval: record.intervalSec,
        message: `To sign in, use a web browser to open the page ${verificationUri} and enter the code ${record.userCode} to authenticate.`,
      })
  })

  // Sign-out ends the browser's single sign-on session, whatever the redirect.
  app.get('/:tenant/oauth2/v2.0/logout', async (request, reply) => {
    const session = sessionCookie(request)
    if (session !== undefined) {
      state.endSession(session)
      clearSessionCookie(reply, state)
    }
    const target = param(request.query, 'post_logout_redirect_uri')
    if (target && [...state.clients.values()].some((c) => redirectUriAllowed(c, target))) {
      const url = new URL(target)
      const st = param(request.query, 'state')
      if (st !== undefined) url.searchParams.set('state', st)
      return reply.redirect(url.toString(), 302)
    }
    return reply
      .type('text/html; charset=utf-8')
      .send(messagePage('You signed out of your account', 'Close this window.'))
  })

  app.get('/', async (_request, reply) => {
    const users = [...state.users.values()]
      .map((u) => `<li><code>${escapeHtml(u.username)}</code> ${escapeHtml(u.displayName)} (${u.tid})</li>`)
      .join('\n')
    const clients = [...state.clients.values()]
      .map(
        (c) =>
          `<li><code>${escapeHtml(c.clientId)}</code> ${escapeHtml(c.name)} (${c.cloud ?? 'global'})</li>`,
      )
      .join('\n')
    return reply
      .type('text/html; charset=utf-8')
      .send(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Entra ID emulator</title></head><body><h1>Entra ID emulator</h1><p>Authority: <code>${escapeHtml(state.baseUrl)}</code></p><h2>Users</h2><ul>${users}</ul><h2>Clients</h2><ul>${clients}</ul></body></html>`,
      )
  })

  registerHooks(app, state)
  return { app, state }
}

function registerHooks(app: FastifyInstance, state: EmulatorState): void {
  const notFound = (reply: FastifyReply, what: string) => reply.code(404).send({ error: `${what} not found` })

  app.get('/_emulator/stats', async () => state.stats)
  registerCredentialHooks(app, state)

  app.get('/_emulator/sessions', async () => ({
    sessions: [...state.sessions.values()]
      .filter((s) => s.expiresAt > state.now())
      .map((s) => ({
        oid: s.oid,
        tid: s.tid,
        username: state.findUserByOid(s.oid)?.username,
        signed_in_at: new Date(s.signedInAt).toISOString(),
        expires_at: new Date(s.expiresAt).toISOString(),
      })),
  }))

  app.post('/_emulator/reset', async () => {
    state.reset()
    return { ok: true }
  })

  app.post('/_emulator/tenants/:tid/revoke', async (request, reply) => {
    const tenant = state.resolveTenant((request.params as { tid: string }).tid)
    if (tenant?.kind !== 'tenant') return notFound(reply, 'tenant')
    state.revokeTenant(tenant.tenant.tid)
    return { ok: true, tenant: tenant.tenant.tid }
  })

  // A customer registers their own single-tenant app: answers its client id, and a secret unless
  // it is a public client.
  app.post('/_emulator/tenants/:tid/apps', async (request, reply) => {
    const tenant = state.resolveTenant((request.params as { tid: string }).tid)
    if (tenant?.kind !== 'tenant') return notFound(reply, 'tenant')
    const parsed = parseAppRegistration(request.body)
    if ('error' in parsed) return reply.code(400).send({ error: parsed.error })
    const client = newSingleTenantApp(tenant.tenant.tid, parsed)
    state.registerClient(client)
    return reply.code(201).send({
      clientId: client.clientId,
      ...(client.clientSecret === '' ? {} : { clientSecret: client.clientSecret }),
    })
  })

  app.post('/_emulator/tenants/:tid/admin-consent', async (request, reply) => {
    const tenant = state.resolveTenant((request.params as { tid: string }).tid)
    if (tenant?.kind !== 'tenant') return notFound(reply, 'tenant')
    const body = request.body as { clientId?: unknown; scope?: unknown } | undefined
    const client = typeof body?.clientId === 'string' ? state.findClient(body.clientId) : undefined
    if (!client) return notFound(reply, 'client')
    const scope = typeof body?.scope === 'string' ? body.scope : `${defaultResourceOf(client)}/.default`
    state.recordAdminConsent(tenant.tenant.tid, client.clientId, scope.split(/\s+/).filter(Boolean))
    return { ok: true, tenant: tenant.tenant.tid, clientId: client.clientId, scope }
  })

  app.post('/_emulator/users/:user/revoke', async (request, reply) => {
    const key = (request.params as { user: string }).user
    const user = state.findUser(key) ?? state.findUserByOid(key.toLowerCase())
    if (!user) return notFound(reply, 'user')
    state.revokeUser(user.oid)
    return { ok: true, oid: user.oid }
  })

  // Ends a user's refresh tokens as Entra would for `cause` (see EmulatorState.expireUserTokens).
  app.post('/_emulator/users/:user/expire', async (request, reply) => {
    const key = (request.params as { user: string }).user
    const user = state.findUser(key) ?? state.findUserByOid(key.toLowerCase())
    if (!user) return notFound(reply, 'user')
    const cause = (request.body as { cause?: unknown } | undefined)?.cause
    if (typeof cause !== 'string' || !(EXPIRY_CAUSES as readonly string[]).includes(cause)) {
      return reply.code(400).send({ error: `cause must be one of ${EXPIRY_CAUSES.join(', ')}` })
    }
    const ended = state.expireUserTokens(user.oid, cause as ExpiryCause)
    return { ok: true, oid: user.oid, cause, refreshTokensEnded: ended }
  })

  app.get('/_emulator/consents', async () => ({
    admin_consents: [...state.adminConsents].map(([key, scopes]) => {
      const [tenant, clientId] = key.split('|')
      return { tenant, client_id: clientId, scope: [...scopes].join(' ') }
    }),
    user_grants: [...state.userGrants].map(([key, scopes]) => {
      const [tenant, oid, clientId] = key.split('|')
      return { tenant, oid, client_id: clientId, scopes: [...scopes] }
    }),
  }))

  app.get('/_emulator/faults', async () => ({
    faults: state.faults,
    accessTokenLifetimeSec: state.accessTokenLifetimeSec,
  }))

  app.post('/_emulator/faults', async (request, reply) => {
    const parsed = parseFaultRequest(request.body)
    if ('error' in parsed) return reply.code(400).send({ error: parsed.error })
    if (parsed.fault) state.faults.push(parsed.fault)
    if (parsed.accessTokenLifetimeSec !== undefined)
      state.accessTokenLifetimeSec = parsed.accessTokenLifetimeSec
    return { faults: state.faults, accessTokenLifetimeSec: state.accessTokenLifetimeSec }
  })

  app.delete('/_emulator/faults', async () => {
    state.faults = []
    return { faults: [] }
  })

  app.post('/_emulator/clock', async (request, reply) => {
    const advance = (request.body as { advanceSec?: unknown } | undefined)?.advanceSec
    if (typeof advance !== 'number' || !Number.isFinite(advance)) {
      return reply.code(400).send({ error: 'advanceSec must be a number' })
    }
    state.clockOffsetMs += advance * 1000
    return { offsetSec: state.clockOffsetMs / 1000 }
  })

  app.post('/_emulator/keys/rotate', async (request) => {
    const keepOld = (request.body as { keepOld?: unknown } | undefined)?.keepOld !== false
    const key = await createSigningKey()
    state.keys = keepOld ? [key, ...state.keys] : [key]
    return { kid: key.kid, kids: state.keys.map((k) => k.kid) }
  })
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

/** Builds the emulator, listens, and points its issuer base at the bound address. */
export async function startEmulator(options: StartEmulatorOptions = {}): Promise<RunningEmulator> {
  const host = options.host ?? '127.0.0.1'
  const { app, state } = await buildEmulator(options)
  await app.listen({ host, port: options.port ?? 0 })
  const port = (app.server.address() as AddressInfo).port
  const url = (options.baseUrl ?? `http://${urlHost(host)}:${port}`).replace(/\/+$/, '')
  state.baseUrl = url
  return {
    url,
    port,
    state,
    app,
    close: () => app.close(),
  }
}
