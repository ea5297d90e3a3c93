// The JSON APIs (POST /obtain-token, the operator API) take `application/json` bodies and nothing
// else, as their protocols say: Fastify's built-in text/plain parser is removed from their scope
// (and the pages' form parser is never registered there), so any other body is answered 415
// `unsupported_media_type` by the one handler. A form post is a request a browser sends across
// origins without asking first: an API that parsed one would answer pages it never meant to serve.
import type { FastifyInstance } from 'fastify'

/** Leaves `application/json` the only body the routes of `app`'s scope (and its children) accept. */
export function acceptJsonBodiesOnly(app: FastifyInstance): void {
  app.removeContentTypeParser(['text/plain', 'application/x-www-form-urlencoded'])
}
