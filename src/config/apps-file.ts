// The hosted apps: the apps file (APPS_FILE, JSON) read and validated into AppConfig, with each
// registration's credentials read from the variables and files it names (credentials.ts; the old
// clientSecretEnv / clientSecretFile fields are shorthand for a one-secret list); and the lookups
// the rest of the broker does on them (an app by slug, its clouds, its settings for one cloud).
import { isAbsolute, resolve } from 'node:path'
import { Ajv } from 'ajv'
import { CLOUD_NAMES, type CloudName, expandResourceTemplate, isCloudName } from '../clouds.js'
import type { ConsentKind } from '../consent-kinds.js'
import { GUID_PATTERN } from '../guid.js'
import { permissionProblems } from './app-permissions.js'
import {
  type AppCredential,
  credentialFiles,
  credentialSchema,
  type RawCredential,
  readCredentials,
} from './credentials.js'
import type { AppCloudConfig, AppConfig, Config, Env, Permission } from './types.js'

const appsFileSchema = {
  type: 'object',
  required: ['apps'],
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    apps: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['slug', 'displayName', 'description', 'consent', 'permissions', 'defaultScope', 'clouds'],
        properties: {
          slug: { type: 'string', pattern: '^[a-z0-9]+(-[a-z0-9]+)*$', maxLength: 64 },
          displayName: { type: 'string', minLength: 1, maxLength: 120 },
          description: { type: 'string', maxLength: 2000 },
          integrations: {
            type: 'array',
            minItems: 1,
            uniqueItems: true,
            items: { type: 'string', minLength: 1, maxLength: 120 },
          },
          group: { type: 'string', minLength: 1, maxLength: 60 },
          listSubscriptions: { type: 'boolean' },
          consent: { enum: ['admin', 'delegated'] },
          permissions: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name', 'type', 'description'],
              properties: {
                name: { type: 'string', minLength: 1 },
                type: { enum: ['Application', 'Delegated'] },
                description: { type: 'string' },
              },
            },
          },
          defaultScope: { type: 'string', minLength: 1 },
          consentScopes: { type: 'array', items: { type: 'string', minLength: 1 } },
          allowedScopes: { type: 'array', items: { type: 'string', minLength: 1 } },
          allowedResources: { type: 'array', items: { type: 'string', pattern: '^(https://|\\{[a-z]+\\})' } },
          clouds: {
            type: 'object',
            minProperties: 1,
            propertyNames: { enum: [...CLOUD_NAMES] },
            additionalProperties: {
              type: 'object',
              additionalProperties: false,
              required: ['clientId'],
              properties: {
                // Lower case is checked below: ID tokens carry the client id as `aud`, compared exactly.
                clientId: { type: 'string', pattern: GUID_PATTERN },
                clientSecretEnv: { type: 'string', pattern: '^[A-Z_][A-Z0-9_]*$' },
                clientSecretFile: { type: 'string', minLength: 1 },
                credentials: { type: 'array', minItems: 1, items: credentialSchema },
              },
            },
          },
        },
      },
    },
  },
} as const

interface RawApp {
  slug: string
  displayName: string
  description: string
  integrations?: string[]
  group?: string
  listSubscriptions?: boolean
  consent: ConsentKind
  permissions: Permission[]
  defaultScope: string
  consentScopes?: string[]
  allowedScopes?: string[]
  allowedResources?: string[]
  clouds: Record<
    string,
    { clientId: string; clientSecretEnv?: string; clientSecretFile?: string; credentials?: RawCredential[] }
  >
}

/** First path segments the broker's own routes use; an app slug can't take them. */
const RESERVED_SLUGS = new Set([
  'admin',
  'callback',
  'obtain-token',
  'healthz',
  'readyz',
  'metrics',
  'openapi.json',
  'static',
  'result',
])

/**
 * Reads and validates the apps file `file` (relative to `cwd`), taking credentials from `env` or
 * the files the apps file names. Every problem is appended to `problems` (each starting with
 * `APPS_FILE:` or the variable's name); the apps are returned as far as they could be read. The
 * apps file's own path and every file it names are added to `files` (to watch them for changes).
 */
export function loadAppsFile(
  file: string | undefined,
  env: Env,
  readFile: (path: string) => string,
  cwd: string,
  problems: string[],
  files: Set<string> = new Set(),
): AppConfig[] {
  if (file === undefined) {
    problems.push('APPS_FILE: required (path to the JSON file listing the hosted apps)')
    return []
  }
  const path = isAbsolute(file) ? file : resolve(cwd, file)
  files.add(path)
  let raw: unknown
  try {
    raw = JSON.parse(readFile(path))
  } catch (error) {
    problems.push(`APPS_FILE: cannot read ${path} as JSON (${(error as Error).message})`)
    return []
  }
  const ajv = new Ajv({ allErrors: true, strict: true })
  const validate = ajv.compile(appsFileSchema)
  if (!validate(raw)) {
    for (const error of validate.errors ?? []) {
      problems.push(`APPS_FILE: ${error.instancePath || '/'} ${error.message ?? 'is invalid'}`)
    }
    return []
  }
  const apps: AppConfig[] = []
  const slugs = new Set<string>()
  for (const [index, app] of (raw as { apps: RawApp[] }).apps.entries()) {
    const where = `APPS_FILE: /apps/${index} (${app.slug})`
    if (slugs.has(app.slug)) problems.push(`${where}: slug appears twice`)
    if (RESERVED_SLUGS.has(app.slug)) problems.push(`${where}: slug is reserved`)
    slugs.add(app.slug)
    const clouds: Partial<Record<CloudName, AppCloudConfig>> = {}
    for (const [cloud, registration] of Object.entries(app.clouds)) {
      if (!isCloudName(cloud)) continue
      if (registration.clientId !== registration.clientId.toLowerCase()) {
        problems.push(`${where}: cloud ${cloud}: clientId must be lower case (as Entra writes it in tokens)`)
      }
      const raws = credentialsOf(registration, cloud, where, problems)
      for (const credentialFile of credentialFiles(raws)) files.add(credentialFile)
      const shorthand = registration.credentials === undefined
      const context = { slug: app.slug, cloud, env, readFile, where, problems, shorthand }
      clouds[cloud] = { clientId: registration.clientId, credentials: readCredentials(raws, context) }
    }
    const templates = [
      app.defaultScope,
      ...(app.consentScopes ?? []),
      ...(app.allowedScopes ?? []),
      ...(app.allowedResources ?? []),
    ]
    // Every template must name a resource each offered cloud has (an unknown placeholder is
    // reported once).
    const reported = new Set<string>()
    for (const cloud of Object.keys(clouds) as CloudName[]) {
      for (const template of templates) {
        try {
          expandResourceTemplate(template, cloud)
        } catch (error) {
          const message = (error as Error).message
          if (reported.has(message)) continue
          reported.add(message)
          problems.push(`${where}: ${message} in "${template}"`)
        }
      }
    }
    if (!app.defaultScope.endsWith('/.default'))
      problems.push(`${where}: defaultScope must end with /.default`)
    for (const problem of permissionProblems(app)) problems.push(`${where}: ${problem}`)
    if (app.listSubscriptions === true) {
      // The subscription listing reuses the token consent just obtained, so that token must be
      // for Resource Manager: the admin-consent scope, or the first delegated consent scope.
      const armScope = app.consent === 'admin' ? app.defaultScope : (app.consentScopes ?? [])[0]
      if (armScope === undefined || !armScope.startsWith('{management}/')) {
        const which = app.consent === 'admin' ? 'defaultScope' : 'the first consentScopes entry'
        problems.push(`${where}: listSubscriptions needs ${which} on {management}`)
      }
    }
    apps.push({
      slug: app.slug,
      displayName: app.displayName,
      description: app.description,
      integrations: app.integrations ?? [],
      group: app.group,
      listSubscriptions: app.listSubscriptions === true,
      consent: app.consent,
      permissions: app.permissions,
      defaultScope: app.defaultScope,
      consentScopes: app.consentScopes ?? [],
      allowedScopes: app.allowedScopes ?? [],
      allowedResources: app.allowedResources ?? [],
      clouds,
    })
  }
  return apps
}

/**
 * A registration's credential list: `credentials`, or the one-secret shorthand (`clientSecretEnv`
 * or `clientSecretFile` beside `clientId`); both at once, or neither, is a problem.
 */
function credentialsOf(
  registration: RawApp['clouds'][string],
  cloud: CloudName,
  where: string,
  problems: string[],
): RawCredential[] {
  const { clientSecretEnv, clientSecretFile, credentials } = registration
  const shorthand = clientSecretEnv !== undefined || clientSecretFile !== undefined
  if (credentials !== undefined && shorthand) {
    problems.push(
      `${where}: cloud ${cloud}: give credentials or the clientSecretEnv / clientSecretFile shorthand, not both`,
    )
    return []
  }
  if (credentials !== undefined) return credentials
  if (!shorthand) {
    problems.push(
      `${where}: cloud ${cloud}: no client secret or other credential (set credentials, or clientSecretEnv or clientSecretFile)`,
    )
    return []
  }
  return [{ clientSecretEnv, clientSecretFile } as RawCredential]
}

/** An app's settings for one cloud, templates expanded. */
export interface ResolvedApp {
  readonly app: AppConfig
  readonly cloud: CloudName
  readonly clientId: string
  /** Newest first; empty for a tenant's own public client (its requests carry no client authentication). */
  readonly credentials: readonly AppCredential[]
  readonly authority: string
  /**
   * Where sign-in and code redemption happen: a tenant's own (single-tenant) app signs in at its
   * tenant's GUID; the hosted apps at `organizations` (absent).
   */
  readonly signInTenant?: string
  readonly defaultScope: string
  readonly consentScopes: readonly string[]
  readonly allowedScopes: readonly string[]
  readonly allowedResources: readonly string[]
}

/** `app` in `cloud` with its templates expanded; undefined when the app isn't offered there. */
export function resolveApp(config: Config, app: AppConfig, cloud: CloudName): ResolvedApp | undefined {
  const registration = app.clouds[cloud]
  if (registration === undefined) return undefined
  return {
    app,
    cloud,
    clientId: registration.clientId,
    credentials: registration.credentials,
    authority: config.authorities[cloud],
    defaultScope: expandResourceTemplate(app.defaultScope, cloud),
    consentScopes: app.consentScopes.map((s) => expandResourceTemplate(s, cloud)),
    allowedScopes: app.allowedScopes.map((s) => (s === 'graph' ? s : expandResourceTemplate(s, cloud))),
    allowedResources: app.allowedResources.map((r) => expandResourceTemplate(r, cloud).replace(/\/+$/, '')),
  }
}

/** The hosted app with this slug, if any. */
export function findApp(config: Config, slug: string): AppConfig | undefined {
  return config.apps.find((app) => app.slug === slug)
}

/** The clouds an app is offered in, in display order. */
export function appClouds(app: AppConfig): CloudName[] {
  return CLOUD_NAMES.filter((cloud) => app.clouds[cloud] !== undefined)
}
