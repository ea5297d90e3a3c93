// Azure Resource Manager's two listings the broker reads after consent of an Azure app:
// `GET /subscriptions` and `GET /subscriptions/{id}/resourcegroups`, each with `api-version`. As ARM
// does, the bearer token must be one of ours (signature, expiry) and for Resource Manager in the
// calling app's cloud (`aud`); failures answer ARM's `{"error":{"code","message"}}` shape with a
// `WWW-Authenticate` challenge. What a caller sees follows the demo role assignments.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { createLocalJWKSet, type JWTPayload, errors as joseErrors, jwtVerify } from 'jose'
import { DEMO_SUBSCRIPTIONS, type EmulatorSubscription } from './azure-data.js'
import { resourceManagerAudiences } from './resources.js'
import type { EmulatorState } from './state.js'

class ArmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

function armTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC')
}

/** The caller of a request: the token's claims, checked as ARM checks them. */
async function authenticate(request: FastifyRequest, state: EmulatorState): Promise<JWTPayload> {
  const header = request.headers.authorization
  if (header === undefined || header === '') {
    throw new ArmError(
      401,
      'AuthenticationFailed',
      "Authentication failed. The 'Authorization' header is missing.",
    )
  }
  const match = /^Bearer\s+(\S+)$/i.exec(header)
  if (match === null) {
    throw new ArmError(
      401,
      'AuthenticationFailed',
      "Authentication failed. The 'Authorization' header is provided in an invalid format.",
    )
  }
  const keys = createLocalJWKSet({
    keys: state.keys.map((k) => ({ ...k.publicJwk, kid: k.kid, alg: 'RS256', use: 'sig' })),
  })
  let claims: JWTPayload
  try {
    ;({ payload: claims } = await jwtVerify(match[1]!, keys, {
      algorithms: ['RS256'],
      currentDate: new Date(state.now()),
    }))
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) {
      const exp = (error.payload.exp ?? 0) * 1000
      throw new ArmError(
        401,
        'ExpiredAuthenticationToken',
        `The access token expiry UTC time '${armTime(exp)}' is earlier than current UTC time '${armTime(state.now())}'.`,
      )
    }
    throw new ArmError(401, 'InvalidAuthenticationToken', 'The access token is invalid.')
  }
  const tid = typeof claims.tid === 'string' ? claims.tid : ''
  if (claims.iss !== state.issuer(tid)) {
    throw new ArmError(401, 'InvalidAuthenticationTokenTenant', 'The access token is from the wrong issuer.')
  }
  const client = typeof claims.appid === 'string' ? state.findClient(claims.appid) : undefined
  const allowed = resourceManagerAudiences(client?.cloud ?? 'global')
  const audience = typeof claims.aud === 'string' ? claims.aud : String(claims.aud)
  if (!allowed.includes(audience)) {
    throw new ArmError(
      401,
      'InvalidAuthenticationTokenAudience',
      `The access token has been obtained for wrong audience or resource '${audience}'. It should exactly match with one of the allowed audiences ${allowed.map((a) => `'${a}'`).join(',')}.`,
    )
  }
  return claims
}

/** The principal names a role assignment can hold: the app's demo client name, or the username. */
function principalOf(claims: JWTPayload, state: EmulatorState): string {
  if (claims.idtyp === 'app') return state.findClient(String(claims.appid))?.name ?? ''
  return state.findUserByOid(String(claims.oid))?.username ?? ''
}

function visibleSubscriptions(claims: JWTPayload, state: EmulatorState): EmulatorSubscription[] {
  const principal = principalOf(claims, state)
  return DEMO_SUBSCRIPTIONS.filter((s) => s.tenantId === claims.tid && s.roleHolders.includes(principal))
}

function requireApiVersion(request: FastifyRequest): void {
  const version = (request.query as Record<string, unknown>)['api-version']
  if (typeof version !== 'string' || version === '') {
    throw new ArmError(
      400,
      'MissingApiVersionParameter',
      'The api-version query parameter (?api-version=) is required for all requests.',
    )
  }
}

function sendArmError(reply: FastifyReply, state: EmulatorState, error: ArmError): FastifyReply {
  if (error.status === 401) {
    reply.header(
      'www-authenticate',
      `Bearer authorization_uri="${state.baseUrl}/common", error="invalid_token", error_description="${error.message.replace(/"/g, "'")}"`,
    )
  }
  return reply
    .code(error.status)
    .type('application/json; charset=utf-8')
    .send({ error: { code: error.code, message: error.message } })
}

export function registerResourceManagerRoutes(app: FastifyInstance, state: EmulatorState): void {
  const handle =
    (answer: (request: FastifyRequest, claims: JWTPayload) => unknown) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        requireApiVersion(request)
        const claims = await authenticate(request, state)
        return reply.type('application/json; charset=utf-8').send(answer(request, claims))
      } catch (error) {
        if (error instanceof ArmError) return sendArmError(reply, state, error)
        throw error
      }
    }

  app.get(
    '/subscriptions',
    handle((_request, claims) => {
      const value = visibleSubscriptions(claims, state).map((s) => ({
        id: `/subscriptions/${s.subscriptionId}`,
        authorizationSource: 'RoleBased',
        managedByTenants: [],
        subscriptionId: s.subscriptionId,
        tenantId: s.tenantId,
        displayName: s.displayName,
        state: s.state,
        subscriptionPolicies: {
          locationPlacementId: 'Public_2014-09-01',
          quotaId: 'PayAsYouGo_2014-09-01',
          spendingLimit: 'Off',
        },
      }))
      return { value, count: { type: 'Total', value: value.length } }
    }),
  )

  const resourceGroups = handle((request, claims) => {
    const id = (request.params as { subscriptionId: string }).subscriptionId.toLowerCase()
    const subscription = DEMO_SUBSCRIPTIONS.find((s) => s.subscriptionId === id)
    if (subscription === undefined) {
      throw new ArmError(404, 'SubscriptionNotFound', `The subscription '${id}' could not be found.`)
    }
    if (!visibleSubscriptions(claims, state).includes(subscription)) {
      const who = claims.idtyp === 'app' ? String(claims.appid) : String(claims.upn ?? claims.oid)
      throw new ArmError(
        403,
        'AuthorizationFailed',
        `The client '${who}' with object id '${String(claims.oid)}' does not have authorization to perform action 'Microsoft.Resources/subscriptions/resourcegroups/read' over scope '/subscriptions/${id}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      )
    }
    return {
      value: subscription.resourceGroups.map((group) => ({
        id: `/subscriptions/${id}/resourceGroups/${group.name}`,
        name: group.name,
        type: 'Microsoft.Resources/resourceGroups',
        location: group.location,
        properties: { provisioningState: 'Succeeded' },
      })),
    }
  })
  // ARM paths are case-insensitive; these are the two spellings clients use.
  app.get('/subscriptions/:subscriptionId/resourcegroups', resourceGroups)
  app.get('/subscriptions/:subscriptionId/resourceGroups', resourceGroups)
}
