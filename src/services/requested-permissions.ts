// What a consent asks Microsoft for, in one place: the scopes of the sign-in authorization request
// (and, for admin consent, of the tenant-wide consent request), and — derived from exactly those —
// the permissions the app's page and own-app page list. The flow builds its requests from
// `signInScopes`; the pages list `requestedPermissions`; a unit test compares the two for every
// app of the apps files.
import { scopePermission } from '../config/app-permissions.js'
import type { AppConfig, Permission } from '../config.js'

/** The OpenID Connect scopes, as Microsoft's consent screen describes them. */
const OIDC_SCOPES: Readonly<Record<string, string>> = {
  openid: 'Sign you in (your identity: tenant and user id)',
  profile: 'See your basic profile (name and username)',
  offline_access: 'Keep the access you gave it while you are not signed in (a refresh token)',
}

/** What an authorization is for: a consent, or a tenant administrator's sign-in to `/{app}/manage`. */
export type SignInPurpose = 'consent' | 'manage'

/**
 * The scopes of the sign-in authorization request: `openid profile` for an administrator's sign-in
 * (admin consent, manage pages), plus `offline_access` and the app's consent scopes for a
 * delegated consent. `consentScopes` are the app's, expanded for the cloud (or the templates).
 */
export function signInScopes(
  app: Pick<AppConfig, 'consent'>,
  consentScopes: readonly string[],
  purpose: SignInPurpose = 'consent',
): string[] {
  return app.consent === 'admin' || purpose === 'manage'
    ? ['openid', 'profile']
    : ['openid', 'profile', 'offline_access', ...consentScopes]
}

/** One permission a consent asks for, as a page lists it. */
export interface RequestedPermission extends Permission {
  /**
   * The scope requested, as a template (`openid`, `{graph}/Mail.Send`), or for an application
   * permission the `.default` scope of the tenant-wide consent that grants it.
   */
  readonly scope: string
}

/**
 * Exactly the permissions a consent to `app` requests, in request order: the sign-in scopes, then
 * the delegated consent scopes (described by the apps file's `permissions` entry of that name), or
 * for admin consent the application permissions that the `.default` scope of the tenant-wide
 * consent stands for (the apps file's `permissions`, which the app registration carries).
 */
export function requestedPermissions(app: AppConfig): RequestedPermission[] {
  const described = (name: string, type: Permission['type']) =>
    app.permissions.find((p) => p.name === name && p.type === type)?.description ?? ''
  const out: RequestedPermission[] = signInScopes(app, app.consentScopes).map((scope) => {
    const oidc = OIDC_SCOPES[scope]
    const name = scopePermission(scope)
    return {
      scope,
      name,
      type: 'Delegated',
      description: oidc ?? described(name, 'Delegated'),
    }
  })
  if (app.consent === 'admin') {
    for (const permission of app.permissions.filter((p) => p.type === 'Application'))
      out.push({ ...permission, scope: app.defaultScope })
  }
  return out
}
