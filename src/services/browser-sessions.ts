// Browser sessions, one implementation for every signed-in area (the admin console's operators, the
// tenant administrators of `/{app}/manage`). The cookie carries only a random session id (signed by
// @fastify/cookie); the session record lives server-side in the ephemeral store, sealed, under the
// SHA-256 of that id, so neither a Redis read nor a log line yields a usable cookie. Each session
// has its own CSRF token, echoed in a hidden field of every form. An area may bind its sessions to a
// credential that can be withdrawn (the console: the operator's configured token): a session is then
// read only while its identity still holds the credential it was opened with. Signing in and out are
// audited here, so no area can open or end a session without its event.
import { createHmac } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import { sha256Hex } from '../crypto/sha256.js'
import { randomToken, tokensMatch } from '../crypto/tokens.js'
import type { AuditEvent, Store } from '../store/types.js'
import { recordAudit } from './audit.js'

/** A session record: the area's identity plus the session's CSRF token and creation time. */
export type SessionData<T> = T & {
  /** The token every form of this session must carry. */
  readonly csrf: string
  /** Epoch ms of the sign-in. */
  readonly createdAt: number
  /**
   * In an area that binds its sessions to a credential: the credential the session was opened
   * with, as {@link credentialFingerprint} derives it. Never log it.
   */
  readonly credential?: string
}

/** A session as a request sees it: its id (the cookie's value) and its record. */
export interface SessionHandle<T> {
  /** The session id for the cookie. Never log it. */
  readonly id: string
  readonly data: SessionData<T>
}

/** What tells one area's sessions from another's. */
export interface SessionAreaSpec<T> {
  /** Prefix of the records' keys in the ephemeral store, e.g. `admin-session`. */
  readonly namespace: string
  /** How long a session lasts from its sign-in (no sliding renewal). */
  readonly ttlMs: number
  /** The audit event of a sign-in. */
  readonly signedIn: (identity: T) => AuditEvent
  /** The audit event of a sign-out. */
  readonly signedOut: (identity: T) => AuditEvent
  /**
   * The credential `identity` signs in with now (the console: its operator's configured token
   * hash), or undefined when it has none. Given, a session is bound at sign-in to its identity's
   * credential and read only while that is still the identity's credential: a withdrawn or
   * changed credential, or a record opened without one, ends the session as its expiry does.
   */
  readonly credential?: (identity: T) => string | undefined
}

/** Session ids are 43 base64url characters; anything else is not worth a store lookup. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/

function storageKey(namespace: string, id: string): string {
  return `${namespace}:${sha256Hex(id)}`
}

/**
 * What a session record keeps of the credential it is bound to: 128 bits of an HMAC of the
 * credential keyed by the session id, which the store never holds (only its SHA-256). Someone who
 * reads the records, even unsealed, can neither test a guess at the credential nor tell which
 * sessions share one; a request, which brings the id, can tell whether the credential is the same.
 */
export function credentialFingerprint(namespace: string, sessionId: string, credential: string): string {
  return createHmac('sha256', sessionId)
    .update(`${namespace}\0${credential}`, 'utf8')
    .digest()
    .subarray(0, 16)
    .toString('base64url')
}

/** The sessions of one area: open (sign in), look up, end (sign out). */
export class BrowserSessions<T extends object> {
  readonly #store: Pick<Store, 'ephemeral' | 'audit'>
  readonly #clock: () => number
  readonly #spec: SessionAreaSpec<T>

  constructor(store: Pick<Store, 'ephemeral' | 'audit'>, clock: () => number, spec: SessionAreaSpec<T>) {
    this.#store = store
    this.#clock = clock
    this.#spec = spec
  }

  /** How long a session lasts; the cookie's Max-Age. */
  get ttlMs(): number {
    return this.#spec.ttlMs
  }

  /**
   * Opens a session for `identity` and records the sign-in. A session the browser still had
   * (`previousId`) is ended first, so a sign-in never leaves two sessions for one browser.
   */
  async signIn(identity: T, log: FastifyBaseLogger, previousId?: string): Promise<SessionHandle<T>> {
    if (previousId !== undefined) await this.#destroy(previousId)
    const id = randomToken()
    const session: SessionData<T> = {
      ...identity,
      csrf: randomToken(),
      createdAt: this.#clock(),
      ...this.#binding(identity, id),
    }
    await this.#store.ephemeral.put(this.#key(id), JSON.stringify(session), this.#spec.ttlMs, {
      secret: true,
    })
    await recordAudit(this.#store, log, this.#spec.signedIn(identity))
    return { id, data: session }
  }

  /**
   * The session with this id, or null when the id is missing, malformed, unknown or expired, or
   * the session no longer holds its credential (see {@link SessionAreaSpec.credential}; that
   * record is deleted too, and with `log` the end is audited as a sign-out with `detail.ended`).
   */
  async read(id: string | undefined, log?: FastifyBaseLogger): Promise<SessionData<T> | null> {
    if (id === undefined || !SESSION_ID.test(id)) return null
    const raw = await this.#store.ephemeral.get(this.#key(id), { secret: true })
    if (raw === null) return null
    const session = JSON.parse(raw) as SessionData<T>
    // The store's TTL is the authority; this guards against a clock-skewed or TTL-less backend.
    if (this.#clock() - session.createdAt > this.#spec.ttlMs) return null
    if (!this.#holdsCredential(id, session)) {
      await this.#destroy(id)
      // Audited as a sign-out with its cause, so an incident's timeline shows when a session opened
      // with a withdrawn token ended.
      if (log !== undefined) {
        const ended = this.#spec.signedOut(session)
        const cause =
          typeof session.credential === 'string' ? 'credential_withdrawn' : 'opened_before_binding'
        await recordAudit(this.#store, log, { ...ended, detail: { ...ended.detail, ended: cause } })
      }
      return null
    }
    return session
  }

  /** Ends the session and records the sign-out. */
  async signOut(session: SessionHandle<T>, log: FastifyBaseLogger): Promise<void> {
    await this.#destroy(session.id)
    await recordAudit(this.#store, log, this.#spec.signedOut(session.data))
  }

  /** The `credential` field of a new session of `identity` (none when the area binds none). */
  #binding(identity: T, id: string): { credential?: string } {
    const current = this.#spec.credential
    if (current === undefined) return {}
    const credential = current(identity)
    // The caller has just authenticated the identity against the same configuration.
    if (credential === undefined) throw new Error(`${this.#spec.namespace}: the identity has no credential`)
    return { credential: credentialFingerprint(this.#spec.namespace, id, credential) }
  }

  /** Whether the session's identity still holds the credential the session was opened with. */
  #holdsCredential(id: string, session: SessionData<T>): boolean {
    const current = this.#spec.credential
    if (current === undefined) return true
    // A record without the field (opened before sessions were bound) can't be checked: it ends.
    if (typeof session.credential !== 'string') return false
    const credential = current(session)
    if (credential === undefined) return false
    return tokensMatch(credentialFingerprint(this.#spec.namespace, id, credential), session.credential)
  }

  async #destroy(id: string): Promise<void> {
    if (!SESSION_ID.test(id)) return
    await this.#store.ephemeral.delete(this.#key(id))
  }

  #key(id: string): string {
    return storageKey(this.#spec.namespace, id)
  }
}
