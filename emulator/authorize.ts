// Interactive endpoints: /authorize, /adminconsent, the device code verification page
// (/devicelogin), the sign-in form and the consent form.
import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { singleTenantRefusal, unconfiguredPermissions } from './apps.js'
import type { EmulatorClient, EmulatorUser } from './demo-data.js'
import { ADMIN_CONSENT_ROLES } from './demo-data.js'
import { aadsts, missingParameterText, tenantNotFoundText } from './errors.js'
import { consentPage, deviceCodePage, errorPage, formPostPage, messagePage, signInPage } from './html.js'
import { consentKeys, describeScopes, parseScopes, resourcesOf, splitScopeParam } from './scopes.js'
import { clearSessionCookie, sessionCookie, setSessionCookie } from './session.js'
import type { EmulatorState, PendingFlow, ResolvedTenant, ResponseMode } from './state.js'
import { tenantLabel } from './state.js'

type Params = Record<string, unknown>

/** First value of a query/body parameter (repeated parameters keep the first). */
export function param(source: unknown, name: string): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined
  const value = (source as Params)[name]
  const first = Array.isArray(value) ? value[0] : value
  return typeof first === 'string' ? first : undefined
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** Registered redirect URIs match exactly; loopback ones (any port, any path) when the client allows. */
export function redirectUriAllowed(client: EmulatorClient, uri: string): boolean {
  if (client.redirectUris.includes(uri)) return true
  if (!client.allowLoopbackRedirects) return false
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return false
  }
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname) && url.hash === ''
}

const PROMPTS = new Set(['login', 'none', 'consent', 'select_account', 'admin_consent'])

interface ClientTarget {
  readonly redirectUri: string
  readonly responseMode: ResponseMode
}

/** Sends the response parameters to the client per its response mode. */
function sendToClient(
  reply: FastifyReply,
  target: ClientTarget,
  params: Record<string, string>,
): FastifyReply {
  if (target.responseMode === 'form_post') {
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(formPostPage(target.redirectUri, params))
  }
  const url = new URL(target.redirectUri)
  if (target.responseMode === 'fragment') {
    url.hash = new URLSearchParams(params).toString()
  } else {
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
  }
  return reply.header('cache-control', 'no-store').redirect(url.toString(), 302)
}

function errorParams(
  error: string,
  description: string,
  state: string | undefined,
  adminConsent: boolean,
): Record<string, string> {
  return {
    ...(adminConsent ? { admin_consent: 'True' } : {}),
    error,
    error_description: description,
    ...(state !== undefined ? { state } : {}),
  }
}

function showError(reply: FastifyReply, status: number, description: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').send(errorPage(description))
}

function html(reply: FastifyReply, body: string): FastifyReply {
  return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(body)
}

/** AADSTS900144 naming the missing parameter. */
function missingParameter(name: string): string {
  return aadsts(900144, missingParameterText(name))
}

/**
 * Resolves the tenant of the path, then validates client_id and redirect_uri: failures show an error
 * page, never a redirect.
 */
function resolveTarget(
  state: EmulatorState,
  segment: string,
  query: unknown,
): { tenant: ResolvedTenant; client: EmulatorClient; redirectUri: string } | { error: string } {
  const tenant = state.resolveTenant(segment)
  if (!tenant) return { error: aadsts(90002, tenantNotFoundText(segment)) }
  const clientId = param(query, 'client_id')
  if (!clientId) return { error: missingParameter('client_id') }
  const client = state.findClient(clientId)
  if (!client) {
    return {
      error: aadsts(
        700016,
        `Application with identifier '${clientId}' was not found in the directory. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`,
      ),
    }
  }
  const refusal = singleTenantRefusal(tenant, client)
  if (refusal) return { error: aadsts(refusal.code, refusal.text) }
  const redirectUri = param(query, 'redirect_uri') ?? client.redirectUris[0]
  if (!redirectUri) return { error: missingParameter('redirect_uri') }
  if (!redirectUriAllowed(client, redirectUri)) {
    return {
      error: aadsts(
        50011,
        `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application '${client.clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.`,
      ),
    }
  }
  return { tenant, client, redirectUri }
}

function isAdmin(user: EmulatorUser): boolean {
  return user.roles.some((r) => ADMIN_CONSENT_ROLES.includes(r))
}

/** Whether `user` may sign in at the `{tenant}` path (false: AADSTS50020). */
function fitsTenant(tenant: ResolvedTenant, user: EmulatorUser): boolean {
  return tenant.kind === 'tenant' ? tenant.tenant.tid === user.tid : tenant.keyword !== 'consumers'
}

const flowExpired = (reply: FastifyReply) =>
  showError(
    reply,
    400,
    aadsts(
      50089,
      'Authentication failed due to flow token expired. Start the sign-in again from the application.',
    ),
  )

export function registerAuthorizeRoutes(app: FastifyInstance, state: EmulatorState): void {
  /** The sign-in form; `prefill` (default: the flow's login_hint) goes into the username field. */
  const renderSignIn = (reply: FastifyReply, flow: PendingFlow, error?: string, prefill?: string) =>
    html(
      reply,
      signInPage({
        action: `/${encodeURIComponent(flow.tenant.segment)}/login`,
        flowId: flow.id,
        appName: flow.client.name,
        tenantLabel: tenantLabel(flow.tenant),
        loginHint: prefill ?? flow.loginHint,
        domainHint: flow.domainHint,
        error,
        users: [...state.users.values()],
      }),
    )

  const renderConsent = (
    reply: FastifyReply,
    flow: PendingFlow,
    user: EmulatorUser,
    forOrganization: boolean,
  ) => {
    const parsed = parseScopes(flow.scopes, flow.client)
    const permissions = describeScopes(flow.client, parsed)
    if (forOrganization) {
      // `.default` consents to every statically configured permission of the app.
      const everything = parsed.some((s) => s.permission.toLowerCase() === '.default')
      const wanted = new Set(resourcesOf(parsed).map((r) => r.toLowerCase()))
      for (const perms of flow.client.permissions ?? []) {
        if (!everything && !wanted.has(perms.resource.toLowerCase())) continue
        for (const p of perms.application)
          permissions.push(`${p} on ${perms.resource} (application permission)`)
      }
    }
    return html(
      reply,
      consentPage({
        action: `/${encodeURIComponent(flow.tenant.segment)}/consent`,
        flowId: flow.id,
        appName: flow.client.name,
        clientId: flow.client.clientId,
        user,
        permissions,
        forOrganization,
      }),
    )
  }

  const finishWithError = (reply: FastifyReply, flow: PendingFlow, error: string, description: string) => {
    state.pending.delete(flow.id)
    if (flow.kind === 'device') {
      // Nothing to redirect to: the device learns it from its next poll.
      const record = flow.deviceCode === undefined ? undefined : state.deviceCodes.get(flow.deviceCode)
      if (record?.status === 'pending') {
        // The person refused: authorization_declined. Permissions the app lacks (AADSTS65001): the
        // next poll answers that error, as the token endpoint does for a grant without consent.
        const code = /^AADSTS(\d+): ([\s\S]*)$/.exec(description)
        if (error === 'consent_required' && code !== null) {
          record.status = 'refused'
          record.refusal = { error: 'invalid_grant', code: Number(code[1]), text: code[2]! }
        } else record.status = 'declined'
      }
      return showError(reply, 400, description)
    }
    return sendToClient(
      reply,
      flow,
      errorParams(error, description, flow.state, flow.kind === 'adminconsent'),
    )
  }

  const issueCode = (reply: FastifyReply, flow: PendingFlow, user: EmulatorUser) => {
    state.pending.delete(flow.id)
    if (flow.kind === 'device') {
      const record = flow.deviceCode === undefined ? undefined : state.deviceCodes.get(flow.deviceCode)
      if (record?.status !== 'pending' || record.expiresAt <= state.now()) return flowExpired(reply)
      record.status = 'approved'
      record.oid = user.oid
      return html(
        reply,
        messagePage(
          `${flow.client.name}`,
          `You have signed in to the ${flow.client.name} application on your device. You may now close this window.`,
        ),
      )
    }
    const code = state.issueCode({
      clientId: flow.client.clientId,
      redirectUri: flow.redirectUri,
      pathSegment: flow.tenant.segment,
      tid: user.tid,
      oid: user.oid,
      scopes: flow.scopes,
      nonce: flow.nonce,
      codeChallenge: flow.codeChallenge,
    })
    return sendToClient(reply, flow, {
      code,
      ...(flow.state !== undefined ? { state: flow.state } : {}),
      session_state: randomUUID(),
    })
  }

  /** Whether the user's grants (or the tenant's admin consent) cover every requested permission. */
  const consentCovered = (flow: PendingFlow, user: EmulatorUser): boolean => {
    const requested = consentKeys(flow.client, parseScopes(flow.scopes, flow.client))
    const granted = state.userGrant(user.tid, user.oid, flow.client.clientId)
    return (
      state.hasAdminConsent(user.tid, flow.client.clientId) ||
      (granted !== undefined && [...requested].every((k) => granted.has(k)))
    )
  }

  /**
   * The flow goes on as `user`, who just signed in or has a session: an error back to the client,
   * the consent page (tenant-wide for admin consent), or straight a code when consent is on record.
   */
  const continueAs = (reply: FastifyReply, flow: PendingFlow, user: EmulatorUser) => {
    if (!fitsTenant(flow.tenant, user)) {
      return finishWithError(
        reply,
        flow,
        'access_denied',
        aadsts(
          50020,
          `User account '${user.username}' from identity provider 'https://sts.windows.net/${user.tid}/' does not exist in tenant '${tenantLabel(flow.tenant)}' and cannot access the application '${flow.client.clientId}'(${flow.client.name}) in that tenant. The account needs to be added as an external user in the tenant first.`,
        ),
      )
    }
    flow.user = user
    const unconfigured = unconfiguredPermissions(flow.client, parseScopes(flow.scopes, flow.client))
    if (unconfigured.length > 0) {
      return finishWithError(
        reply,
        flow,
        'consent_required',
        aadsts(
          65001,
          `The user or administrator has not consented to use the application with ID '${flow.client.clientId}' named '${flow.client.name}' for ${unconfigured.join(' ')}: these permissions are not configured on the app registration.`,
        ),
      )
    }
    const tenantWide = flow.kind === 'adminconsent' || flow.prompt === 'admin_consent'
    if (tenantWide) {
      if (!isAdmin(user)) {
        return finishWithError(
          reply,
          flow,
          'access_denied',
          aadsts(
            90094,
            `Admin consent is required for the permissions requested by this application. '${user.username}' is not allowed to grant consent on behalf of the organization.`,
          ),
        )
      }
      return renderConsent(reply, flow, user, true)
    }
    if (consentCovered(flow, user) && flow.prompt !== 'consent') return issueCode(reply, flow, user)
    return renderConsent(reply, flow, user, false)
  }

  /** `prompt=none` with a signed-in user: a code if nothing needs asking, else consent_required. */
  const continueSilently = (reply: FastifyReply, flow: PendingFlow, user: EmulatorUser) => {
    flow.user = user
    if (consentCovered(flow, user)) return issueCode(reply, flow, user)
    return finishWithError(
      reply,
      flow,
      'consent_required',
      aadsts(
        65001,
        `The user or administrator has not consented to use the application with ID '${flow.client.clientId}' named '${flow.client.name}'. Send an interactive authorization request for this user and resource.`,
      ),
    )
  }

  /**
   * The user of the browser's single sign-on session, if a new flow at `tenant` can go on as them:
   * the session is live, the user can sign in at that tenant path, and a login_hint (if any) names
   * them. A stale session cookie is cleared.
   */
  const signedInUser = (
    request: FastifyRequest,
    reply: FastifyReply,
    tenant: ResolvedTenant,
    loginHint: string | undefined,
  ): EmulatorUser | undefined => {
    const id = sessionCookie(request)
    const user = state.sessionUser(id)
    if (id !== undefined && !user) clearSessionCookie(reply, state)
    if (!user || !fitsTenant(tenant, user)) return undefined
    const hint = loginHint?.trim()
    if (hint && state.findUser(hint)?.oid !== user.oid) return undefined
    return user
  }

  /**
   * Without a usable session, or with prompt=login or select_account: the sign-in form. For
   * select_account it is prefilled with the session's user (a login_hint wins), like Entra's
   * account picker; otherwise with the login_hint.
   */
  const startFlow = (
    reply: FastifyReply,
    flow: PendingFlow,
    prompt: string | undefined,
    user: EmulatorUser | undefined,
  ) => {
    if (!user || prompt === 'login') return renderSignIn(reply, flow)
    if (prompt === 'select_account')
      return renderSignIn(reply, flow, undefined, flow.loginHint ?? user.username)
    return continueAs(reply, flow, user)
  }

  const liveFlow = (body: unknown): PendingFlow | undefined => {
    const id = param(body, 'flow')
    const flow = id ? state.pending.get(id) : undefined
    if (!flow) return undefined
    if (flow.expiresAt < state.now()) {
      state.pending.delete(flow.id)
      return undefined
    }
    return flow
  }

  app.get('/:tenant/oauth2/v2.0/authorize', async (request, reply) => {
    const q = request.query
    const target = resolveTarget(state, (request.params as { tenant: string }).tenant, q)
    if ('error' in target) return showError(reply, 400, target.error)
    const { tenant, client, redirectUri } = target
    const stateParam = param(q, 'state')
    const modeParam = param(q, 'response_mode') ?? 'query'
    const responseMode: ResponseMode =
      modeParam === 'form_post' || modeParam === 'fragment' ? modeParam : 'query'
    const fail = (error: string, description: string) =>
      sendToClient(reply, { redirectUri, responseMode }, errorParams(error, description, stateParam, false))

    if (!['query', 'fragment', 'form_post'].includes(modeParam)) {
      return fail(
        'invalid_request',
        aadsts(90100, `Invalid request. The response_mode '${modeParam}' is not supported.`),
      )
    }
    const responseType = param(q, 'response_type')
    if (!responseType) {
      return fail('invalid_request', missingParameter('response_type'))
    }
    if (responseType !== 'code') {
      return fail(
        'unsupported_response_type',
        aadsts(700051, `response_type '${responseType}' is not enabled for the application.`),
      )
    }
    const scopes = splitScopeParam(param(q, 'scope'))
    if (scopes.length === 0) {
      return fail('invalid_request', missingParameter('scope'))
    }
    const codeChallenge = param(q, 'code_challenge')
    const method = param(q, 'code_challenge_method')
    if (method !== undefined && codeChallenge === undefined) {
      return fail('invalid_request', missingParameter('code_challenge'))
    }
    if (codeChallenge !== undefined) {
      if (method !== 'S256') {
        return fail(
          'invalid_request',
          aadsts(501491, `Invalid code_challenge_method '${method ?? 'plain'}'. Only S256 is supported.`),
        )
      }
      if (!/^[A-Za-z0-9_-]{43}$/.test(codeChallenge)) {
        return fail('invalid_request', aadsts(501491, 'Invalid size of Code_Challenge parameter.'))
      }
    }
    const prompt = param(q, 'prompt')
    if (prompt !== undefined && !PROMPTS.has(prompt)) {
      return fail(
        'invalid_request',
        aadsts(90100, `Invalid request. The prompt value '${prompt}' is not supported.`),
      )
    }
    const loginHint = param(q, 'login_hint')
    const user = signedInUser(request, reply, tenant, loginHint)
    if (prompt === 'none' && !user) {
      const hinted = loginHint?.trim() && state.sessionUser(sessionCookie(request))
      return fail(
        'login_required',
        aadsts(
          50058,
          hinted
            ? 'A silent sign-in request was sent but none of the currently signed in user(s) match the requested login hint.'
            : 'A silent sign-in request was sent but no user is signed in.',
        ),
      )
    }
    const flow = state.createFlow({
      kind: 'authorize',
      tenant,
      client,
      redirectUri,
      responseMode,
      scopes,
      state: stateParam,
      nonce: param(q, 'nonce'),
      codeChallenge,
      prompt,
      loginHint,
      domainHint: param(q, 'domain_hint'),
    })
    if (prompt === 'none' && user) return continueSilently(reply, flow, user)
    return startFlow(reply, flow, prompt, user)
  })

  app.get('/:tenant/v2.0/adminconsent', async (request, reply) => {
    const q = request.query
    const target = resolveTarget(state, (request.params as { tenant: string }).tenant, q)
    if ('error' in target) return showError(reply, 400, target.error)
    const { tenant, client, redirectUri } = target
    const stateParam = param(q, 'state')
    const fail = (error: string, description: string) =>
      sendToClient(
        reply,
        { redirectUri, responseMode: 'query' },
        errorParams(error, description, stateParam, true),
      )
    if (tenant.kind === 'keyword' && tenant.keyword !== 'organizations') {
      return fail(
        'invalid_request',
        aadsts(
          50194,
          `Admin consent is not supported at the '/${tenant.segment}' endpoint. Use '/organizations' or a tenant-specific endpoint.`,
        ),
      )
    }
    const scopes = splitScopeParam(param(q, 'scope'))
    if (scopes.length === 0) {
      return fail('invalid_request', missingParameter('scope'))
    }
    const prompt = param(q, 'prompt')
    const loginHint = param(q, 'login_hint')
    const user = signedInUser(request, reply, tenant, loginHint)
    const flow = state.createFlow({
      kind: 'adminconsent',
      tenant,
      client,
      redirectUri,
      responseMode: 'query',
      scopes,
      state: stateParam,
      nonce: undefined,
      codeChallenge: undefined,
      prompt,
      loginHint,
      domainHint: param(q, 'domain_hint'),
    })
    return startFlow(reply, flow, prompt, user)
  })

  // The device code flow's verification page: the user enters the code the device shows, then
  // signs in and consents as usual; the device's next poll gets the tokens.
  app.get('/devicelogin', async (_request, reply) => html(reply, deviceCodePage(undefined)))

  app.post('/devicelogin', async (request, reply) => {
    const entered = param(request.body, 'user_code')?.trim() ?? ''
    const record = entered === '' ? undefined : state.pendingDeviceCode(entered)
    if (!record) {
      return html(
        reply.code(400),
        deviceCodePage(
          aadsts(70000, "That code didn't work. Check the code and try again: it may have expired."),
        ),
      )
    }
    const client = state.findClient(record.clientId)
    if (!client) return flowExpired(reply)
    const flow = state.createFlow({
      kind: 'device',
      tenant: record.tenant,
      client,
      redirectUri: '',
      responseMode: 'query',
      scopes: record.scopes,
      state: undefined,
      nonce: undefined,
      codeChallenge: undefined,
      prompt: 'select_account',
      loginHint: undefined,
      domainHint: undefined,
      deviceCode: record.deviceCode,
    })
    return startFlow(reply, flow, 'select_account', signedInUser(request, reply, record.tenant, undefined))
  })

  app.post('/:tenant/login', async (request, reply) => {
    const flow = liveFlow(request.body)
    if (!flow) return flowExpired(reply)
    const username = param(request.body, 'username')?.trim() ?? ''
    const user = username ? state.findUser(username) : undefined
    if (!user) {
      const text = username
        ? `AADSTS50034: We couldn't find an account with the username '${username}'.`
        : 'Enter a valid email address, phone number, or Skype name.'
      return renderSignIn(reply, flow, text)
    }
    // Signed in: a fresh session (a new id, so a cookie planted before sign-in never gets one).
    state.endSession(sessionCookie(request))
    setSessionCookie(reply, state, state.createSession(user))
    return continueAs(reply, flow, user)
  })

  app.post('/:tenant/consent', async (request, reply) => {
    const flow = liveFlow(request.body)
    const user = flow?.user
    if (!flow || !user) return flowExpired(reply)
    const decision = param(request.body, 'decision')
    if (decision === 'deny') {
      return finishWithError(
        reply,
        flow,
        'access_denied',
        aadsts(65004, 'User declined to consent to access the app.'),
      )
    }
    if (decision !== 'accept') {
      return showError(
        reply,
        400,
        aadsts(90100, 'Invalid request. The consent decision must be accept or deny.'),
      )
    }
    if (flow.kind === 'adminconsent') {
      state.pending.delete(flow.id)
      state.recordAdminConsent(user.tid, flow.client.clientId, flow.scopes)
      return sendToClient(reply, flow, {
        admin_consent: 'True',
        tenant: user.tid,
        scope: flow.scopes.join(' '),
        ...(flow.state !== undefined ? { state: flow.state } : {}),
      })
    }
    if (flow.prompt === 'admin_consent') state.recordAdminConsent(user.tid, flow.client.clientId, flow.scopes)
    state.recordUserGrant(
      user.tid,
      user.oid,
      flow.client.clientId,
      consentKeys(flow.client, parseScopes(flow.scopes, flow.client)),
    )
    return issueCode(reply, flow, user)
  })
}
