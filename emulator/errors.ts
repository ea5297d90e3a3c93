// Entra-shaped errors: the JSON body of the token and discovery endpoints and the
// `error`/`error_description` pair of redirected authorize errors.
import { randomUUID } from 'node:crypto'

/** Default texts of the AADSTS codes the emulator emits (or that faults may inject). */
const AADSTS_TEXT: Readonly<Record<number, string>> = {
  28000:
    'Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid.',
  50020: 'User account from identity provider does not exist in tenant and cannot access the application.',
  50011:
    'The redirect URI specified in the request does not match the redirect URIs configured for the application.',
  50058: 'A silent sign-in request was sent but no user is signed in.',
  50059:
    'No tenant-identifying information found in either the request or implied by any provided credentials.',
  50089: 'Authentication failed due to flow token expired.',
  50173: 'The provided grant has expired due to it being revoked, a fresh auth token is needed.',
  50194: 'Application is not supported for this API version or endpoint.',
  50196: 'The server terminated an operation because it encountered a client request loop.',
  54005:
    'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
  65001: 'The user or administrator has not consented to use the application.',
  65004: 'User declined to consent to access the app.',
  50132:
    "The session is not valid due to password expiration or recent password change. The user's credentials have changed; a fresh sign-in is needed.",
  70000: 'Provided grant is invalid or malformed.',
  70003: 'The app requested an unsupported grant type.',
  70008: 'The provided authorization code or refresh token has expired due to inactivity.',
  70043: 'The refresh token has expired or is invalid due to sign-in frequency checks by conditional access.',
  70044: 'The session has expired or is invalid due to sign-in frequency checks by conditional access.',
  70011: "The provided value for the input parameter 'scope' is not valid.",
  90002:
    'Tenant not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.',
  90033: 'A transient error has occurred. Please try again.',
  90094: 'Admin consent is required for the permissions requested by this application.',
  90100: 'Invalid request. Request is malformed or invalid.',
  500011: 'The resource principal was not found in the tenant.',
  500112:
    'The reply address does not match the reply address provided when requesting the authorization code.',
  501481: 'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
  501491: 'Invalid size or format of the code_challenge parameter.',
  700005: 'Provided Authorization Code is intended to use against other tenant, thus rejected.',
  700016: 'Application was not found in the directory.',
  700023: 'Client assertion is invalid.',
  700024: 'Client assertion is not within its valid time range.',
  70021: 'No matching federated identity record found for presented assertion.',
  50027: 'JWT token is invalid or malformed.',
  7000222: 'The provided client secret keys for app are expired.',
  700027: 'The certificate used to sign the client assertion is not registered on the application.',
  700051: 'The response_type is not supported or not enabled for the application.',
  700082: 'The refresh token has expired due to inactivity.',
  900144: 'The request body must contain a required parameter.',
  1002012:
    'The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).',
  7000215:
    'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.',
  7000218: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
  9002313: 'Invalid request. Request is malformed or invalid.',
}

export function aadstsText(code: number): string {
  return AADSTS_TEXT[code] ?? 'An error occurred in the Entra ID emulator.'
}

/** AADSTS900144's text naming the parameter, on the token endpoint and the front channel alike. */
export function missingParameterText(name: string): string {
  return `The request body must contain the following parameter: '${name}'.`
}

/** AADSTS90002's text, on the token endpoint and the front channel alike. */
export function tenantNotFoundText(segment: string): string {
  return `Tenant '${segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`
}

/** `AADSTSnnnn: text` — the first line of every Entra error description. */
export function aadsts(code: number, text: string = aadstsText(code)): string {
  return `AADSTS${code}: ${text}`
}

export interface EntraErrorBody {
  error: string
  error_description: string
  error_codes: number[]
  timestamp: string
  trace_id: string
  correlation_id: string
  error_uri?: string
}

/** Builds the JSON error body Entra's token endpoint returns. */
export function entraErrorBody(
  error: string,
  code: number,
  text: string = aadstsText(code),
  now: Date = new Date(),
  correlationId: string = randomUUID(),
): EntraErrorBody {
  const traceId = randomUUID()
  // Entra's format: `2024-05-01 12:34:56Z`.
  const timestamp = now
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z')
  return {
    error,
    error_description: `${aadsts(code, text)}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
  }
}

/** An error to answer with, thrown inside handlers and rendered by the route. */
export class EntraError extends Error {
  constructor(
    readonly error: string,
    readonly code: number,
    readonly status: number = 400,
    text?: string,
  ) {
    super(text ?? aadstsText(code))
  }

  body(now: Date, correlationId?: string): EntraErrorBody {
    return entraErrorBody(this.error, this.code, this.message, now, correlationId)
  }
}
