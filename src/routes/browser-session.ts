// The browser-session plugin of the signed-in areas (the admin console, `/{app}/manage`): the
// session cookie, the session looked up once per request, the guard of every state-changing form
// (a session and its CSRF token, checked in preValidation, before the body is validated, so a forged
// or replayed form is refused as such), sign-in and sign-out, and the one-line notices a redirect
// after a form shows. The sessions themselves (sealed records, audit) are services/browser-sessions.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { BrokerError } from '../errors.js'
import type { BrowserSessions, SessionData, SessionHandle } from '../services/browser-sessions.js'
import { readSignedCookie, requireFormCsrf } from './browser.js'

/** How one area keeps its sessions in the browser. */
export interface SessionAreaOptions<T extends object> {
  sessions: BrowserSessions<T>
  cookie: {
    name: string
    /** Lax where the sign-in ends a cross-site redirect chain (Microsoft), Strict otherwise. */
    sameSite: 'strict' | 'lax'
    /** The cookie's path, from the session's identity (one path per app for the manage pages). */
    path: (identity: T) => string
  }
  /** The cookie's Secure flag (config.secureCookies). */
  secure: boolean
  /** Whether a valid session counts for this request (manage: only on its own app's pages). */
  accepts?: (session: SessionData<T>, request: FastifyRequest) => boolean
  /** Fields added to the request's log lines once its session is known. Never the session id. */
  logFields: (session: SessionData<T>) => Record<string, string>
  /** The 401 of a form posted without a (live) session (a factory of src/errors.ts). */
  sessionMissing: () => BrokerError
}

/** One signed-in area's sessions as its routes use them. */
export class SessionArea<T extends object> {
  readonly #options: SessionAreaOptions<T>
  readonly #loaded = new WeakMap<FastifyRequest, SessionHandle<T>>()

  constructor(options: SessionAreaOptions<T>) {
    this.#options = options
  }

  /**
   * Hooks the area into a route plugin's context: every response of its routes is never cached,
   * and the request's session, if any, is looked up once before anything else runs.
   */
  install(app: FastifyInstance): void {
    app.addHook('onRequest', async (request, reply) => {
      reply.header('cache-control', 'no-store')
      const id = readSignedCookie(request, this.#options.cookie.name)
      if (id === undefined) return
      const data = await this.#options.sessions.read(id, request.log)
      if (data === null || !(this.#options.accepts?.(data, request) ?? true)) return
      this.#loaded.set(request, { id, data })
      request.log = request.log.child(this.#options.logFields(data))
    })
  }

  /** The request's session, or undefined when it has none. */
  current(request: FastifyRequest): SessionHandle<T> | undefined {
    return this.#loaded.get(request)
  }

  /** The request's session, for handlers behind a guard; without one, `unauthorized`. */
  of(request: FastifyRequest): SessionHandle<T> {
    const session = this.#loaded.get(request)
    if (session === undefined) throw this.#options.sessionMissing()
    return session
  }

  /** preValidation of every state-changing form: a session, and the form carries its CSRF token. */
  readonly requireForm = async (request: FastifyRequest): Promise<void> => {
    requireFormCsrf(request, this.of(request).data.csrf)
  }

  /** Opens a session for `identity` (ending the browser's previous one) and sets its cookie. */
  async signIn(request: FastifyRequest, reply: FastifyReply, identity: T): Promise<SessionHandle<T>> {
    const { sessions, cookie, secure } = this.#options
    const session = await sessions.signIn(identity, request.log, this.current(request)?.id)
    reply.setCookie(cookie.name, session.id, {
      path: cookie.path(identity),
      httpOnly: true,
      sameSite: cookie.sameSite,
      secure,
      signed: true,
      maxAge: Math.floor(sessions.ttlMs / 1000),
    })
    return session
  }

  /** Ends the request's session and clears its cookie; returns the ended session. */
  async signOut(request: FastifyRequest, reply: FastifyReply): Promise<SessionHandle<T>> {
    const session = this.of(request)
    await this.#options.sessions.signOut(session, request.log)
    reply.clearCookie(this.#options.cookie.name, { path: this.#options.cookie.path(session.data) })
    return session
  }
}

/**
 * The one-line notices an area shows after a form redirected back (`?done=<key>`): the query's
 * schema and the notice of a key.
 */
export function notices<K extends string>(catalogue: Readonly<Record<K, string>>) {
  const doneSchema = { type: 'string', enum: Object.keys(catalogue) as K[] } as const
  return {
    /** The `done` query property: one of the catalogue's keys. */
    doneSchema,
    /** The query of a page whose only parameter is `done`. */
    doneQuery: { type: 'object', additionalProperties: false, properties: { done: doneSchema } } as const,
    /** `{ notice }` for a key, `{}` for none: spread into a page's model. */
    of: (done: K | undefined): { notice?: string } => (done === undefined ? {} : { notice: catalogue[done] }),
  }
}
