// Notifications about the apps' own credentials running out: every instance compares each
// credential's expiry (client secrets with `expiresAt`, certificates) with the clock every
// CREDENTIAL_EXPIRY_CHECK_SECONDS, and an `app_credential.expiring` event is written when one
// enters a new state — the warning window (CREDENTIAL_EXPIRY_WARNING_DAYS), the urgent window
// (CREDENTIAL_EXPIRY_URGENT_DAYS), expired. The store sets the state and writes the event in one
// atomic step, so each change is announced once whatever the number of instances; a credential
// replaced by one with another expiry starts over. The event names the credential (name, kind,
// thumbprint), never its secret.
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { CloudName } from '../clouds.js'
import type { AppCredential } from '../config/credentials.js'
import type { Config } from '../config.js'
import { type AppCredentials, credentialId } from '../entra/app-credentials.js'
import type { Store } from '../store/types.js'

const DAY_MS = 86_400_000

/** Where a credential stands against its expiry. */
export type ExpiryState = 'ok' | 'expiring' | 'urgent' | 'expired'

/** The state of a credential expiring at `expiresAt` (epoch ms) at `now`. */
export function expiryState(
  expiresAt: number,
  now: number,
  warningMs: number,
  urgentMs: number,
): ExpiryState {
  const left = expiresAt - now
  if (left <= 0) return 'expired'
  if (left <= urgentMs) return 'urgent'
  if (left <= warningMs) return 'expiring'
  return 'ok'
}

/** The outbox subject of one credential of an app in a cloud. */
export function credentialSubject(app: string, cloud: CloudName, credential: AppCredential): string {
  return `credential:${credentialId(app, cloud, credential)}`
}

/** What the operator should do about a credential in `state` (the event's `action`). */
export function expiryAction(state: ExpiryState, kind: AppCredential['kind']): string {
  const what = kind === 'certificate' ? 'certificate' : 'client secret'
  const steps = `Add a new ${what} to the app registration in Entra ID, list it first under the app's credentials in the apps file, reload the apps (SIGHUP or a restart) and remove the old one once nothing uses it.`
  return state === 'expired'
    ? `Microsoft refuses this ${what} now: token requests succeed only with another credential of the app. ${steps}`
    : `${steps} Do it before the expiry: token requests that depend on this ${what} fail after it.`
}

/** See the file comment. */
export class CredentialExpiryWatch {
  readonly #config: Config
  readonly #store: Store
  readonly #credentials: AppCredentials
  readonly #clock: () => number
  readonly #log: FastifyBaseLogger
  #timer: NodeJS.Timeout | undefined
  #running: Promise<unknown> | undefined
  #stopped = false

  constructor(deps: {
    config: Config
    store: Store
    credentials: AppCredentials
    clock: () => number
    log: FastifyBaseLogger
  }) {
    this.#config = deps.config
    this.#store = deps.store
    this.#credentials = deps.credentials
    this.#clock = deps.clock
    this.#log = deps.log
  }

  /** Checks now, then every CREDENTIAL_EXPIRY_CHECK_SECONDS until stopped. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return
    const tick = () => {
      if (this.#running !== undefined) return
      this.#running = this.runOnce()
        .catch((error: unknown) => {
          this.#log.warn({ err: error }, 'credential expiry check failed; retrying on the next tick')
        })
        .finally(() => {
          this.#running = undefined
        })
    }
    this.#timer = setInterval(tick, this.#config.credentials.expiryCheckMs)
    this.#timer.unref()
    tick()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running
  }

  /**
   * One comparison of every credential with a known expiry; returns the events this instance
   * wrote (a state another instance recorded first is not announced again).
   */
  async runOnce(): Promise<number> {
    const now = this.#clock()
    const { expiryWarningMs, expiryUrgentMs } = this.#config.credentials
    let written = 0
    for (const { app, cloud, credentials } of this.#credentials.entries()) {
      for (const credential of credentials) {
        if (credential.expiresAt === undefined) continue
        const state = expiryState(credential.expiresAt, now, expiryWarningMs, expiryUrgentMs)
        const subject = credentialSubject(app, cloud, credential)
        // the expiry is part of the state: a replacement with another expiry starts over
        const value = `${state}:${credential.expiresAt}`
        const facts: Record<string, string> = {
          app,
          cloud,
          credential: credential.name,
          credentialKind: credential.kind,
          ...(credential.kind === 'certificate' ? { thumbprint: credential.thumbprint } : {}),
          expiresAt: new Date(credential.expiresAt).toISOString(),
          daysLeft: String(Math.floor((credential.expiresAt - now) / DAY_MS)),
          state,
          warningDays: String(Math.round(expiryWarningMs / DAY_MS)),
          urgentDays: String(Math.round(expiryUrgentMs / DAY_MS)),
        }
        const entry =
          state === 'ok'
            ? undefined
            : {
                id: randomUUID(),
                kind: 'app_credential.expiring' as const,
                at: new Date(now).toISOString(),
                facts,
              }
        if (await this.#store.webhooks.setCredentialExpiryState(subject, value, entry)) {
          if (entry === undefined) continue
          written += 1
          this.#log.warn({ ...facts }, 'app credential expiry: notification written')
        }
      }
    }
    return written
  }
}
