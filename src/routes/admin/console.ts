// The admin console, `/admin`: server-rendered pages, usable without JavaScript. An operator signs in
// with their operator token and gets a server-side session (routes/browser-session.ts; cookie:
// HttpOnly, SameSite=Strict, signed, path /admin). Every state-changing form carries the session's
// CSRF token, checked in preValidation — before the body is validated — so a forged or replayed
// form is refused as such. The pages behind the sign-in are console-pages.ts.
import type { FastifyInstance, FastifyReply } from 'fastify'
import { randomToken } from '../../crypto/tokens.js'
import { consoleSessionMissing } from '../../errors.js'
import type { KeyRotation } from '../../services/key-rotation.js'
import { type OperatorIdentity, operatorForToken } from '../../services/operator-auth.js'
import { renderSignIn } from '../../views/admin.js'
import { enforceRateLimit, readSignedCookie, requireFormCsrf, sendPage } from '../browser.js'
import { SessionArea } from '../browser-session.js'
import { errorPages, html, htmlPage, redirect } from './console-common.js'
import { consolePageRoutes } from './console-pages.js'
import { consoleWebhookRoutes } from './console-webhooks.js'
import { csrfFormSchema, emptyQuery } from './schemas.js'

export interface AdminConsoleOptions {
  keyRotation: KeyRotation
}

/** The console's session cookie. */
export const CONSOLE_COOKIE = 'cb_admin'
/**
 * The sign-in form's double-submit CSRF cookie, before there is a session: `__Host-` prefixed on
 * https (Path=/, Secure, no Domain, so a sibling subdomain can't plant one), plain on the http demo.
 */
export function signInCookieName(secure: boolean): string {
  return secure ? '__Host-cb_admin_sign_in' : 'cb_admin_sign_in'
}
const CONSOLE_PATH = '/admin'
const SIGN_IN_TTL_MS = 15 * 60_000
const SIGN_IN_ATTEMPTS_PER_MINUTE = 10

export async function adminConsoleRoutes(app: FastifyInstance, options: AdminConsoleOptions): Promise<void> {
  const { keyRotation } = options
  const area = new SessionArea<OperatorIdentity>({
    sessions: app.services.sessions.console,
    cookie: { name: CONSOLE_COOKIE, sameSite: 'strict', path: () => CONSOLE_PATH },
    secure: app.config.secureCookies,
    logFields: (session) => ({ operator: session.operator }),
    sessionMissing: consoleSessionMissing,
  })
  // Every console response: never cached, and the session (if any) looked up once.
  area.install(app)

  const signInCookie = signInCookieName(app.config.secureCookies)
  const renderSignInPage = async (reply: FastifyReply, status: number, error?: string) => {
    const csrf = randomToken()
    reply.setCookie(signInCookie, csrf, {
      path: '/',
      httpOnly: true,
      sameSite: 'strict',
      secure: app.config.secureCookies,
      signed: true,
      maxAge: Math.floor(SIGN_IN_TTL_MS / 1000),
    })
    return sendPage(reply, status, renderSignIn({ csrf, ...(error === undefined ? {} : { error }) }))
  }

  app.get(
    '/admin',
    { config: html, schema: { querystring: emptyQuery, response: { ...redirect, ...errorPages } } },
    async (request, reply) =>
      reply.redirect(area.current(request) !== undefined ? '/admin/home' : '/admin/sign-in', 303),
  )

  app.get(
    '/admin/sign-in',
    {
      config: html,
      schema: { querystring: emptyQuery, response: { ...htmlPage, ...redirect, ...errorPages } },
    },
    async (request, reply) => {
      if (area.current(request) !== undefined) return reply.redirect('/admin/home', 303)
      return renderSignInPage(reply, 200)
    },
  )

  app.post<{ Body: { token?: string; csrf?: string } }>(
    '/admin/sign-in',
    {
      config: html,
      schema: {
        querystring: emptyQuery,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { token: { type: 'string', maxLength: 512 }, csrf: { type: 'string', maxLength: 256 } },
        },
        response: { ...htmlPage, ...redirect, ...errorPages },
      },
      // Login CSRF: the form must come from our own sign-in page (double-submit, signed cookie).
      preValidation: async (request) =>
        requireFormCsrf(
          request,
          readSignedCookie(request, signInCookie),
          'the sign-in form expired or did not come from this site; reload it and try again',
        ),
    },
    async (request, reply) => {
      await enforceRateLimit(
        app.store.rateLimiter,
        `admin-sign-in:${request.ip}`,
        SIGN_IN_ATTEMPTS_PER_MINUTE,
        60_000,
        'too many sign-in attempts; wait a minute',
      )
      const operator = operatorForToken(app.config, request.body.token)
      if (operator === undefined) {
        request.log.info({ ip: request.ip }, 'console sign-in refused')
        return renderSignInPage(reply, 401, 'That token is not an operator token.')
      }
      await area.signIn(request, reply, { operator })
      reply.clearCookie(signInCookie, { path: '/', secure: app.config.secureCookies })
      return reply.redirect('/admin/home', 303)
    },
  )

  app.post<{ Body: { csrf?: string } }>(
    '/admin/sign-out',
    {
      config: html,
      schema: {
        querystring: emptyQuery,
        body: csrfFormSchema,
        response: { ...redirect, ...errorPages },
      },
      preValidation: area.requireForm,
    },
    async (request, reply) => {
      await area.signOut(request, reply)
      return reply.redirect('/admin/sign-in', 303)
    },
  )

  consolePageRoutes(app, area, keyRotation)
  consoleWebhookRoutes(app, area)
}
