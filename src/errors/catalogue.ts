// The one catalogue of failures the broker answers: each code's HTTP status, its default message
// and how it renders. Two families share it:
//  - `route` codes travel as a BrokerError to the one error handler, which answers one line of JSON
//    on API routes and the generic error page on browser routes (routes marked `config.html`);
//  - `consent-page` codes are the consent flow's failures: the consent routes render them on the
//    consent failure page (with the code shown), never as JSON.
// Factories (./factories.ts) build errors from this table; nothing else states a status.

/** How a catalogued failure reaches the caller. */
export type ErrorRendering =
  /** JSON on API routes, the generic error page on routes marked `config.html`. */
  | 'route'
  /** Only the consent pages' own failure page (the flow's failures never reach the JSON handler). */
  | 'consent-page'

/** One catalogue entry. */
export interface CatalogueEntry {
  /** The HTTP status the failure is answered with. */
  readonly status: number
  /** The message when the factory has nothing more specific to say (never a secret). */
  readonly message: string
  /** Where it renders. */
  readonly renders: ErrorRendering
}

function route(status: number, message: string) {
  return { status, message, renders: 'route' } as const satisfies CatalogueEntry
}

function consentPage(status: number, message: string) {
  return { status, message, renders: 'consent-page' } as const satisfies CatalogueEntry
}

/**
 * Every failure code the broker answers, with its status, default message and rendering. The
 * `route` codes and their statuses are the wire contract documented in docs/obtain-token-errors.md
 * and the OpenAPI document; the `consent-page` codes appear on the consent failure page and in the
 * `reason` label of `consent_broker_consents_total`.
 */
export const ERROR_CATALOGUE = {
  invalid_request: route(400, 'the request is invalid'),
  invalid_scope: route(400, 'the requested scope or resource is not allowed for this app'),
  unknown_app: route(400, 'this app is not hosted by this broker'),
  unauthorized: route(401, 'authentication is missing or invalid'),
  unknown_registration: route(401, 'no registration with this ID'),
  invalid_key: route(401, 'encrypted_token does not decrypt with this registration’s Key'),
  stale_token: route(401, "the request's timestamp is too far from the broker's clock"),
  replayed_token: route(
    401,
    'this encrypted_token was already used; every request must be freshly encrypted',
  ),
  token_mismatch: route(401, 'the Token field does not match this registration'),
  revoked: route(401, 'this registration was revoked'),
  consent_required: route(401, 'this registration needs consent again'),
  csrf_failed: route(403, 'the form’s csrf token is missing or wrong; reload the page and try again'),
  forbidden: route(403, 'forbidden'),
  not_found: route(404, 'not found'),
  method_not_allowed: route(405, 'method not allowed'),
  request_timeout: route(408, 'the request did not arrive in time'),
  conflict: route(409, 'the resource changed or is in a state that refuses this change'),
  payload_too_large: route(413, 'request body is too large'),
  uri_too_long: route(414, 'a part of the path is too long'),
  unsupported_media_type: route(415, 'this content type is not accepted here'),
  rate_limited: route(429, 'too many requests; slow down'),
  headers_too_large: route(431, 'the request headers are too large'),
  internal_error: route(500, 'internal error; quote the request_id to the operator'),
  broker_misconfigured: route(502, 'the broker is misconfigured; contact the broker operator'),
  upstream_error: route(502, 'Microsoft Entra ID refused the request'),
  upstream_unavailable: route(503, 'Microsoft Entra ID is not answering; try again shortly'),
  upstream_throttled: route(503, 'Microsoft Entra ID is throttling requests; try again later'),
  not_ready: route(503, 'not ready'),
  too_many_connections: route(503, 'too many open connections from this address; retry shortly'),
  store_unavailable: route(503, 'the broker cannot reach its store; retry shortly'),
  upstream_timeout: route(504, 'Microsoft Entra ID did not answer in time; try again shortly'),

  cancelled: consentPage(400, 'the sign-in was cancelled or the permissions were declined'),
  not_admin: consentPage(403, 'the signed-in user may not consent for the organisation'),
  session_missing: consentPage(400, 'this browser has no consent flow in progress'),
  session_expired: consentPage(400, 'the consent flow expired'),
  state_mismatch: consentPage(403, 'the answer does not belong to this browser’s consent flow'),
  replayed: consentPage(409, 'this consent answer was already used'),
  tenant_mismatch: consentPage(403, 'consent came back for another organisation'),
  consent_not_effective: consentPage(503, 'consent was given but Microsoft Entra ID does not honour it yet'),
  idp_error: consentPage(502, 'Microsoft Entra ID answered with an error'),
  idp_unavailable: consentPage(503, 'Microsoft Entra ID is unreachable, failing or too slow'),
  invalid_id_token: consentPage(502, 'the ID token from Microsoft Entra ID is not valid'),
  no_refresh_token: consentPage(502, 'Microsoft Entra ID answered without a refresh token'),
  invalid_callback: consentPage(400, 'the callback carries neither a code nor a well-formed error'),
  own_app_invalid: consentPage(400, 'the own app registration form is incomplete or malformed'),
  own_app_secret_rejected: consentPage(400, 'Microsoft Entra ID refused the app’s client secret'),
  own_app_not_in_tenant: consentPage(400, 'the app registration does not exist in that tenant'),
  own_app_public_client_disabled: consentPage(400, 'the app does not allow public client flows'),
  own_app_needs_secret: consentPage(
    400,
    'this app family needs application permissions, which the device code method cannot obtain',
  ),
  device_code_expired: consentPage(400, 'the device code expired before the sign-in was completed'),
  own_app_missing_permissions: consentPage(
    400,
    'the app registration lacks the permissions the app family needs',
  ),
} as const satisfies Record<string, CatalogueEntry>

type Catalogue = typeof ERROR_CATALOGUE

/** A code answered through the one error handler (JSON or the generic page). */
export type ErrorCode = {
  [Code in keyof Catalogue]: Catalogue[Code]['renders'] extends 'route' ? Code : never
}[keyof Catalogue]

/**
 * Why a consent flow (or a `/{app}/manage` sign-in) failed; shown on the consent failure page:
 *  - `cancelled`: the user cancelled, declined the permissions, or Microsoft denied access;
 *  - `not_admin`: admin consent, and the signed-in user holds none of the roles that may consent;
 *  - `session_missing`: no (valid) flow cookie: cookies blocked, another browser, or it expired;
 *  - `session_expired`: the cookie names a flow that no longer exists;
 *  - `state_mismatch`: the `state` in the URL is not this browser's flow;
 *  - `replayed`: this flow's callback was already used;
 *  - `tenant_mismatch`: admin consent came back for a tenant other than the administrator's;
 *  - `consent_not_effective`: consent given, client credentials still fail after the retry budget;
 *  - `idp_error`: Microsoft answered with an OAuth error;
 *  - `idp_unavailable`: Microsoft unreachable, failing or too slow;
 *  - `invalid_id_token`: the ID token failed validation;
 *  - `no_refresh_token`: delegated consent answered without a refresh token;
 *  - `invalid_callback`: the callback carries neither a code nor an error, or an `error` that is no
 *    OAuth error code (RFC 6749 §4.1.2.1; Entra's are lower-case words joined by `_`);
 *  - `own_app_invalid`: the own-app form is incomplete (a secret missing for the browser method …);
 *  - `own_app_secret_rejected`: the tenant's own app: Entra refused its client secret;
 *  - `own_app_not_in_tenant`: no such app in the tenant named (or signed in to another tenant);
 *  - `own_app_public_client_disabled`: device code, and "Allow public client flows" is off;
 *  - `own_app_needs_secret`: device code for an admin-consent family (application permissions need
 *    a confidential app: the browser method with a client secret);
 *  - `device_code_expired`: the device code's lifetime passed before the person signed in;
 *  - `own_app_missing_permissions`: the app lacks (or has no consent for) the family's permissions.
 */
export type ConsentFailureReason = Exclude<keyof Catalogue, ErrorCode>

/** The HTTP status of any catalogued code. */
export function statusOf(code: keyof Catalogue): number {
  return ERROR_CATALOGUE[code].status
}

/** Whether `value` names a catalogued `route` code (e.g. one read back from the store). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return (
    typeof value === 'string' &&
    Object.hasOwn(ERROR_CATALOGUE, value) &&
    ERROR_CATALOGUE[value as keyof Catalogue].renders === 'route'
  )
}

/** The consent flow's failure reasons, in catalogue order. */
export const CONSENT_FAILURE_REASONS: readonly ConsentFailureReason[] = (
  Object.keys(ERROR_CATALOGUE) as Array<keyof Catalogue>
).filter((code): code is ConsentFailureReason => ERROR_CATALOGUE[code].renders === 'consent-page')
