// What the two pages that start a consent-flow sign-in share — the consent start (`/{app}/start`)
// and the manage sign-in (`/{app}/manage/sign-in`) — with the one callback both flows end at: the
// form that picks the cloud, the flow cookie and the per-client-IP budget.
import type { CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { CLOUD_NAMES } from '../../clouds.js'
import type { Config } from '../../config.js'
import { enforceRateLimit } from '../browser.js'

/** Carries `<app>.<flow id>`; read only by the callback. */
export const FLOW_COOKIE = 'cb_consent_flow'
/** The flow cookie is sent to the callback only. */
export const FLOW_COOKIE_PATH = '/callback'

/** The form that starts a flow (consent or manage sign-in): the chosen cloud, empty for the default. */
export const cloudFormSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { cloud: { type: 'string', enum: [...CLOUD_NAMES, ''] } },
} as const

/** The flow cookie, read by the callback whichever page (consent start, manage sign-in) set it. */
export function flowCookieOptions(config: Config): CookieSerializeOptions {
  return {
    path: FLOW_COOKIE_PATH,
    httpOnly: true,
    sameSite: 'lax',
    secure: config.secureCookies,
    signed: true,
    maxAge: Math.floor(config.consent.flowTtlMs / 1000),
  }
}

/**
 * Starting flows (consent or manage sign-in) and hitting the callback cost server-side state and
 * identity-provider calls: one budget per client IP, across instances.
 */
export function limitConsentTraffic(app: FastifyInstance, request: FastifyRequest, message: string) {
  return enforceRateLimit(
    app.store.rateLimiter,
    `consent-ip:${request.ip}`,
    app.config.consent.rateLimitPerIp,
    app.config.consent.rateLimitWindowMs,
    message,
  )
}
