// Which of an app's credentials authenticates each token request, for every request the broker
// makes (code redemption, admin-consent proof, client credentials, refresh, keep-alive):
// newest first; when Entra refuses one in a way that names the credential (invalid_client,
// AADSTS7000215 / 7000222 / 700027 / 700024 / 70021), the request is repeated with the next one
// and the refused one is marked failing for a while in the store, so every instance tries it last
// until the mark expires. A state change (refused, working again) is logged once, by the instance
// whose store call changed it; each refusal is counted for the metrics. The lists are replaced
// whole when the apps file is reloaded.
import type { CloudName } from '../clouds.js'
import type { AppCredential, CredentialKind } from '../config/credentials.js'
import type { AppConfig, ResolvedApp } from '../config.js'
import { MemoryCredentialHealth } from '../store/memory/credential-health.js'
import type { CredentialHealthStore } from '../store/types.js'
import { type ClientAuthParams, CredentialUnusableError, clientAuthParams } from './client-assertion.js'
import { UpstreamError } from './types.js'

/** AADSTS codes by which Entra says the presented credential itself is wrong. */
const CREDENTIAL_CODES = new Set([7000215, 7000222, 700027, 700024, 70021])

/** Whether `error` means the credential (not the grant, tenant or network) was refused. */
export function isCredentialFailure(error: unknown): boolean {
  if (error instanceof CredentialUnusableError) return true
  if (!(error instanceof UpstreamError) || error.kind !== 'oauth') return false
  return error.error === 'invalid_client' || error.errorCodes.some((code) => CREDENTIAL_CODES.has(code))
}

function failureCode(error: unknown): string {
  if (error instanceof CredentialUnusableError) return error.code
  return error instanceof UpstreamError ? error.label : 'failed'
}

/** The minimal logger this needs (pino's and Fastify's fit). */
export interface CredentialLogger {
  warn(fields: Record<string, unknown>, message: string): void
  info(fields: Record<string, unknown>, message: string): void
}

/** One refusal, for the failures counter. */
export interface CredentialFailure {
  readonly app: string
  readonly cloud: CloudName
  readonly credential: string
  readonly code: string
}

/** A credential as the console, the operator API and the CLI list it. */
export interface CredentialStatus {
  readonly app: string
  readonly cloud: CloudName
  /** Its name: `certificate:<SHA-1 thumbprint>`, `secret:<variable or file>`, `federated:<file>`. */
  readonly credential: string
  readonly kind: CredentialKind
  /** 1 = tried first. */
  readonly position: number
  readonly thumbprint: string | undefined
  readonly subject: string | undefined
  readonly expiresAt: number | undefined
  readonly lastSuccessAt: number | undefined
  /** The code Entra refused it with, while it is marked failing. */
  readonly failing: string | undefined
}

export interface AppCredentialsOptions {
  /** Shared failing marks and last successes; default: this process only. */
  health?: CredentialHealthStore
  logger: CredentialLogger
  clock?: () => number
  /** How long a refused credential is tried last; default 10 minutes. */
  failingTtlMs?: number
}

const SUCCESS_TTL_MS = 90 * 24 * 3_600_000
/** A credential's last success is written at most this often per instance (it is shown, not decided on). */
const SUCCESS_WRITE_INTERVAL_MS = 60_000

const keyOf = (slug: string, cloud: CloudName) => `${slug}|${cloud}`
/** A credential's id in the store: unique across apps and clouds, never secret. */
export const credentialId = (slug: string, cloud: CloudName, credential: AppCredential) =>
  `${slug}|${cloud}|${credential.name}`

/** The apps' credentials in use, and the one way a token request is authenticated. */
export class AppCredentials {
  #lists = new Map<string, { readonly clientId: string; readonly credentials: readonly AppCredential[] }>()
  readonly #health: CredentialHealthStore
  readonly #logger: CredentialLogger
  readonly #clock: () => number
  readonly #failingTtlMs: number
  readonly #successWrittenAt = new Map<string, number>()
  readonly #failureListeners = new Set<(failure: CredentialFailure) => void>()

  constructor(apps: readonly AppConfig[], options: AppCredentialsOptions) {
    this.#clock = options.clock ?? Date.now
    this.#health = options.health ?? new MemoryCredentialHealth(this.#clock)
    this.#logger = options.logger
    this.#failingTtlMs = options.failingTtlMs ?? 600_000
    this.replace(apps)
  }

  /** Uses the credentials of `apps` from now on (start-up, reload); requests in flight finish with theirs. */
  replace(apps: readonly AppConfig[]): void {
    const lists = new Map<string, { clientId: string; credentials: readonly AppCredential[] }>()
    for (const app of apps) {
      for (const [cloud, registration] of Object.entries(app.clouds)) {
        if (registration !== undefined) lists.set(keyOf(app.slug, cloud as CloudName), registration)
      }
    }
    this.#lists = lists
  }

  /** The credentials of `slug` in `cloud`, newest first (empty when the app isn't offered there). */
  list(slug: string, cloud: CloudName): readonly AppCredential[] {
    return this.#lists.get(keyOf(slug, cloud))?.credentials ?? []
  }

  /** Every app and cloud with its credentials. */
  entries(): Array<{ app: string; cloud: CloudName; credentials: readonly AppCredential[] }> {
    return [...this.#lists].map(([key, { credentials }]) => {
      const [app, cloud] = key.split('|') as [string, CloudName]
      return { app, cloud, credentials }
    })
  }

  /** Calls `listener` on every refusal; returns the unsubscribe function. */
  onFailure(listener: (failure: CredentialFailure) => void): () => void {
    this.#failureListeners.add(listener)
    return () => this.#failureListeners.delete(listener)
  }

  /**
   * Runs `request` with the client authentication of `app`'s credentials, healthy ones first in
   * their order, failing ones last; moves on to the next credential only when Entra refused the
   * credential itself. The last refusal (or any other failure) is thrown.
   */
  async authenticate<T>(
    app: ResolvedApp,
    tokenEndpoint: string,
    request: (params: ClientAuthParams) => Promise<T>,
  ): Promise<T> {
    const slug = app.app.slug
    const live = this.#lists.get(keyOf(slug, app.cloud))
    if (live === undefined || live.clientId !== app.clientId) {
      // Not one of the hosted registrations (a tenant's own app): its own credentials, in order,
      // without shared marks, metrics or warnings — its refusals are the tenant admin's to fix.
      return this.#tryInOrder(app, tokenEndpoint, request)
    }
    const listed = live.credentials
    if (listed.length === 0) {
      throw new UpstreamError('oauth', `${slug} (${app.cloud}) has no credential`, {
        error: 'invalid_client',
      })
    }
    const ids = listed.map((credential) => credentialId(slug, app.cloud, credential))
    const failing = await this.#health.failing(ids).catch(() => new Map<string, string>())
    const order = listed.map((credential, i) => ({ credential, id: ids[i]! }))
    order.sort((a, b) => Number(failing.has(a.id)) - Number(failing.has(b.id)))
    let lastError: unknown
    for (const { credential, id } of order) {
      let result: T
      try {
        const params = await clientAuthParams(credential, app.clientId, tokenEndpoint, this.#clock())
        result = await request(params)
      } catch (error) {
        if (!isCredentialFailure(error)) throw error
        lastError = error
        await this.#refused(slug, app.cloud, credential, id, failureCode(error))
        continue
      }
      await this.#succeeded(slug, app.cloud, credential, id, failing.has(id))
      return result
    }
    throw lastError
  }

  async #tryInOrder<T>(
    app: ResolvedApp,
    tokenEndpoint: string,
    request: (params: ClientAuthParams) => Promise<T>,
  ): Promise<T> {
    // A public client authenticates with its client id alone.
    if (app.credentials.length === 0) return request({ client_id: app.clientId })
    let lastError: unknown
    for (const credential of app.credentials) {
      try {
        return await request(await clientAuthParams(credential, app.clientId, tokenEndpoint, this.#clock()))
      } catch (error) {
        if (!isCredentialFailure(error)) throw error
        lastError = error
      }
    }
    throw lastError
  }

  async #refused(slug: string, cloud: CloudName, credential: AppCredential, id: string, code: string) {
    for (const listener of this.#failureListeners)
      listener({ app: slug, cloud, credential: credential.name, code })
    const changed = await this.#health.markFailing(id, code, this.#failingTtlMs).catch(() => false)
    if (changed) {
      this.#logger.warn(
        { app: slug, cloud, credential: credential.name, kind: credential.kind, code },
        'app credential refused by Microsoft: tried last until it works again; the next credential is used',
      )
    }
  }

  async #succeeded(
    slug: string,
    cloud: CloudName,
    credential: AppCredential,
    id: string,
    wasFailing: boolean,
  ) {
    const now = this.#clock()
    try {
      if (wasFailing && (await this.#health.clearFailing(id))) {
        this.#logger.info({ app: slug, cloud, credential: credential.name }, 'app credential works again')
      }
      const written = this.#successWrittenAt.get(id)
      if (written === undefined || now - written >= SUCCESS_WRITE_INTERVAL_MS) {
        this.#successWrittenAt.set(id, now)
        await this.#health.recordSuccess(id, now, SUCCESS_TTL_MS)
      }
    } catch {
      // Bookkeeping only: the token request itself succeeded.
    }
  }

  /** Every credential with its position, expiry, last success and failing mark. */
  async status(): Promise<CredentialStatus[]> {
    const rows = this.entries().flatMap(({ app, cloud, credentials }) =>
      credentials.map((credential, i) => ({
        app,
        cloud,
        credential,
        position: i + 1,
        id: credentialId(app, cloud, credential),
      })),
    )
    const ids = rows.map((row) => row.id)
    const [failing, successes] = await Promise.all([this.#health.failing(ids), this.#health.lastSuccess(ids)])
    return rows.map(({ app, cloud, credential, position, id }) => ({
      app,
      cloud,
      credential: credential.name,
      kind: credential.kind,
      position,
      thumbprint: credential.kind === 'certificate' ? credential.thumbprint : undefined,
      subject: credential.kind === 'certificate' ? credential.subject : undefined,
      expiresAt: credential.expiresAt,
      lastSuccessAt: successes.get(id),
      failing: failing.get(id),
    }))
  }

  /** Logs one warning per credential that expires within `warningMs` (or has expired); returns them. */
  warnExpiring(
    warningMs: number,
  ): Array<{ app: string; cloud: CloudName; credential: string; expiresAt: number }> {
    const now = this.#clock()
    const expiring = this.entries().flatMap(({ app, cloud, credentials }) =>
      credentials
        .filter((c) => c.expiresAt !== undefined && c.expiresAt - now <= warningMs)
        .map((c) => ({ app, cloud, credential: c.name, expiresAt: c.expiresAt! })),
    )
    for (const item of expiring) {
      const days = Math.floor((item.expiresAt - now) / 86_400_000)
      this.#logger.warn(
        { ...item, expiresAt: new Date(item.expiresAt).toISOString(), daysLeft: days },
        item.expiresAt <= now
          ? 'app credential has expired: Microsoft refuses it; add a new one and rotate'
          : 'app credential expires soon: add a new one and rotate before it does',
      )
    }
    return expiring
  }

  /** Seconds until each credential with a known expiry expires (negative once expired). */
  expirySeconds(): Array<{ app: string; cloud: CloudName; credential: string; seconds: number }> {
    const now = this.#clock()
    return this.entries().flatMap(({ app, cloud, credentials }) =>
      credentials
        .filter((c) => c.expiresAt !== undefined)
        .map((c) => ({ app, cloud, credential: c.name, seconds: Math.round((c.expiresAt! - now) / 1000) })),
    )
  }
}
