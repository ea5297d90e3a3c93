// The emulator's single sign-on session cookie. Entra remembers a signed-in account with a session
// cookie (ESTSAUTH) on login.microsoftonline.com; the emulator does the same, so a browser signs in
// once and later authorize/adminconsent requests go straight on as that user. The cookie holds only
// a random id; the session record (user, expiry) stays in `EmulatorState.sessions`.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { EmulatorState } from './state.js'

export const SESSION_COOKIE = 'ESTSAUTH'

function cookieOptions(state: EmulatorState) {
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'lax' as const,
    // Over plain http (the usual emulator) a Secure cookie would be dropped or not sent back.
    secure: state.baseUrl.startsWith('https:'),
  }
}

/** The session cookie's value, if the request carries one. */
export function sessionCookie(request: FastifyRequest): string | undefined {
  const value = request.cookies[SESSION_COOKIE]
  return value ? value : undefined
}

/** Sets the session cookie (a browser-session cookie; the server-side record expires it). */
export function setSessionCookie(reply: FastifyReply, state: EmulatorState, id: string): FastifyReply {
  return reply.setCookie(SESSION_COOKIE, id, cookieOptions(state))
}

export function clearSessionCookie(reply: FastifyReply, state: EmulatorState): FastifyReply {
  return reply.clearCookie(SESSION_COOKIE, cookieOptions(state))
}
