// The apps file's `permissions` must name exactly what a consent requests (the pages list the
// requested scopes, described by these entries): a delegated app its consent scopes, as Delegated;
// an admin-consent app only Application permissions (what its `.default` consent grants).
import type { ConsentKind } from '../consent-kinds.js'
import type { Permission } from './types.js'

/** The permission part of a scope: `Mail.Send` of `{graph}/Mail.Send`, `openid` of `openid`. */
export function scopePermission(scope: string): string {
  return scope.slice(scope.lastIndexOf('/') + 1)
}

/** Where `permissions` disagree with what the consent requests; one sentence each. */
export function permissionProblems(app: {
  consent: ConsentKind
  permissions: readonly Permission[]
  consentScopes?: readonly string[] | undefined
}): string[] {
  const problems: string[] = []
  if (app.consent === 'delegated') {
    const requested = (app.consentScopes ?? []).map(scopePermission)
    for (const permission of app.permissions) {
      if (permission.type !== 'Delegated')
        problems.push(`permission ${permission.name} is ${permission.type}, but the consent is delegated`)
      else if (!requested.includes(permission.name))
        problems.push(`permission ${permission.name} is listed but not in consentScopes (never requested)`)
    }
    for (const name of requested)
      if (!app.permissions.some((p) => p.name === name && p.type === 'Delegated'))
        problems.push(`consentScopes requests ${name}, which permissions does not list`)
  } else {
    for (const permission of app.permissions)
      if (permission.type !== 'Application')
        problems.push(`permission ${permission.name} is ${permission.type}, but the consent is admin`)
  }
  return problems
}
