// Browser sessions for the admin console and the tenant self-service pages. The cookie carries only
// a random session id (signed by @fastify/cookie); the session lives server-side in the ephemeral
// store, sealed, under the SHA-256 of that id, so neither a Redis read nor a log line yields a usable
// cookie. Each session has its own CSRF token, echoed in a hidden field of every form.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { EphemeralStore } from '../store/types.js'

export type SessionData<T> = T & { readonly csrf: string; readonly createdAt: number }

export interface SessionHandle<T> {
  /** The session id for the cookie. Never log it. */
  readonly id: string
  readonly data: SessionData<T>
}

export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url')
}

function storageKey(namespace: string, id: string): string {
  return `${namespace}:${createHash('sha256').update(id, 'utf8').digest('hex')}`
}

/** Session ids are 43 base64url characters; anything else is not worth a store lookup. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/

export class BrowserSessions<T extends object> {
  readonly #ephemeral: EphemeralStore
  readonly #namespace: string
  readonly #ttlMs: number
  readonly #clock: () => number

  constructor(ephemeral: EphemeralStore, namespace: string, ttlMs: number, clock: () => number) {
    this.#ephemeral = ephemeral
    this.#namespace = namespace
    this.#ttlMs = ttlMs
    this.#clock = clock
  }

  get ttlMs(): number {
    return this.#ttlMs
  }

  async create(data: T): Promise<SessionHandle<T>> {
    const id = randomToken()
    const session: SessionData<T> = { ...data, csrf: randomToken(), createdAt: this.#clock() }
    await this.#ephemeral.put(storageKey(this.#namespace, id), JSON.stringify(session), this.#ttlMs, {
      secret: true,
    })
    return { id, data: session }
  }

  async read(id: string | undefined): Promise<SessionData<T> | null> {
    if (id === undefined || !SESSION_ID.test(id)) return null
    const raw = await this.#ephemeral.get(storageKey(this.#namespace, id), { secret: true })
    if (raw === null) return null
    const session = JSON.parse(raw) as SessionData<T>
    // The store's TTL is the authority; this guards against a clock-skewed or TTL-less backend.
    if (this.#clock() - session.createdAt > this.#ttlMs) return null
    return session
  }

  async destroy(id: string | undefined): Promise<void> {
    if (id === undefined || !SESSION_ID.test(id)) return
    await this.#ephemeral.delete(storageKey(this.#namespace, id))
  }
}

/** Constant-time comparison of a submitted CSRF token with the session's. */
export function csrfMatches(expected: string, submitted: unknown): boolean {
  if (typeof submitted !== 'string' || submitted.length === 0 || submitted.length > 256) return false
  const a = createHash('sha256').update(expected, 'utf8').digest()
  const b = createHash('sha256').update(submitted, 'utf8').digest()
  return timingSafeEqual(a, b)
}
