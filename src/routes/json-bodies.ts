// The JSON APIs (POST /obtain-token, the operator API) take `application/json` bodies and nothing
// else, as their protocols say: Fastify's built-in text/plain parser and the pages' form parser
// (which the operator API inherits from the browser routes' scope) are removed from their scope, so
// any other body is answered 415 `unsupported_media_type` by the one handler. A form post is a
// request a browser sends across origins without asking first: an API that parsed one would answer
// pages it never meant to serve. A JSON body states its own types, so it is validated as sent,
// never coerced. The operator API refuses what its schemas don't name instead of dropping it: a
// misspelt field or parameter would otherwise widen a call (`{"ap": …}` in a tenant revocation
// revoking the tenant's registrations of every app, `?stauts=…` listing every status).
import { AjvCompiler } from '@fastify/ajv-compiler'
import type { FastifyInstance } from 'fastify'

/** Leaves `application/json` the only body the routes of `app`'s scope (and its children) accept. */
export function acceptJsonBodiesOnly(app: FastifyInstance): void {
  app.removeContentTypeParser(['text/plain', 'application/x-www-form-urlencoded'])
}

/**
 * The validators of `app`'s scope (and its children): Fastify's own compiler and options (formats,
 * defaults), except that bodies are not coerced and a property a closed object's schema
 * (`additionalProperties: false`) does not name is refused (400), not dropped. Fastify's default
 * turns `{"reason": true}` into the reason "true" and `["x"]` into "x", and drops `{"ap": …}`: a
 * script's bug would then revoke for real. Path parameters and query strings are text by nature
 * and are still converted to the types their schemas give. (POST /obtain-token has its own
 * compiler: routes/token/index.ts.)
 */
export function validateOperatorRequests(app: FastifyInstance): void {
  const compilers = AjvCompiler()
  // Verbose: a refusal carries its schema, so its message can say which properties are taken
  // (routes/validation-messages.ts). Headers keep Fastify's defaults: a closed header schema must
  // not refuse the headers every request carries.
  const strict = { removeAdditional: false, verbose: true } as const
  const forBodies = compilers({}, { customOptions: { ...strict, coerceTypes: false } })
  const forText = compilers({}, { customOptions: strict })
  const forHeaders = compilers({}, { customOptions: {} })
  app.setValidatorCompiler((route) => {
    if (route.httpPart === 'body') return forBodies(route)
    return route.httpPart === 'headers' ? forHeaders(route) : forText(route)
  })
}
