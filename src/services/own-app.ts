// A tenant's own app registration in place of the hosted app: the settings every Entra call of such
// a registration uses (its client id and secret, at its tenant's authority), the secret check made
// before anything is stored, and what Entra's refusals mean for the admin who filled in the form.
import type { ResolvedApp } from '../config.js'
import { type IdentityProvider, UpstreamError } from '../entra/types.js'
import type { ConsentFailureReason } from '../errors.js'
import { isGuid } from '../guid.js'

/** What the own-app form names: the tenant, its app, and (confidential app) the secret. */
export interface OwnAppInput {
  tenantId: string
  clientId: string
  /** The browser method: required. The device code method: none (a public client). */
  clientSecret?: string
}

/** `hosted` (the family's settings in a cloud) with the tenant's own app in place of the hosted one. */
export function ownAppResolved(hosted: ResolvedApp, own: OwnAppInput): ResolvedApp {
  return {
    ...hosted,
    clientId: own.clientId,
    // The tenant's own secret; none for a public client (its requests carry no client authentication).
    credentials:
      own.clientSecret === undefined
        ? []
        : [{ kind: 'secret', name: 'secret:own-app', secret: own.clientSecret, expiresAt: undefined }],
    signInTenant: own.tenantId.toLowerCase(),
  }
}

/** The form's values checked and normalised (GUIDs lower-cased, the secret trimmed); undefined when unusable. */
export function parseOwnAppInput(
  input: { tenantId: string; clientId: string; clientSecret?: string | undefined },
  needsSecret: boolean,
): OwnAppInput | undefined {
  const tenantId = input.tenantId.trim().toLowerCase()
  const clientId = input.clientId.trim().toLowerCase()
  const clientSecret = input.clientSecret?.trim() ?? ''
  if (!isGuid(tenantId) || !isGuid(clientId)) return undefined
  if (needsSecret && clientSecret === '') return undefined
  return { tenantId, clientId, ...(clientSecret === '' ? {} : { clientSecret }) }
}

const AADSTS = /AADSTS(\d+)/

/** The first AADSTS number of an error (its codes, or the text of a redirect's description). */
export function aadstsCode(error: UpstreamError | string | undefined): number | undefined {
  if (error instanceof UpstreamError) return error.errorCodes[0]
  const match = error === undefined ? null : AADSTS.exec(error)
  return match === null ? undefined : Number(match[1])
}

/** What an Entra refusal of the tenant's own app means, when it is about the app's registration. */
export function ownAppRefusal(code: number | undefined, error?: string): ConsentFailureReason | undefined {
  switch (code) {
    case 7000215:
    case 7000222:
      return 'own_app_secret_rejected'
    case 700016:
    case 50194:
    case 90002:
      return 'own_app_not_in_tenant'
    case 7000218:
      return 'own_app_public_client_disabled'
    case 65001:
    case 650057:
      return 'own_app_missing_permissions'
    default:
      return error === 'invalid_client' ? 'own_app_secret_rejected' : undefined
  }
}

/**
 * Checks the app's client secret with a client-credentials request at the tenant (the family's
 * default scope). A single-tenant app has a service principal in its own tenant, so this works
 * before any consent; Entra's refusal says what is wrong with the registration.
 */
export async function checkOwnAppSecret(
  idp: IdentityProvider,
  resolved: ResolvedApp,
  tenantId: string,
): Promise<{ ok: true } | { ok: false; error: UpstreamError; reason: ConsentFailureReason | undefined }> {
  try {
    await idp.clientCredentials(resolved, tenantId, resolved.defaultScope)
    return { ok: true }
  } catch (error) {
    if (!(error instanceof UpstreamError)) throw error
    return { ok: false, error, reason: ownAppRefusal(aadstsCode(error), error.error) }
  }
}

/**
 * The application permissions (`roles`) an app-only token carries. It comes straight from Entra's
 * token endpoint over TLS, so its payload is read, not verified; an app with none configured or
 * consented gets a token without roles, which is useless to the admin-consent families.
 */
export function appTokenRoles(accessToken: string): string[] {
  const payload = accessToken.split('.')[1]
  if (payload === undefined) return []
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { roles?: unknown }
    return Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : []
  } catch {
    return []
  }
}
